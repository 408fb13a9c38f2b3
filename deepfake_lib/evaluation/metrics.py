"""Binary classification metrics for FAKE = 1 probabilities.

Inputs are ``labels [N]`` (REAL = 0, FAKE = 1) and ``probs [N]`` (probability of FAKE); a sample is
predicted FAKE when ``prob >= threshold``. Every value is a plain float (JSON-friendly). NaN means
*undefined* and appears only where the data cannot define the metric:

- no samples: every rate is NaN;
- one class only: ROC AUC, EER, TPR at FPR (need both classes), and average precision (needs FAKE);
- a class with no samples: its recall and the F1 is NaN when it is also never predicted; a class that is
  never predicted: its precision. Balanced accuracy is then the mean of the defined class recalls.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, balanced_accuracy_score, log_loss, roc_auc_score, roc_curve

from deepfake_lib import CLASS_NAMES

EPS = 1e-7
FPR_TARGETS = {"tpr_at_1pct_fpr": 0.01, "tpr_at_5pct_fpr": 0.05}


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
        "log_loss": float(log_loss(y, np.clip(p, EPS, 1 - EPS), labels=[0, 1])),
    }


def _arrays(labels: Any, probs: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(int).ravel()
    p = np.asarray(probs, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels and probs differ in length ({y.size} vs {p.size})")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (REAL) or 1 (FAKE)")
    return y, p


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else math.nan


def has_both_classes(labels: Any) -> bool:
    return len(np.unique(np.asarray(labels))) == 2


# --------------------------------------------------------------------------- ROC operating points
def roc_points(labels: Any, probs: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ROC operating point: ``fpr [K]``, ``tpr [K]``, ``thresholds [K]`` (descending, first is +inf).

    Point ``i`` predicts FAKE for ``prob >= thresholds[i]``; ``thresholds[1:]`` are the distinct scores.
    Needs both classes.
    """
    y, p = _arrays(labels, probs)
    if not has_both_classes(y):
        raise ValueError("ROC points need both REAL and FAKE samples")
    return roc_curve(y, p, drop_intermediate=False)


def point_threshold(thresholds: np.ndarray, i: int) -> float:
    """A threshold that reproduces ROC point ``i``, halfway to the next lower score (a margin for new data).

    Point 0 (nothing predicted FAKE) maps to halfway between the highest score and 1.0; the last point
    (everything FAKE) to the lowest score itself.
    """
    upper = 1.0 if not np.isfinite(thresholds[i]) else float(thresholds[i])
    if i + 1 >= len(thresholds):
        return upper
    return float((upper + float(thresholds[i + 1])) / 2)


def eer_point(labels: Any, probs: Any) -> tuple[float, int]:
    """Equal error rate and the index of the ROC point nearest to it.

    EER is where the false positive rate equals the false negative rate (1 - TPR), linearly interpolated
    between the two ROC points around the crossing. Returns ``(nan, -1)`` without both classes.
    """
    y, p = _arrays(labels, probs)
    if not has_both_classes(y):
        return math.nan, -1
    fpr, tpr, _ = roc_points(y, p)
    d = fpr - (1.0 - tpr)  # non-decreasing from -1 to +1 along the curve
    i = int(np.argmax(d >= 0))
    if d[i] == 0 or i == 0:
        return float(fpr[i]), i
    j = i - 1
    t = -d[j] / (d[i] - d[j])
    eer = float(fpr[j] + t * (fpr[i] - fpr[j]))
    return eer, (j if abs(d[j]) < abs(d[i]) else i)


def equal_error_rate(labels: Any, probs: Any) -> tuple[float, float]:
    """``(eer, threshold)``: the EER and a threshold at the nearest ROC point (NaN without both classes)."""
    eer, i = eer_point(labels, probs)
    if i < 0:
        return math.nan, math.nan
    _, _, thr = roc_points(labels, probs)
    return eer, point_threshold(thr, i)


def tpr_at_fpr(labels: Any, probs: Any, max_fpr: float) -> float:
    """Highest TPR (FAKE recall) of any threshold whose FPR is at most ``max_fpr`` (no interpolation).

    With fewer than ``1 / max_fpr`` REAL samples this is the TPR at FPR = 0. NaN without both classes.
    """
    y, p = _arrays(labels, probs)
    if not has_both_classes(y):
        return math.nan
    fpr, tpr, _ = roc_points(y, p)
    return float(tpr[fpr <= max_fpr + 1e-12].max())


# --------------------------------------------------------------------------- intervals
def _rank_auc(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of ``pos [B, P]`` against ``neg [B, N]`` (Mann-Whitney, ties counted half)."""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    n_pos, n_neg = pos.shape[1], neg.shape[1]
    return (ranks[:, :n_pos].sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def bootstrap_auc_interval(
    labels: Any, probs: Any, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """A percentile bootstrap interval of the ROC AUC: ``{"low", "high", "level", "method", "n_boot"}``.

    Each resample draws the FAKE and the REAL scores with replacement, each class keeping its size (a stratified
    bootstrap: every resample has both classes). NaN bounds without both classes.
    """
    y, p = _arrays(labels, probs)
    out: dict[str, Any] = {"low": math.nan, "high": math.nan, "level": level, "method": "bootstrap", "n_boot": n_boot}
    if not has_both_classes(y):
        return out
    pos, neg = p[y == 1], p[y == 0]
    rng = np.random.default_rng(seed)
    aucs = []
    for start in range(0, n_boot, 100):  # in chunks: [chunk, P + N] ranks at a time
        b = min(100, n_boot - start)
        aucs.append(_rank_auc(rng.choice(pos, (b, pos.size)), rng.choice(neg, (b, neg.size))))
    tail = (1 - level) / 2 * 100
    out["low"], out["high"] = (float(v) for v in np.percentile(np.concatenate(aucs), [tail, 100 - tail]))
    return out


def normal_auc_interval(auc: float, n_fake: int, n_real: int, level: float = 0.95) -> dict[str, Any]:
    """An interval of the ROC AUC from the AUC and the class sizes alone (Hanley and McNeil's standard error, a
    normal approximation, clipped to [0, 1]): for when the scores are gone. NaN without both classes."""
    out: dict[str, Any] = {"low": math.nan, "high": math.nan, "level": level, "method": "normal (Hanley-McNeil)"}
    if not (n_fake > 0 and n_real > 0 and math.isfinite(auc)):
        return out
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_fake - 1) * (q1 - auc * auc) + (n_real - 1) * (q2 - auc * auc)) / (n_fake * n_real)
    from scipy.stats import norm

    half = float(norm.ppf(0.5 + level / 2)) * math.sqrt(max(var, 0.0))
    out["low"], out["high"] = max(0.0, auc - half), min(1.0, auc + half)
    return out


# --------------------------------------------------------------------------- calibration
def reliability_bins(labels: Any, probs: Any, n_bins: int = 10) -> dict[str, np.ndarray]:
    """Equal-width bins of the FAKE probability: ``lower, upper, count, mean_prob, frac_fake`` (each ``[n_bins]``).

    Bin assignment matches ``sklearn.calibration.calibration_curve(strategy="uniform")``; empty bins have
    NaN ``mean_prob`` and ``frac_fake``.
    """
    y, p = _arrays(labels, probs)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(edges[1:-1], p)
    count = np.bincount(ids, minlength=n_bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_prob = np.bincount(ids, weights=p, minlength=n_bins) / count
        frac_fake = np.bincount(ids, weights=y, minlength=n_bins) / count
    return {"lower": edges[:-1], "upper": edges[1:], "count": count, "mean_prob": mean_prob, "frac_fake": frac_fake}


def expected_calibration_error(labels: Any, probs: Any, n_bins: int = 10) -> float:
    """ECE of the FAKE probability: sum over bins of ``count / N * |frac_fake - mean_prob|`` (NaN if N = 0)."""
    b = reliability_bins(labels, probs, n_bins)
    n = b["count"].sum()
    if n == 0:
        return math.nan
    used = b["count"] > 0
    return float(np.sum(b["count"][used] / n * np.abs(b["frac_fake"][used] - b["mean_prob"][used])))


# --------------------------------------------------------------------------- everything
def brier_score(labels: Any, probs: Any) -> float:
    """Mean squared difference between the FAKE probability and the label (NaN without images)."""
    y, p = _arrays(labels, probs)
    return float(np.mean((p - y) ** 2)) if y.size else math.nan


def confusion_counts(labels: Any, probs: Any, threshold: float = 0.5) -> dict[str, int]:
    """``tn, fp, fn, tp`` at ``threshold`` (positive = FAKE)."""
    y, p = _arrays(labels, probs)
    pred = (p >= threshold).astype(int)
    return {
        "tn": int(((y == 0) & (pred == 0)).sum()),
        "fp": int(((y == 0) & (pred == 1)).sum()),
        "fn": int(((y == 1) & (pred == 0)).sum()),
        "tp": int(((y == 1) & (pred == 1)).sum()),
    }


def _class_scores(tp: int, fp: int, fn: int) -> dict[str, float]:
    return {
        "recall": _ratio(tp, tp + fn),
        "precision": _ratio(tp, tp + fp),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def full_metrics(labels: Any, probs: Any, threshold: float = 0.5, n_bins: int = 10) -> dict[str, Any]:
    """All metrics of one split at ``threshold`` (see the module docstring for NaN).

    Keys: ``n, n_real, n_fake, threshold, accuracy, balanced_accuracy``; ``fake_recall, fake_precision,
    fake_f1, real_recall, real_precision, real_f1, fpr, fnr`` at the threshold; threshold-free ``auc,
    average_precision, eer, eer_threshold, tpr_at_1pct_fpr, tpr_at_5pct_fpr, log_loss, brier, ece``;
    ``tn, fp, fn, tp`` and ``confusion_matrix`` (rows true REAL/FAKE, columns predicted REAL/FAKE).
    """
    y, p = _arrays(labels, probs)
    c = confusion_counts(y, p, threshold)
    tn, fp, fn, tp = c["tn"], c["fp"], c["fn"], c["tp"]
    fake = _class_scores(tp, fp, fn)
    real = _class_scores(tn, fn, fp)
    recalls = [r for r in (fake["recall"], real["recall"]) if not math.isnan(r)]
    both = has_both_classes(y)
    eer, eer_thr = equal_error_rate(y, p) if both else (math.nan, math.nan)
    out: dict[str, Any] = {
        "n": int(y.size),
        "n_real": int((y == 0).sum()),
        "n_fake": int((y == 1).sum()),
        "threshold": float(threshold),
        "accuracy": _ratio(tp + tn, y.size),
        "balanced_accuracy": float(np.mean(recalls)) if recalls else math.nan,
        **{f"fake_{k}": v for k, v in fake.items()},
        **{f"real_{k}": v for k, v in real.items()},
        "fpr": _ratio(fp, fp + tn),
        "fnr": _ratio(fn, fn + tp),
        "auc": float(roc_auc_score(y, p)) if both else math.nan,
        "average_precision": float(average_precision_score(y, p)) if (y == 1).any() else math.nan,
        "eer": eer,
        "eer_threshold": eer_thr,
        **{k: (tpr_at_fpr(y, p, v) if both else math.nan) for k, v in FPR_TARGETS.items()},
        "log_loss": float(log_loss(y, np.clip(p, EPS, 1 - EPS), labels=[0, 1])) if y.size else math.nan,
        "brier": brier_score(y, p),
        "ece": expected_calibration_error(y, p, n_bins),
        **c,
        "confusion_matrix": {"labels": list(CLASS_NAMES), "matrix": [[tn, fp], [fn, tp]]},
    }
    return out


SUMMARY_KEYS = (
    "n", "accuracy", "balanced_accuracy", "fake_recall", "fake_precision", "fake_f1", "real_recall",
    "real_precision", "real_f1", "fpr", "auc", "average_precision", "eer", "tpr_at_1pct_fpr", "tpr_at_5pct_fpr",
    "log_loss", "brier", "ece", "threshold",
)  # fmt: skip
