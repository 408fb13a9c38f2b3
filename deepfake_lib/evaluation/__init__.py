"""Measuring a detector: batched inference, metrics, calibration, thresholds, baselines, robustness, videos.

The public names below load their module on first use (``import deepfake_lib.evaluation`` stays light).
"""

from deepfake_lib.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "calibration": ("TemperatureFit", "fit_temperature"),
        "baselines": ("BaselineScores", "score_baseline"),
        "cross_dataset": ("score_extra_dirs",),
        "evaluate": ("predict_split", "predict_splits", "ThresholdChoice", "choose_threshold", "find_failures"),
        "inference": ("Predictions",),
        "metrics": (
            "equal_error_rate",
            "tpr_at_fpr",
            "expected_calibration_error",
            "full_metrics",
            "bootstrap_auc_interval",
        ),
        "probe": ("linear_probe",),
        "robustness": ("RobustnessResult", "evaluate_robustness"),
        "video": ("VideoEvaluation", "evaluate_videos"),
        "stage": ("evaluate_run", "score_splits", "Scores", "RunEvaluation"),
    },
)
