"""Notebook widgets: the inspector and example galleries.

The public names below load their module on first use (``import deepfake_lib.ui`` stays light).
"""

from deepfake_lib.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "gallery": (
            "GROUPS",
            "GROUP_COLORS",
            "Example",
            "parse_label",
            "score_failures",
            "gradcam_record",
            "pick_examples",
            "predict_examples",
            "gradcam_grid",
            "examples_table",
        ),
        "widgets": ("png_bytes", "Inspector", "FrameSlider", "figure_png", "SpectrumInspector"),
    },
)
