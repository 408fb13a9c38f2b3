"""Figures, the run summary, the model card and the evaluation's TensorBoard events.

The public names below load their module on first use (``import deepfake_lib.report`` stays light).
"""

from deepfake_lib.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "plots": (
            "class_balance",
            "sample_grid",
            "pseudo_fake_grid",
            "training_curves",
            "confusion_heatmap",
            "confusion_matrices",
            "roc_curve",
            "pr_curve",
            "reliability_diagram",
            "score_histogram",
            "failure_grid",
            "metric_comparison",
            "before_after",
            "robustness",
            "clip_strips",
            "roc_levels",
        ),
        "spectrum_plots": ("class_spectra", "radial_spectra", "spectrum_view"),
        "video_plots": ("video_timeline", "frame_strip"),
        "eval_events": ("log_evaluation",),
        "model_card": ("write_model_card",),
        "summary": ("describe_weights", "write_summary"),
    },
)
