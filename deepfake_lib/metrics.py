"""Binary classification metrics for FAKE = 1 probabilities."""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import balanced_accuracy_score, log_loss, roc_auc_score


def basic_metrics(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, balanced accuracy, ROC AUC (NaN with one class) and log loss at ``threshold``."""
    y = np.asarray(labels).astype(int)
    p = np.asarray(probs, dtype=np.float64)
    if y.size == 0:
        return {"accuracy": math.nan, "balanced_accuracy": math.nan, "auc": math.nan, "log_loss": math.nan}
    pred = (p >= threshold).astype(int)
    two_classes = len(np.unique(y)) == 2
    return {
        "accuracy": float((pred == y).mean()),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)) if two_classes else float((pred == y).mean()),
        "auc": float(roc_auc_score(y, p)) if two_classes else math.nan,
        "log_loss": float(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1])),
    }
