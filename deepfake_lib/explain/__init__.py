"""Why a score: Grad-CAM heatmaps and the spectra of a data set.

The public names below load their module on first use (``import deepfake_lib.explain`` stays light).
"""

from deepfake_lib.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "heatmaps": ("FrameAdapter", "default_target_layer", "gradcam", "overlay", "save_overlay"),
        "spectra": (
            "SplitSpectra",
            "compute_spectra",
            "ImageSpectrum",
            "image_spectrum",
            "split_spectra",
            "SpectralBaseline",
            "spectral_baseline",
            "scorings_table",
            "scores_by_path",
            "frequency_record",
        ),
    },
)
