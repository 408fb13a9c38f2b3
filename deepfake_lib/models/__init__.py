"""The detector: EfficientNet backbone + LSTM + head, its frequency branch, weights and checkpoints.

The public names below load their module on first use (``import deepfake_lib.models`` stays light).
"""

from deepfake_lib.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "tta": ("TTAModel", "with_tta"),
        "backbones": ("PretrainedWeightsUnavailable", "build_backbone"),
        "checkpoint": (
            "CheckpointError",
            "checkpoint_tta",
            "model_checkpoint",
            "save_checkpoint",
            "save_model",
            "load_checkpoint",
            "model_from_checkpoint",
            "load_model",
        ),
        "detector": ("ModelConfig", "EfficientNetLSTM", "build_model", "count_parameters", "model_info"),
        "frequency": ("log_spectrum", "radial_profile", "band_means", "log_dct", "FrequencyBranch"),
    },
)
