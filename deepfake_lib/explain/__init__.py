"""Why a score: Grad-CAM heatmaps and the spectra of a data set.

The public names below load their module on first use (``import deepfake_lib.explain`` stays light).
"""

from deepfake_lib.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "heatmaps": (
            "FrameAdapter",
            "default_target_layer",
            "gradcam",
            "crop_box",
            "to_image_size",
            "overlay",
            "save_overlay",
        ),
        "spectra": (
            "CACHE_VERSION",
            "REPORT_KEYS",
            "CHANNELS",
            "SplitSpectra",
            "compute_spectra",
            "ImageSpectrum",
            "image_spectrum",
            "inputs_key",
            "split_spectra",
            "NAME",
            "SpectralBaseline",
            "spectral_baseline",
            "scorings_table",
            "scores_by_path",
            "frequency_record",
        ),
    },
)
