"""Why a score: Grad-CAM heatmaps and the spectra of a data set."""
