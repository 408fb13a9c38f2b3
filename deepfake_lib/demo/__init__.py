"""The built-in demo data: photo crops, self-blended fakes, demo videos.

The public names below load their module on first use (``import deepfake_lib.demo`` stays light).
"""

from deepfake_lib.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "images": ("MANIFEST", "DEMO_VERSION", "DemoSpec", "build_demo_dataset"),
        "photos": ("ALL_PHOTOS", "photo_paths", "random_crop", "blend_mask", "perturb", "blend_perturbed"),
        "footage": ("footage_canvas", "footage_windows", "footage_frames", "write_footage"),
        "videos": (
            "ASTRONAUT_FACE_BOX",
            "ASTRONAUT_KEEP_BOX",
            "VIDEO_STREAM",
            "VideoDemoSpec",
            "camera_path",
            "render_path",
            "real_video",
            "drifting_masks",
            "fake_video_pair",
            "fake_video",
            "video_photo_order",
            "build_demo_videos",
        ),
    },
)
