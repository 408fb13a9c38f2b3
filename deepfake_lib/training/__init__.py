"""Training loops: fit, hard-example fine-tuning, several processes.

The public names below load their module on first use (``import deepfake_lib.training`` stays light).
"""

from deepfake_lib.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "finetuning": ("FinetuneConfig", "FinetuneResult", "finetune"),
        "failures": ("FailureSet", "load_failures", "StaleFailuresError", "check_splits"),
        "replay": ("FinetuneSet", "build_finetune_set"),
        "comparison": ("Comparison", "compare_checkpoints"),
        "launch": ("LaunchError", "fit_processes"),
        "loop": ("TrainingDiverged", "TrainConfig", "FitResult", "read_fit_result", "fit"),
        "stage": ("train_run", "prepare_training", "TrainingSetup", "TrainedRun", "model_config", "train_config"),
    },
)
