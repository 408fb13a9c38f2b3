"""Training loops: fit, hard-example fine-tuning, several processes.

The public names below load their module on first use (``import deepfake_lib.training`` stays light).
"""

from deepfake_lib.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "distributed": (
            "T",
            "FORKED_ENV",
            "Ranks",
            "current",
            "init_processes",
            "process_device",
            "backend",
            "all_true",
            "sum_values",
            "gather",
            "broadcast",
            "barrier",
            "main_first",
            "shard_indices",
            "use_sync_batchnorm",
            "wrap",
            "average_batchnorm",
        ),
        "finetuning": (
            "SUBDIR",
            "FinetuneConfig",
            "frozen_batchnorm",
            "FinetuneResult",
            "finetune",
            "finetune_record",
        ),
        "failures": (
            "FailureSet",
            "load_failures",
            "StaleFailuresError",
            "check_failures_source",
            "check_splits",
        ),
        "replay": ("FinetuneSet", "select_replay", "build_finetune_set"),
        "comparison": ("COMPARE_KEYS", "Comparison", "compare_checkpoints"),
        "launch": (
            "LaunchError",
            "check_num_processes",
            "kernel_device",
            "free_port",
            "run_processes",
            "fit_processes",
        ),
        "loop": (
            "TrainingDiverged",
            "MONITORS",
            "monitored",
            "TrainConfig",
            "FitResult",
            "read_fit_result",
            "smoothed_targets",
            "fit",
        ),
        "optimizers": ("make_optimizer", "make_scheduler"),
        "batches": ("usable_batches", "recalibrate_batchnorm"),
        "ema": ("WeightEMA", "ema_decay_at"),
        "schedules": ("SCHEDULERS", "warmup_cosine_factor", "steps_per_batch"),
    },
)
