"""Shared low-level pieces: devices, run folders and atomic writes, image and video files.

The public names below load their module on first use (``import deepfake_lib.core`` stays light).
"""

from deepfake_lib.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "cpu_env": ("reexec_env", "reexec_with_malloc_env", "set_for_children"),
        "device": ("resolve_device", "seed_everything", "autocast", "needs_grad_scaler", "configure_backends"),
        "files": (
            "Skipped",
            "is_lfs_pointer",
            "lfs_pointer_reason",
            "weights_file_problem",
            "is_clip_dir",
            "is_video_file",
        ),
        "images": (
            "ImageLoadError",
            "to_rgb",
            "limit_aspect",
            "resize_center_crop",
            "load_image",
            "check_image",
            "list_image_files",
            "list_samples",
            "clip_frame_files",
            "sample_length",
            "load_clip",
        ),
        "runs": (
            "project_root",
            "resolve_path",
            "new_run_id",
            "run_paths",
            "atomic_write",
            "check_step_folders",
            "LinkWriter",
            "write_json",
            "read_json",
            "update_metrics",
            "save_figure",
            "save_figure_file",
        ),
        "video": (
            "VideoError",
            "VideoInfo",
            "VideoFrame",
            "probe_video",
            "sample_indices",
            "iter_frames",
            "read_frames",
            "check_video",
            "list_video_files",
            "scan_videos",
            "write_video",
        ),
    },
)
