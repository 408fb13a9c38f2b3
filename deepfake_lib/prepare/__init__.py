"""Cached preparation steps: raw folders -> face crops, clip folders and train/val/test splits.

The public names below load their module on first use (``import deepfake_lib.prepare`` stays light).
"""

from deepfake_lib.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "assignment": ("SPLIT_NAMES", "ASSIGN_VERSION", "FRACTION_TOLERANCE", "assign_splits"),
        "clips": ("ClipPrepResult", "clip_origins", "prepare_clips"),
        "dataset": (
            "PREPARED_FILE",
            "PrepareError",
            "PreparedData",
            "default_prepared_root",
            "face_crop_size",
            "faces_folder_name",
            "clips_folder_name",
            "splits_folder_name",
            "prepare_data",
            "preparation_of",
            "checkpoint_info",
            "data_dir_for_run",
        ),
        "faces": ("KEEP_CHOICES", "FACE_CHUNK", "FLUSH_SECONDS", "FacePrepError", "FacePrepResult", "prepare_faces"),
        "grouping": ("RegexGrouper", "group_from_regex", "groups_from_csv"),
        "leakage": ("LeakageError", "check_no_leakage"),
        "split_writer": ("INFO_FILE", "TOOL"),
        "splits": (
            "SPLITS_FORMAT_VERSION",
            "MODES",
            "SplitError",
            "is_flat_layout",
            "SplitResult",
            "make_splits",
            "split_groups",
        ),
    },
)
