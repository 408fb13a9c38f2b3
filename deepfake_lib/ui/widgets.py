"""ipywidgets inspector: browse examples or upload an image; see it, its Grad-CAM heatmap, probability and decision."""

from __future__ import annotations

import html
import io
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ipywidgets as w
import matplotlib.pyplot as plt
from PIL import Image

from deepfake_lib import CLASS_NAMES
from deepfake_lib.core.images import ImageLoadError, load_image
from deepfake_lib.explain.spectra import image_spectrum
from deepfake_lib.predict.predictors import Predictor
from deepfake_lib.predict.results import Prediction
from deepfake_lib.report import spectrum_plots
from deepfake_lib.ui.gallery import GROUP_COLORS, Example

log = logging.getLogger(__name__)


def png_bytes(image: Image.Image, max_side: int = 320) -> bytes:
    """``image`` shrunk to fit ``max_side``, encoded as PNG (for ``ipywidgets.Image``)."""
    img = image.convert("RGB")
    img.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


class Inspector:
    """Image | Grad-CAM heatmap | probability and decision, for one example at a time.

    Controls: a group filter and a dropdown over the examples, a threshold slider (decisions update, the
    model is not re-run) and an upload button (ipywidgets 8 ``FileUpload``) that adds your own image.
    Predictions are computed on first view and cached. Display ``inspector.widget``; under papermill it
    renders as a static placeholder and nothing waits for input. The ``on_*`` handlers take traitlets'
    change dicts, so they can be driven without a browser.
    """

    def __init__(
        self,
        predictor: Predictor,
        examples: Sequence[Example],
        predictions: Sequence[Prediction | None] | None = None,
        threshold: float | None = None,
        thumb: int = 256,
    ) -> None:
        self.predictor = predictor
        self.examples: list[Example] = list(examples)
        self.predictions: list[Prediction | None] = list(predictions or [None] * len(self.examples))
        if len(self.predictions) != len(self.examples):
            raise ValueError("predictions must match examples one to one")
        self.errors: dict[int, str] = {}
        self.shown: int | None = None  # index (into ``examples``) of the example on display
        self.thumb = thumb
        value = predictor.threshold if threshold is None else threshold
        self.group = w.ToggleButtons(options=self._groups(), value="all", description="show")
        self.select = w.Dropdown(description="image", layout=w.Layout(width="420px"))
        self.threshold = w.FloatSlider(
            value=value, min=0.0, max=1.0, step=0.01, description="threshold", readout_format=".2f"
        )
        self.upload = w.FileUpload(accept="image/*", multiple=False, description="upload image")
        size = w.Layout(width=f"{thumb}px", height=f"{thumb}px", object_fit="contain")
        self.image = w.Image(format="png", layout=size)
        self.heatmap = w.Image(format="png", layout=size)
        self.info = w.HTML()
        self.status = w.HTML()
        self.widget = w.VBox(
            [
                self.group,
                w.HBox([self.select, self.threshold, self.upload]),
                w.HBox([self._captioned(self.image, "image"), self._captioned(self.heatmap, "Grad-CAM"), self.info]),
                self.status,
            ]
        )
        self._refresh_options()
        self.group.observe(self.on_group, names="value")
        self.select.observe(self.on_select, names="value")
        self.threshold.observe(self.on_threshold, names="value")
        self.upload.observe(self.on_upload, names="value")
        if self.select.value is not None:
            self.show(self.select.value)

    # ------------------------------------------------------------------ state
    def _groups(self) -> list[str]:
        return ["all", *dict.fromkeys(ex.group for ex in self.examples)]

    def _refresh_options(self) -> None:
        wanted = self.group.value
        options = [(ex.title(), i) for i, ex in enumerate(self.examples) if wanted in ("all", ex.group)]
        current = self.select.value
        self.select.options = options
        keep = current in [i for _, i in options]
        self.select.value = current if keep else (options[0][1] if options else None)

    @staticmethod
    def _captioned(widget: w.Widget, caption: str) -> w.VBox:
        return w.VBox([w.HTML(f"<b>{caption}</b>"), widget])

    # ------------------------------------------------------------------ display
    def prediction(self, index: int) -> Prediction | None:
        """The (cached) prediction of example ``index``; None when its image cannot be loaded."""
        if self.predictions[index] is None and index not in self.errors:
            try:
                self.predictions[index] = self.predictor.predict_one(self.examples[index].path)
            except ImageLoadError as exc:
                self.errors[index] = exc.reason
        return self.predictions[index]

    def show(self, index: int) -> None:
        """Put example ``index`` on display."""
        self.shown = index
        pred = self.prediction(index)
        if pred is None:
            self.image.value = self.heatmap.value = b""
            self.status.value = self._error(f"{self.examples[index].path.name}: {self.errors[index]}")
            self.info.value = ""
            return
        self.image.value = png_bytes(pred.image, self.thumb)
        self.heatmap.value = png_bytes(pred.overlay(), self.thumb)
        self.status.value = ""
        self.refresh_info()

    def refresh_info(self) -> None:
        """Probability, decision at the slider's threshold and (when the label is known) right or wrong."""
        index = self.shown
        pred = None if index is None else self.predictions[index]
        if pred is None:
            self.info.value = ""
            return
        ex = self.examples[index]
        decision = pred.decision_at(self.threshold.value)
        colour = "#c0392b" if decision == "FAKE" else "#2a7a2a"
        lines = [
            f"<b>{html.escape(ex.path.name)}</b>",
            f"group: <span style='color:{GROUP_COLORS.get(ex.group, 'black')}'>{ex.group}</span>",
            f"label: {ex.label_name}",
            f"P(FAKE) = <b>{pred.probability:.4f}</b>",
            f"threshold = {self.threshold.value:.2f}",
            f"decision: <b style='color:{colour}'>{decision}</b>",
        ]
        if ex.label in (0, 1):
            right = (decision == "FAKE") == (ex.label == 1)
            lines.append("correct" if right else "<b>wrong</b>")
        self.info.value = "<div style='padding-left:12px;line-height:1.6'>" + "<br>".join(lines) + "</div>"

    @staticmethod
    def _error(message: str) -> str:
        return f"<span style='color:#c0392b'>error: {html.escape(message)}</span>"

    # ------------------------------------------------------------------ handlers
    def on_group(self, change: dict[str, Any]) -> None:
        self._refresh_options()

    def on_select(self, change: dict[str, Any]) -> None:
        if change["new"] is not None:
            self.show(change["new"])

    def on_threshold(self, change: dict[str, Any]) -> None:
        self.refresh_info()

    def on_upload(self, change: dict[str, Any]) -> None:
        """``change["new"]``: ipywidgets 8's tuple of ``{"name", "content" (memoryview), ...}`` dicts."""
        items = change["new"] or ()
        for item in items:
            self.add_image(bytes(item["content"]), item.get("name") or "upload")
        if items:
            self.upload.value = ()  # so that uploading the same file again fires a new change

    def add_image(self, content: bytes, name: str) -> int | None:
        """Predict an image given as file bytes, add it (group "uploaded") and show it; returns its index,
        or None (with the reason under the inspector) when the bytes are not a usable image."""
        suffix = Path(name).suffix.lower()[:8]
        with tempfile.TemporaryDirectory() as tmp:  # through load_image: same checks as files on disk
            path = Path(tmp) / f"upload{suffix}"
            path.write_bytes(content)
            try:
                image = load_image(path)
            except ImageLoadError as exc:
                self.status.value = self._error(f"{name}: {exc.reason}")
                return None
        pred = self.predictor.predict_one(image)
        pred.path = name
        self.examples.append(Example(Path(name), -1, "uploaded"))
        self.predictions.append(pred)
        index = len(self.examples) - 1
        self.group.options = self._groups()
        if self.group.value not in ("all", "uploaded"):
            self.group.value = "all"  # triggers _refresh_options
        self._refresh_options()
        if self.select.value == index:
            self.show(index)
        else:
            self.select.value = index  # on_select shows it
        return index


class FrameSlider:
    """A video's sampled frames (what the model saw) on a slider, with each frame's time and FAKE probability.

    ``result``: a ``video_predict.VideoPrediction``. Display ``slider.widget``; ``show(i)`` moves it from code.
    """

    def __init__(self, result: Any, thumb: int = 256) -> None:
        if not result.frames:
            raise ValueError("the video prediction has no frames")
        self.result = result
        self.thumb = thumb
        self.slider = w.IntSlider(
            value=0, min=0, max=len(result.frames) - 1, description="frame", continuous_update=False
        )
        self.image = w.Image(format="png", width=thumb, height=thumb)
        self.info = w.HTML()
        self.slider.observe(self.on_slide, names="value")
        self.widget = w.VBox([self.slider, w.HBox([self.image, self.info])])
        self.show(0)

    def show(self, index: int) -> None:
        frame = self.result.frames[index]
        self.slider.value = index
        if index < len(self.result.crops):
            self.image.value = png_bytes(self.result.crops[index], self.thumb)
        decision = "FAKE" if frame.probability >= self.result.threshold else "REAL"
        self.info.value = (
            f"<b>{html.escape(Path(self.result.path).name)}</b><br>t = {frame.time:.2f} s (frame {frame.index}), "
            f"track {frame.track}<br>P(FAKE) = {frame.probability:.3f}: {decision} at {self.result.threshold:.3f}"
            f"<br>video: {self.result.decision} ({self.result.aggregate} {self.result.probability:.3f})"
        )

    def on_slide(self, change: dict[str, Any]) -> None:
        if change["new"] != change.get("old"):
            self.show(int(change["new"]))


def figure_png(fig: Any, dpi: int = 90) -> bytes:
    """A matplotlib figure as PNG bytes (for ``ipywidgets.Image``); the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


class SpectrumInspector:
    """One image's spectrum next to its class mean (``spectrum_plots.spectrum_view``), one image at a time.

    ``spectra``: where the class means come from (e.g. the train split's ``spectral.SplitSpectra``); ``paths`` and
    ``labels``: the images to browse; ``scores``: optional ``{path: {name: P(FAKE)}}`` shown beside (the detector,
    the spectral baseline). An image is read when selected; one that cannot be read says why. Display
    ``inspector.widget``; under papermill nothing waits for input.
    """

    def __init__(
        self,
        spectra: Any,
        paths: Sequence[str | Path],
        labels: Sequence[int],
        scores: dict[str, dict[str, float]] | None = None,
    ) -> None:
        if len(paths) != len(labels):
            raise ValueError("paths and labels must match one to one")
        self.spectra = spectra
        self.paths = [str(p) for p in paths]
        self.labels = [int(y) for y in labels]
        self.scores = scores or {}
        self.class_profiles = spectra.class_profiles()
        options = [
            (f"{Path(p).name} ({CLASS_NAMES[y].upper()})", i)
            for i, (p, y) in enumerate(zip(self.paths, self.labels, strict=True))
        ]
        self.select = w.Dropdown(options=options, description="image", layout=w.Layout(width="460px"))
        self.view = w.Image(format="png")
        self.info = w.HTML()
        self.shown: int | None = None
        self.widget = w.VBox([self.select, self.info, self.view])
        self.select.observe(self.on_select, names="value")
        if options:
            self.show(0)

    def show(self, index: int) -> None:
        """Put image ``index`` on display."""
        self.shown = index
        path, label = self.paths[index], self.labels[index]
        try:
            spec = image_spectrum(path, self.spectra.size)
        except ImageLoadError as exc:
            self.view.value = b""
            self.info.value = (
                f"<span style='color:#c0392b'>{html.escape(Path(path).name)}: {html.escape(exc.reason)}</span>"
            )
            return
        name = CLASS_NAMES[label].upper()
        fig = spectrum_plots.spectrum_view(
            spec.image, spec.power, self.spectra.mean_power(label), self.spectra.freqs, spec.profile,
            self.class_profiles, f"{Path(path).name} ({name})",
        )  # fmt: skip
        self.view.value = figure_png(fig)
        probs = " | ".join(f"{k}: P(FAKE) = {v:.3f}" for k, v in self.scores.get(path, {}).items())
        self.info.value = (
            f"<b>{html.escape(Path(path).name)}</b> (label {name}; class mean over the {self.spectra.split} split)"
            + (f"<br>{html.escape(probs)}" if probs else "")
        )

    def on_select(self, change: dict[str, Any]) -> None:
        if change["new"] is not None and change["new"] != change.get("old"):
            self.show(int(change["new"]))
