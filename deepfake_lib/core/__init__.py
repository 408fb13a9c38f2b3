"""Shared low-level pieces: devices, run folders and atomic writes, image and video files.

The public names below load their module on first use (``import deepfake_lib.core`` stays light).
"""

from deepfake_lib.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "device": ("resolve_device", "seed_everything", "autocast"),
        "files": ("Skipped",),
        "images": ("ImageLoadError", "load_image", "check_image", "list_image_files"),
        "progress": ("read_progress",),
        "runs": (
            "project_root",
            "resolve_path",
            "new_run_id",
            "run_paths",
            "atomic_write",
            "write_json",
            "read_json",
            "update_metrics",
            "save_figure",
        ),
        "video": (
            "VideoError",
            "VideoInfo",
            "VideoFrame",
            "probe_video",
            "read_frames",
            "check_video",
            "list_video_files",
        ),
    },
)
