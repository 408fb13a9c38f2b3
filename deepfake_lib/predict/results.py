"""What scoring returns: the decision rule, per-image and per-face predictions, batches of scores, and the errors."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from deepfake_lib.data.faces import Face

HEATMAP_FILE = "gradcam.png"
CSV_FILE = "predictions.csv"
HEATMAP_DIR = "heatmaps"
CSV_COLUMNS = ("path", "probability", "decision", "heatmap", "error")
FACE_CSV_COLUMNS = (*CSV_COLUMNS, "n_faces")
DEFAULT_FACE_MARGIN = 1.3


class PredictError(Exception):
    """Bad input for prediction (image, folder, checkpoint, device, output folder); a one-line message."""


class NoFaceError(PredictError):
    """Face mode found no face in the image."""


def decide(probability: float, threshold: float) -> str:
    """``"FAKE"`` when ``probability >= threshold``, else ``"REAL"``."""
    return "FAKE" if probability >= threshold else "REAL"


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """FAKE probabilities from logits (any shape), in float64."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


@dataclass
class Prediction:
    """One image's FAKE probability and decision, with its Grad-CAM heatmap ``[H, W]`` (the image's size)."""

    probability: float
    decision: str
    threshold: float
    heatmap: np.ndarray | None = None
    image: Image.Image | None = None
    path: str | None = None

    def decision_at(self, threshold: float) -> str:
        return decide(self.probability, threshold)

    def overlay(self, alpha: float = 0.5) -> Image.Image:
        """The heatmap over the image (red/yellow = high FAKE evidence, blue = low)."""
        from deepfake_lib.explain.heatmaps import overlay

        if self.heatmap is None or self.image is None:
            raise ValueError("this prediction was made without a heatmap")
        return overlay(self.image, self.heatmap, alpha)

    def to_dict(self, heatmap_path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """The command line's JSON: ``{"decision", "probability" (4 decimals), "heatmap" (path or None)}``."""
        return {
            "decision": self.decision,
            "probability": round(float(self.probability), 4),
            "heatmap": None if heatmap_path is None else str(heatmap_path),
        }


@dataclass
class FaceScore:
    """One face: the detection, its ``square_box`` crop ``(left, top, right, bottom)`` in image pixels, and the
    crop's prediction (heatmap ``[h, w]`` at the scored crop's size)."""

    face: Face
    crop_box: tuple[int, int, int, int]
    prediction: Prediction

    @property
    def probability(self) -> float:
        return self.prediction.probability

    @property
    def decision(self) -> str:
        return self.prediction.decision


@dataclass
class FacePrediction:
    """Every face of one image scored alone; the image's probability and decision are its most suspicious
    face's (highest FAKE probability)."""

    faces: list[FaceScore]
    threshold: float
    image: Image.Image
    path: str | None = None

    @property
    def top(self) -> FaceScore:
        """The most suspicious face."""
        if not self.faces:
            raise ValueError("no face in this prediction")
        return max(self.faces, key=lambda f: f.probability)

    @property
    def probability(self) -> float:
        return self.top.probability

    @property
    def decision(self) -> str:
        return decide(self.probability, self.threshold)

    def overlay(self, alpha: float = 0.5, max_side: int | None = 1024) -> Image.Image:
        """The full image with each face's Grad-CAM overlay pasted into its crop box, every box outlined and
        labelled with its decision and probability (the most suspicious in red, drawn last). Images larger than
        ``max_side`` are shrunk."""
        from PIL import ImageDraw, ImageFont

        from deepfake_lib.explain.heatmaps import overlay, to_image_size

        top = self.top
        ordered = [f for f in self.faces if f is not top] + [top]
        canvas = self.image.convert("RGB")  # a copy
        for fs in ordered:
            if fs.prediction.heatmap is None:
                raise ValueError("this prediction was made without a heatmap")
            region = self.image.crop(fs.crop_box)  # full resolution, whatever size the model saw
            heat = to_image_size(fs.prediction.heatmap, region.width, region.height)
            canvas.paste(overlay(region, heat, alpha, max_side=None), fs.crop_box[:2])
        scale = 1.0
        if max_side and max(canvas.size) > max_side:
            scale = max_side / max(canvas.size)
            size = (max(1, round(canvas.width * scale)), max(1, round(canvas.height * scale)))
            canvas = canvas.resize(size, Image.Resampling.BILINEAR)
        draw = ImageDraw.Draw(canvas)
        font_size = max(10, round(max(canvas.size) / 40))
        try:
            font = ImageFont.load_default(size=font_size)
        except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
            font = ImageFont.load_default()
        for fs in ordered:
            colour = (255, 0, 0) if fs is top else (255, 255, 255)
            box = [round(v * scale) for v in fs.crop_box]
            width = max(2, round(max(canvas.size) / 250)) * (2 if fs is top else 1)
            draw.rectangle([box[0], box[1], box[2] - 1, box[3] - 1], outline=colour, width=width)
            label = f"{fs.decision} {fs.probability:.2f}"
            x0, y0, x1, y1 = draw.textbbox((0, 0), label, font=font)
            text_h = y1 - y0 + 4
            y = box[1] - text_h if box[1] >= text_h else box[1]  # above the box, inside it at the top edge
            draw.rectangle([box[0], y, box[0] + x1 - x0 + 6, y + text_h], fill=colour)
            draw.text((box[0] + 3 - x0, y + 2 - y0), label, fill=(0, 0, 0), font=font)
        return canvas

    def to_dict(self, heatmap_path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """``Prediction.to_dict``'s keys plus ``faces``: ``[{"box" [x1, y1, x2, y2], "score", "probability",
        "decision"}]`` (largest face first)."""
        return {
            "decision": self.decision,
            "probability": round(float(self.probability), 4),
            "heatmap": None if heatmap_path is None else str(heatmap_path),
            "faces": [
                {
                    "box": [round(float(v), 1) for v in fs.face.box],
                    "score": round(float(fs.face.score), 4),
                    "probability": round(float(fs.probability), 4),
                    "decision": fs.decision,
                }
                for fs in self.faces
            ],
        }


@dataclass
class BatchScores:
    """One scored batch: ``probs [B]``, ``heatmaps [B, S, S]`` at the model's input size (or None), files
    that failed to load as ``(path, reason)``."""

    paths: list[str]
    probs: np.ndarray
    heatmaps: np.ndarray | None
    bad: list[tuple[str, str]] = field(default_factory=list)
