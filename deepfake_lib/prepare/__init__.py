"""Cached preparation steps: raw folders -> face crops, clip folders and train/val/test splits.

The public names below load their module on first use (``import deepfake_lib.prepare`` stays light).
"""

from deepfake_lib.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "assignment": ("assign_splits",),
        "clips": ("ClipPrepResult", "prepare_clips"),
        "dataset": (
            "PrepareError",
            "PreparedData",
            "default_prepared_root",
            "face_crop_size",
            "prepare_data",
            "preparation_of",
            "checkpoint_info",
            "data_dir_for_run",
            "data_source",
        ),
        "faces": ("FacePrepError", "FacePrepResult", "prepare_faces"),
        "grouping": ("RegexGrouper", "group_from_regex", "groups_from_csv"),
        "leakage": ("LeakageError", "check_no_leakage"),
        "splits": ("SplitError", "is_flat_layout", "SplitResult", "make_splits", "split_groups"),
    },
)
