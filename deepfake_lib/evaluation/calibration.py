"""Temperature scaling: one scalar T fitted on a held-out split by negative log-likelihood; probability =
sigmoid(logit / T). T > 1 softens an overconfident model; the ranking (AUC) is unchanged."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from deepfake_lib.core.choices import BY_EVALUATION
from deepfake_lib.evaluation.inference import Predictions
from deepfake_lib.evaluation.metrics import brier_score, expected_calibration_error, has_both_classes
from deepfake_lib.models.checkpoint import load_checkpoint, save_checkpoint

LOG_T_BOUNDS = (-4.0, 4.0)  # T in [0.018, 55]


def binary_nll(logits: Any, labels: Any, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``labels [N]`` (0/1) under sigmoid(``logits [N]`` / T), in float64."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    y = np.asarray(labels, dtype=np.float64)
    # log(1 + e^z) - y z, computed stably
    return float(np.mean(np.logaddexp(0.0, z) - y * z)) if len(z) else math.nan


@dataclass
class TemperatureFit:
    """A fitted temperature and what it did on the split it was fitted on."""

    temperature: float
    split: str | None
    n: int
    nll_before: float
    nll_after: float
    ece_before: float
    ece_after: float
    brier_before: float
    brier_after: float
    tta: str = "none"
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_temperature(logits: Any, labels: Any, split: str | None = None, tta: str = "none") -> TemperatureFit:
    """The temperature minimising the NLL of ``labels [N]`` given raw ``logits [N]`` (bounded search on log T).

    Without both classes (or no images) T stays 1, with a ``warning``.
    """
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels).astype(int)
    warning = None
    if len(z) == 0 or not has_both_classes(y):
        t, warning = 1.0, f"calibration split {split or ''} lacks a class: temperature left at 1"
    else:
        res = minimize_scalar(lambda s: binary_nll(z, y, math.exp(s)), bounds=LOG_T_BOUNDS, method="bounded")
        t = math.exp(float(res.x))
        if not binary_nll(z, y, t) <= binary_nll(z, y, 1.0):  # never worse than leaving it alone
            t = 1.0
    before, after = _probs(z, 1.0), _probs(z, t)
    return TemperatureFit(
        temperature=t, split=split, n=len(z), nll_before=binary_nll(z, y), nll_after=binary_nll(z, y, t),
        ece_before=expected_calibration_error(y, before) if len(z) else math.nan,
        ece_after=expected_calibration_error(y, after) if len(z) else math.nan,
        brier_before=brier_score(y, before) if len(z) else math.nan,
        brier_after=brier_score(y, after) if len(z) else math.nan, tta=tta, warning=warning,
    )  # fmt: skip


def _probs(logits: np.ndarray, temperature: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits / temperature))


def rescale(preds: Predictions, temperature: float) -> Predictions:
    """``preds`` with logits divided by ``temperature`` and the probabilities recomputed (a new object), in the
    arithmetic of a model holding that temperature (float32 logits, float64 sigmoid), so both give the same
    scores to the last bit and no decision at the threshold differs between them."""
    logits = np.asarray(preds.logits, dtype=np.float32) / np.float32(temperature)
    return Predictions(
        probs=_probs(logits.astype(np.float64), 1.0), labels=preds.labels,
        paths=list(preds.paths), logits=logits, bad=list(preds.bad),
    )  # fmt: skip


def calibration_table(labels: Any, raw_probs: Any, calibrated_probs: Any) -> dict[str, dict[str, float]]:
    """ECE and Brier score before and after calibration on one split: ``{"before": {...}, "after": {...}}``."""
    y = np.asarray(labels).astype(int)
    return {
        name: {"ece": expected_calibration_error(y, p), "brier": brier_score(y, p)}
        for name, p in (("before", raw_probs), ("after", calibrated_probs))
    }


def calibrate_splits(
    preds: dict[str, Predictions], split: str, tta: str = "none", enabled: bool = True
) -> tuple[dict[str, Predictions], TemperatureFit | None]:
    """Fit the temperature on ``preds[split]`` (raw logits, scored with ``tta``) and rescale every split by it:
    ``(calibrated predictions per split, the fit)``; with ``enabled=False`` the predictions as they are and None."""
    if not enabled:
        return dict(preds), None
    fit = fit_temperature(preds[split].logits, preds[split].labels, split, tta)
    return {name: rescale(p, fit.temperature) for name, p in preds.items()}, fit


def store_calibration(
    checkpoint_path: str | os.PathLike[str],
    fit: TemperatureFit | None,
    tta: str = "none",
    chosen_by: str = BY_EVALUATION,
) -> Path:
    """Write ``fit.temperature`` into the checkpoint's ``temperature`` key (how, into ``calibration``) and the TTA
    it was fitted with into ``tta``; prediction, export and video scoring apply both from then on. ``fit`` None:
    uncalibrated (temperature 1, no ``calibration``), scored with ``tta``. The file is rewritten atomically."""
    ckpt = load_checkpoint(checkpoint_path)
    ckpt["temperature"] = float(fit.temperature) if fit else 1.0
    ckpt["tta"] = fit.tta if fit else tta
    ckpt.pop("calibration", None)
    if fit:
        ckpt["calibration"] = {**fit.to_dict(), "chosen_by": chosen_by}
    return save_checkpoint(ckpt, checkpoint_path)
