"""metrics.py against scikit-learn and hand-computed cases (EER, TPR at FPR, ECE)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    confusion_matrix,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)

from deepfake_lib.evaluation import metrics as M

# 4 REAL, 4 FAKE; one REAL (0.7) scores above one FAKE (0.6).
Y8 = np.array([0, 0, 0, 0, 1, 1, 1, 1])
P8 = np.array([0.1, 0.2, 0.3, 0.7, 0.6, 0.8, 0.9, 0.95])


@pytest.fixture(scope="module")
def random_scores() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.3).astype(int)
    p = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    return y, p


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.62])
def test_full_metrics_match_sklearn(random_scores, threshold):
    y, p = random_scores
    m = M.full_metrics(y, p, threshold)
    pred = (p >= threshold).astype(int)
    prec, rec, f1, support = precision_recall_fscore_support(y, pred, labels=[1, 0], zero_division=0)
    assert m["accuracy"] == pytest.approx((pred == y).mean())
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert [m["fake_precision"], m["real_precision"]] == pytest.approx(prec)
    assert [m["fake_recall"], m["real_recall"]] == pytest.approx(rec)
    assert [m["fake_f1"], m["real_f1"]] == pytest.approx(f1)
    assert [m["n_fake"], m["n_real"]] == list(support)
    assert m["auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["average_precision"] == pytest.approx(average_precision_score(y, p))
    assert m["log_loss"] == pytest.approx(log_loss(y, p))
    assert m["brier"] == pytest.approx(brier_score_loss(y, p))
    assert m["confusion_matrix"]["matrix"] == confusion_matrix(y, pred, labels=[0, 1]).tolist()
    assert m["fpr"] == pytest.approx(1 - m["real_recall"])
    assert m["fnr"] == pytest.approx(1 - m["fake_recall"])
    assert json.loads(json.dumps(m)) == m  # plain JSON values


def test_eer_and_tpr_on_the_hand_made_case():
    eer, thr = M.equal_error_rate(Y8, P8)
    # at threshold 0.7: 3 of 4 FAKE caught (FNR 1/4), 1 of 4 REAL flagged (FPR 1/4)
    assert eer == pytest.approx(0.25)
    assert thr == pytest.approx(0.65)  # halfway between 0.7 and the next score 0.6
    assert M.tpr_at_fpr(Y8, P8, 0.01) == pytest.approx(0.75)
    assert M.tpr_at_fpr(Y8, P8, 0.25) == pytest.approx(1.0)
    m = M.full_metrics(Y8, P8, 0.65)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (3, 1, 1, 3)
    assert m["eer"] == pytest.approx(0.25) and m["tpr_at_1pct_fpr"] == pytest.approx(0.75)


def test_eer_interpolates_between_roc_points():
    # ROC points: (0, .5) at 0.9, (1/3, .5) at 0.6, (1/3, 1) at 0.5: FPR = FNR = 1/3 on the vertical segment
    y, p = [0, 0, 0, 1, 1], [0.1, 0.2, 0.6, 0.5, 0.9]
    eer, thr = M.equal_error_rate(y, p)
    assert eer == pytest.approx(1 / 3)
    assert thr == pytest.approx(0.55)  # the nearer point (FNR 1/2) reproduced with a margin


@pytest.mark.parametrize(
    ("y", "p", "expected"),
    [
        ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 0.0),  # perfectly separated
        ([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1], 1.0),  # perfectly inverted
        ([0, 0, 1, 1], [0.5, 0.5, 0.5, 0.5], 0.5),  # no information
    ],
)
def test_eer_extremes(y, p, expected):
    assert M.equal_error_rate(y, p)[0] == pytest.approx(expected)


def test_eer_is_where_fpr_meets_fnr_on_random_data(random_scores):
    y, p = random_scores
    eer, thr = M.equal_error_rate(y, p)
    m = M.full_metrics(y, p, thr)
    assert min(m["fpr"], m["fnr"]) - 1e-9 <= eer <= max(m["fpr"], m["fnr"]) + 1e-9
    # no other threshold brings FPR and FNR closer together
    gaps = [abs((p[y == 0] >= t).mean() - (p[y == 1] < t).mean()) for t in np.unique(p)]
    assert abs(m["fpr"] - m["fnr"]) <= min(gaps) + 1e-12


def test_tpr_at_fpr_uses_only_thresholds_within_the_fpr_budget():
    neg = list(np.linspace(0.0, 0.5, 99)) + [0.95]  # 100 REAL, one of them scored high
    pos = [0.9, 0.96, 0.97, 0.98]
    y, p = [0] * 100 + [1] * 4, neg + pos
    assert M.tpr_at_fpr(y, p, 0.01) == pytest.approx(1.0)  # the one false alarm is 1% FPR: allowed
    assert M.tpr_at_fpr(y, p, 0.005) == pytest.approx(0.75)  # FPR must be 0: only the three above 0.95
    m = M.full_metrics(y, p)
    assert m["tpr_at_1pct_fpr"] == pytest.approx(1.0) and m["tpr_at_5pct_fpr"] == pytest.approx(1.0)


def test_ece_by_hand_and_bins_match_sklearn(random_scores):
    y, p = [0, 1, 1, 1], [0.05, 0.15, 0.95, 0.85]
    assert M.expected_calibration_error(y, p, n_bins=10) == pytest.approx((0.05 + 0.85 + 0.15 + 0.05) / 4)
    y, p = random_scores
    bins = M.reliability_bins(y, p, n_bins=10)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    used = bins["count"] > 0
    np.testing.assert_allclose(bins["frac_fake"][used], prob_true)
    np.testing.assert_allclose(bins["mean_prob"][used], prob_pred)
    assert bins["count"].sum() == len(y)
    expected = np.sum(bins["count"][used] / len(y) * np.abs(prob_true - prob_pred))
    assert M.expected_calibration_error(y, p, 10) == pytest.approx(expected)
    assert M.expected_calibration_error([0, 1], [0.0, 1.0]) == 0.0


def test_undefined_metrics_are_nan_and_others_defined():
    m = M.full_metrics([0, 0, 0], [0.1, 0.6, 0.2])  # REAL only
    for key in ("auc", "average_precision", "eer", "tpr_at_1pct_fpr", "fake_recall", "fnr"):
        assert math.isnan(m[key]), key
    assert m["fake_precision"] == 0.0  # one image predicted FAKE, wrongly
    assert m["accuracy"] == pytest.approx(2 / 3) and m["balanced_accuracy"] == pytest.approx(2 / 3)
    assert m["fpr"] == pytest.approx(1 / 3) and not math.isnan(m["log_loss"]) and not math.isnan(m["ece"])
    nothing_fake = M.full_metrics([0, 1], [0.1, 0.2])  # nothing predicted FAKE: its precision is undefined
    assert math.isnan(nothing_fake["fake_precision"]) and nothing_fake["fake_f1"] == 0.0
    empty = M.full_metrics([], [])
    assert empty["n"] == 0 and math.isnan(empty["accuracy"]) and math.isnan(empty["log_loss"])


def test_basic_metrics_still_work():
    m = M.basic_metrics(Y8, P8)
    assert set(m) == {"accuracy", "balanced_accuracy", "auc", "log_loss"}
    assert m["auc"] == pytest.approx(roc_auc_score(Y8, P8))


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="length"):
        M.full_metrics([0, 1], [0.5])
    with pytest.raises(ValueError, match="0 \\(REAL\\) or 1"):
        M.full_metrics([0, 2], [0.5, 0.5])
