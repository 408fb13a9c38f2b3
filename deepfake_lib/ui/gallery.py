"""Example images per group (real, fake, failed), their predictions, and a grid of Grad-CAM heatmaps."""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize

from deepfake_lib import CLASS_NAMES
from deepfake_lib.core.images import ImageLoadError, load_image
from deepfake_lib.data.scan import Sample
from deepfake_lib.predict.predictors import Predictor
from deepfake_lib.predict.results import Prediction

log = logging.getLogger(__name__)

GROUPS = ("real", "fake", "failed")
GROUP_COLORS = {"real": "#4C72B0", "fake": "#DD8452", "failed": "#C44E52", "uploaded": "#55A868"}


@dataclass(frozen=True)
class Example:
    """An image to explain: its true ``label`` (REAL = 0, FAKE = 1, -1 unknown), ``group`` ("real", "fake",
    "failed" or "uploaded") and the FAKE ``probability`` recorded when it was found (None if not scored)."""

    path: Path
    label: int
    group: str
    probability: float | None = None

    @property
    def label_name(self) -> str:
        return CLASS_NAMES[self.label].upper() if self.label in (0, 1) else "?"

    def title(self) -> str:
        return f"{self.group} · {self.path.name} (label {self.label_name})"


def parse_label(value: Any) -> int:
    """0/1, "real"/"fake" (any case) or bools -> REAL = 0 / FAKE = 1; anything else -> -1 (unknown)."""
    if isinstance(value, str):
        name = value.strip().lower()
        return CLASS_NAMES.index(name) if name in CLASS_NAMES else -1
    if isinstance(value, bool | int | np.integer) and int(value) in (0, 1):
        return int(value)
    return -1


def score_failures(
    predictor: Predictor,
    samples: Sequence[Sample],
    batch_size: int = 32,
    num_workers: int = -1,
    progress: bool = True,
) -> list[Example]:
    """The labelled ``samples`` that this predictor gets wrong at its threshold, hardest (largest log loss)
    first: ``evaluate.find_failures`` for the model on display, so the grid never shows another model's
    failures or images it was fine-tuned on."""
    from deepfake_lib.evaluation.evaluate import find_failures, predict_samples

    preds = predict_samples(
        predictor.model, list(samples), predictor.image_size, batch_size, num_workers, progress=progress,
        desc="finding failures", tta=predictor.tta,
    )  # fmt: skip
    return [
        Example(Path(f["path"]), parse_label(f["true_label"]), "failed", f["probability"])
        for f in find_failures(preds, predictor.threshold)
    ]


def gradcam_record(
    checkpoint: str | os.PathLike[str],
    split: str,
    threshold: float,
    failures: Sequence[Example],
    examples: Sequence[Example],
    predictions: Sequence[Prediction],
    figure: str | os.PathLike[str],
) -> dict[str, Any]:
    """The ``gradcam`` section of ``metrics.json``."""
    return {
        "checkpoint": str(checkpoint),
        "split": split,
        "threshold": threshold,
        "n_failures": len(failures),
        "examples": examples_table(examples, predictions, threshold),
        "figure": str(figure),
    }


def pick_examples(
    samples: Sequence[Sample], failures: Sequence[Example], n_per_group: int, seed: int = 0
) -> list[Example]:
    """``n_per_group`` random REAL and FAKE images that are not failures, then the ``n_per_group`` first
    (hardest) failures; in the order real, fake, failed."""
    rng = random.Random(seed)
    failed = {Path(ex.path).resolve() for ex in failures}
    out: list[Example] = []
    for label, group in enumerate(("real", "fake")):
        pool = [s for s in samples if s.label == label and Path(s.path).resolve() not in failed]
        out += [Example(Path(s.path), label, group) for s in rng.sample(pool, min(n_per_group, len(pool)))]
    return out + list(failures[:n_per_group])


def predict_examples(
    predictor: Predictor, examples: Sequence[Example], batch_size: int = 16
) -> tuple[list[Example], list[Prediction]]:
    """Predictions with heatmaps for the examples whose image loads (others are logged and left out)."""
    kept, images = [], []
    for ex in examples:
        try:
            images.append(load_image(ex.path))
            kept.append(ex)
        except ImageLoadError as exc:
            log.warning("left out %s: %s", exc.path, exc.reason)
    preds = predictor.predict(images, heatmaps=True, batch_size=batch_size)
    for ex, pred in zip(kept, preds, strict=True):
        pred.path = str(ex.path)
    return kept, preds


def gradcam_grid(
    examples: Sequence[Example], predictions: Sequence[Prediction], threshold: float, thumb: float = 1.7
) -> Any:
    """One row per group; each example as a pair (image, Grad-CAM overlay) titled with its label, FAKE
    probability and decision at ``threshold`` (green = right, red = wrong). Returns the figure."""
    groups = list(dict.fromkeys([*GROUPS, *(ex.group for ex in examples)]))
    by_group = {g: [(ex, p) for ex, p in zip(examples, predictions, strict=True) if ex.group == g] for g in groups}
    n_cols = 2 * max(1, max(len(v) for v in by_group.values()))
    fig, axes = plt.subplots(
        len(groups), n_cols, figsize=(thumb * n_cols, thumb * len(groups) + 1.2), squeeze=False, layout="constrained"
    )
    for r, group in enumerate(groups):
        for ax in axes[r]:
            ax.axis("off")
        if not by_group[group]:
            color = GROUP_COLORS.get(group, "black")
            axes[r][0].text(0, 0.5, f"{group.upper()}: no examples", fontsize=10, va="center", color=color)
            continue
        for i, (ex, pred) in enumerate(by_group[group]):
            ax_img, ax_cam = axes[r][2 * i], axes[r][2 * i + 1]
            ax_img.imshow(pred.image)
            head = f"{group.upper()}\n" if i == 0 else "\n"
            title = ax_img.set_title(f"{head}{ex.path.name[:18]}\nlabel {ex.label_name}", fontsize=7, loc="left")
            if i == 0:
                title.set_color(GROUP_COLORS.get(group, "black"))
            ax_cam.imshow(pred.overlay())
            decision = pred.decision_at(threshold)
            right = ex.label not in (0, 1) or (decision == "FAKE") == (ex.label == 1)
            ax_cam.set_title(
                f"\np = {pred.probability:.3f}\n-> {decision}", fontsize=7, color="#2a7a2a" if right else "#c0392b"
            )
    fig.colorbar(
        ScalarMappable(Normalize(0, 1), "jet"),
        ax=axes.ravel().tolist(),
        orientation="horizontal",
        fraction=0.04,
        aspect=50,
        label="Grad-CAM of the FAKE logit, scaled per image: blue = low, red/yellow = high (grey: cropped away)",
    )
    fig.suptitle(f"Grad-CAM: where the model sees FAKE evidence (threshold {threshold:.3f})")
    return fig


def examples_table(examples: Sequence[Example], predictions: Sequence[Prediction], threshold: float) -> list[dict]:
    """One row per example: group, file, label, probability, decision at ``threshold``, correct."""
    rows = []
    for ex, pred in zip(examples, predictions, strict=True):
        decision = pred.decision_at(threshold)
        rows.append(
            {
                "group": ex.group,
                "file": ex.path.name,
                "label": ex.label_name,
                "probability": round(pred.probability, 4),
                "decision": decision,
                "correct": None if ex.label not in (0, 1) else (decision == "FAKE") == (ex.label == 1),
                "path": str(ex.path),
            }
        )
    return rows
