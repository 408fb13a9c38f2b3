"""Figures, the run summary, the model card and the evaluation's TensorBoard events.

The public names below load their module on first use (``import deepfake_lib.report`` stays light).
"""

from deepfake_lib.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "plots": (
            "PALETTE",
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
        "spectrum_plots": ("BAND_COLORS", "class_spectra", "radial_spectra", "spectrum_view"),
        "video_plots": ("video_timeline", "frame_strip"),
        "eval_events": ("EVALUATE_EVENTS", "log_evaluation"),
        "model_card": ("MODEL_CARD_FILE", "write_model_card"),
        "summary": ("SUMMARY_FILE", "HEADLINE", "describe_weights", "REPORT_KEYS", "SECTIONS", "write_summary"),
    },
)
