"""The detector: EfficientNet backbone + LSTM + head, its frequency branch, weights and checkpoints.

The public names below load their module on first use (``import deepfake_lib.models`` stays light).
"""

from deepfake_lib.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "tta": ("TTA_MODES", "check_tta", "tta_views", "TTAModel", "with_tta"),
        "backbones": (
            "B_BACKBONES",
            "LITE_BACKBONES",
            "BACKBONES",
            "FALLBACK_BACKBONE",
            "PretrainedWeightsUnavailable",
            "is_lite",
            "build_backbone",
            "hub_weights_file",
            "lite_weights_package",
            "packaged_weights_file",
            "load_imagenet_weights",
        ),
        "checkpoint": (
            "CHECKPOINT_FORMAT",
            "CHECKPOINT_VERSION",
            "CARRIED_KEYS",
            "CheckpointError",
            "weights_id",
            "checkpoint_weights_id",
            "checkpoint_tta",
            "model_checkpoint",
            "save_checkpoint",
            "save_model",
            "load_checkpoint",
            "model_from_checkpoint",
            "load_model",
        ),
        "detector": (
            "ModelConfig",
            "resolve_pretrained",
            "EfficientNetLSTM",
            "input_affine",
            "build_model",
            "count_parameters",
            "model_info",
        ),
        "frequency": (
            "LUMA",
            "POWER_EPS",
            "DCT_EPS",
            "BANDS",
            "to_gray",
            "hann_window",
            "power_spectrum",
            "log_spectrum",
            "radial_frequency",
            "radial_bins",
            "profile_frequencies",
            "radial_profile",
            "band_mask",
            "band_means",
            "spectral_features",
            "dct_matrix",
            "dct2",
            "log_dct",
            "RunningStandardize",
            "FrequencyBranch",
        ),
    },
)
