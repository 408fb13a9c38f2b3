"""Data: scanning, transforms, datasets, samplers, faces, tracks, clips, self-blended fakes.

The public names below load their module on first use (``import deepfake_lib.data`` stays light).
"""

from deepfake_lib.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "blend": (
            "LANDMARK_NAMES",
            "TEMPLATE",
            "BLEND_RATIOS",
            "REGIONS",
            "PseudoFake",
            "as_rgb_array",
            "template_landmarks",
            "face_axes",
            "face_size",
            "hull_mask",
            "soften_mask",
            "alter_colour",
            "alter_sharpness",
            "shift_scale",
            "self_blend",
        ),
        "clips": (
            "FORMAT_VERSION",
            "ClipPrepError",
            "ClipSettings",
            "has_videos",
            "read_clip_info",
            "VideoClips",
            "video_clips",
        ),
        "datasets": ("DeepfakeDataset", "collate_skip_bad", "seed_worker", "make_loader", "resolve_num_workers"),
        "faces": ("DETECTOR_NAME", "Face", "no_face_reason", "FaceDetector", "square_box", "crop_face"),
        "samplers": (
            "LengthGroupedBatchSampler",
            "ShardedBatchSampler",
            "class_counts",
            "make_oversampler",
            "pos_weight",
        ),
        "scan": ("DataLayoutError", "Sample", "SplitScan", "find_class_dirs", "scan_split", "scan_dataset"),
        "selfblend": (
            "FAKES_MODES",
            "PSEUDO_TAG",
            "LANDMARKS_VERSION",
            "LANDMARKS_FILE",
            "CHUNK",
            "check_fakes_mode",
            "required_classes",
            "training_labels",
            "landmarks_file",
            "find_landmarks",
            "landmark_summary",
            "SelfBlendedDataset",
            "training_sets",
            "datasets_for",
            "finetune_dataset",
            "fakes_record",
            "PreviewRow",
            "preview",
        ),
        "tables": ("counts_table", "oversampling_preview", "sample_paths", "sample_clips", "pick_alternating"),
        "tracks": ("iou", "Track", "link_tracks", "track_crops"),
        "transforms": (
            "IMAGENET_MEAN",
            "IMAGENET_STD",
            "RandomJPEG",
            "LimitAspect",
            "build_transform",
            "denormalize",
            "transform_frames",
        ),
    },
)
