"""The built-in demo data: photo crops, self-blended fakes, demo videos.

The public names below load their module on first use (``import deepfake_lib.demo`` stays light).
"""

from deepfake_lib.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "images": ("DemoSpec", "build_demo_dataset"),
        "photos": ("photo_paths",),
        "footage": ("write_footage",),
        "videos": ("VideoDemoSpec", "real_video", "fake_video", "build_demo_videos"),
    },
)
