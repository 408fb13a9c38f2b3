"""Cheap baselines scored like the detector: logistic regression on fixed features (fitted on the train split,
threshold on the threshold split, numbers on the report split) and a side-by-side table with the detector."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegressionCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from deepfake_lib.evaluation.evaluate import choose_threshold
from deepfake_lib.evaluation.metrics import full_metrics

KEYS = ("auc", "balanced_accuracy", "eer", "ece", "average_precision")
MAX_FOLDS = 5


class TooFewSamples(ValueError):
    """The training set has fewer than 2 samples of a class: no baseline can be fitted."""


def fit_logistic(x: np.ndarray, y: np.ndarray, seed: int = 0) -> Pipeline:
    """Standardise ``x [N, F]``, then L2 logistic regression with class-balanced weights and C chosen by
    cross-validation (log loss; 5 folds, fewer when the smaller class has fewer than 5 samples).
    ``TooFewSamples`` when a class has fewer than 2."""
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=2)
    if counts.min() < 2:
        raise TooFewSamples(f"needs at least 2 samples of each class to fit, got REAL {counts[0]}, FAKE {counts[1]}")
    clf = LogisticRegressionCV(
        Cs=np.logspace(-4, 2, 13), cv=int(min(MAX_FOLDS, counts.min())), scoring="neg_log_loss",
        class_weight="balanced", max_iter=5000, random_state=seed,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter at the weakest regularisation
        return make_pipeline(StandardScaler(), clf).fit(x, y)


@dataclass
class BaselineScores:
    """A fitted baseline's FAKE probabilities ``probs[split] [N]`` with ``labels[split] [N]``, and its record
    (``C``, ``threshold``, ``n``, ``report``: ``full_metrics`` on the report split)."""

    probs: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    record: dict[str, Any]


def score_baseline(
    features: dict[str, tuple[np.ndarray, np.ndarray]],
    train_split: str = "train",
    threshold_split: str = "val",
    report_split: str = "test",
    threshold_method: str = "eer",
    seed: int = 0,
) -> BaselineScores:
    """``features[split] = (x [N, F], labels [N])``: fit on ``train_split``, choose the threshold on
    ``threshold_split`` by ``threshold_method`` (as 03 does for the detector), report on ``report_split``."""
    x_train, y_train = features[train_split]
    clf = fit_logistic(x_train, y_train, seed)
    probs = {split: clf.predict_proba(x)[:, 1] for split, (x, _) in features.items()}
    labels = {split: y for split, (_, y) in features.items()}
    choice = choose_threshold(labels[threshold_split], probs[threshold_split], threshold_method, split=threshold_split)
    record = {
        "C": float(clf[-1].C_[0]),
        "threshold": choice.threshold,
        "threshold_split": threshold_split,
        "report_split": report_split,
        "n": {split: len(y) for split, y in labels.items()},
        "report": full_metrics(labels[report_split], probs[report_split], choice.threshold),
    }
    return BaselineScores(probs, labels, record)


def comparison(
    detector_report: dict[str, Any], baselines: dict[str, dict[str, Any]], keys: tuple[str, ...] = KEYS
) -> dict[str, dict[str, Any]]:
    """``{metric: {"detector": x, name: y, ...}}`` on the same report split, for each baseline record that has a
    ``report``."""
    return {
        k: {
            "detector": detector_report.get(k),
            **{n: b["report"].get(k) for n, b in baselines.items() if "report" in b},
        }
        for k in keys
    }


def with_comparison(detector_report: dict[str, Any], name: str, record: dict[str, Any]) -> dict[str, Any]:
    """``record`` plus ``comparison`` (``{metric: {"detector": x, name: y}}``) when the baseline ran; a skipped
    baseline's record (no ``report``) comes back as it is."""
    if "report" not in record:
        return record
    return {**record, "comparison": comparison(detector_report, {name: record})}
