"""Before/after fine-tuning: both checkpoints' metrics on a split fine-tuning never saw."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pandas as pd

from deepfake_lib.core.device import resolve_device
from deepfake_lib.evaluation.evaluate import predict_split
from deepfake_lib.evaluation.inference import Predictions
from deepfake_lib.evaluation.metrics import SUMMARY_KEYS, full_metrics
from deepfake_lib.models.checkpoint import checkpoint_tta, load_model

COMPARE_KEYS = tuple(k for k in SUMMARY_KEYS if k != "n")  # the before/after table: every headline metric


@dataclass
class Comparison:
    """Metrics of the model before and after fine-tuning on ``split``, each at its own stored threshold."""

    split: str
    before: dict[str, Any]
    after: dict[str, Any]
    preds_before: Predictions
    preds_after: Predictions

    def table(self, keys: tuple[str, ...] = COMPARE_KEYS) -> pd.DataFrame:
        """Rows: metrics; columns: before, after, change."""
        df = pd.DataFrame({"before": [self.before[k] for k in keys], "after": [self.after[k] for k in keys]}, keys)
        df["change"] = df["after"] - df["before"]
        return df


def compare_checkpoints(
    before: str | os.PathLike[str],
    after: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    split: str,
    device: str = "auto",
    batch_size: int = 64,
    num_workers: int = 0,
    amp: bool = True,
    progress: bool = True,
) -> Comparison:
    """Predict ``split`` with both checkpoints and compute ``metrics.full_metrics`` at each one's threshold.

    Each checkpoint scores as 03 and ``predict`` do: with its stored test-time augmentation (``tta``) and
    temperature, the scores its threshold was chosen on."""
    dev = resolve_device(device)
    out = {}
    for name, path in (("before", before), ("after", after)):
        model, ckpt = load_model(path, dev)
        tta = checkpoint_tta(ckpt, path)
        preds = predict_split(model, data_dir, split, batch_size, num_workers, amp, progress, tta=tta)
        out[name] = (full_metrics(preds.labels, preds.probs, float(ckpt.get("threshold", 0.5))), preds)
    return Comparison(split, out["before"][0], out["after"][0], out["before"][1], out["after"][1])
