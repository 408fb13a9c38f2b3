"""Data: scanning, transforms, datasets, samplers, decoding on the device, faces, tracks, clips, self-blended fakes.

The public names below load their module on first use (``import deepfake_lib.data`` stays light).
"""

from deepfake_lib.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "blend": ("PseudoFake", "self_blend"),
        "clips": ("ClipPrepError", "VideoClips", "video_clips"),
        "datasets": ("DeepfakeDataset", "make_loader"),
        "faces": ("Face", "FaceDetector", "crop_face"),
        "samplers": ("make_oversampler", "pos_weight"),
        "scan": ("DataLayoutError", "Sample", "SplitScan", "scan_split", "scan_dataset"),
        "selfblend": ("SelfBlendedDataset",),
        "tables": ("counts_table", "oversampling_preview", "sample_paths", "sample_clips", "pick_alternating"),
        "transforms": ("build_transform", "denormalize"),
    },
)
