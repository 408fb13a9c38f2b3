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
            "COMPARE_KEYS",
            "FinetuneConfig",
            "FailureSet",
            "load_failures",
            "StaleFailuresError",
            "check_failures_source",
            "check_splits",
            "FinetuneSet",
            "select_replay",
            "build_finetune_set",
            "frozen_batchnorm",
            "FinetuneResult",
            "finetune",
            "Comparison",
            "compare_checkpoints",
            "finetune_record",
        ),
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
            "make_optimizer",
            "make_scheduler",
            "smoothed_targets",
            "fit",
        ),
        "batches": ("usable_batches", "recalibrate_batchnorm"),
        "ema": ("WeightEMA", "ema_decay_at"),
        "schedules": ("SCHEDULERS", "warmup_cosine_factor", "steps_per_batch"),
    },
)
