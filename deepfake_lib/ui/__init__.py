"""Notebook widgets: the inspector and example galleries.

The public names below load their module on first use (``import deepfake_lib.ui`` stays light).
"""

from deepfake_lib.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "gallery": ("Example", "score_failures", "pick_examples", "predict_examples", "gradcam_grid", "examples_table"),
        "widgets": ("Inspector", "FrameSlider", "SpectrumInspector"),
    },
)
