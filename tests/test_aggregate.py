"""The video aggregation rules (``evaluation.aggregate``) on hand-made face scores."""

from __future__ import annotations

import pytest

from deepfake_lib.evaluation.aggregate import (
    DEFAULT_FRAME_RULE,
    FRAME_RULES,
    VIDEO_SCORES,
    check_rule,
    confident_mean,
    decisive_rule,
    frame_rules,
    sbi_rule,
    track_mean_max,
)


def test_track_mean_then_the_most_suspicious_track() -> None:
    assert track_mean_max([0, 0, 1], [0.2, 0.4, 0.35]) == pytest.approx(0.35)
    assert track_mean_max([0, 0, 1, 1], [0.9, 0.1, 0.6, 0.6]) == pytest.approx(0.6)


def test_sbi_takes_the_most_suspicious_face_of_each_frame_then_the_mean() -> None:
    # frame 0: faces 0.1 and 0.9; frame 1: 0.3 and 0.5 -> (0.9 + 0.5) / 2
    assert sbi_rule([0, 0, 1, 1], [0.1, 0.9, 0.3, 0.5]) == pytest.approx(0.7)
    assert sbi_rule(["a.png", "b.png"], [0.2, 0.4]) == pytest.approx(0.3)  # any key names a frame


def test_confident_mean_follows_the_dfdc_winners_rule() -> None:
    assert confident_mean([0.9] * 14 + [0.5] * 18) == pytest.approx(0.9)  # 14 > 32 / 2.5 and > 11: their mean
    assert confident_mean([0.9] * 12 + [0.5] * 20) == pytest.approx((0.9 * 12 + 0.5 * 20) / 32)  # 12 < 12.8
    assert confident_mean([0.95] * 11 + [0.5]) == pytest.approx((0.95 * 11 + 0.5) / 12)  # not more than 11
    assert confident_mean([0.1] * 30 + [0.5] * 2) == pytest.approx(0.1)  # 30 > 90% under 0.2: their mean
    assert confident_mean([0.1] * 28 + [0.5] * 4) == pytest.approx((0.1 * 28 + 0.5 * 4) / 32)


def test_frame_rules_report_every_rule() -> None:
    scores = frame_rules([0, 0, 1, 1], [0, 1, 0, 1], [0.2, 0.4, 0.8, 0.6])
    assert tuple(scores) == FRAME_RULES and ("lstm", *FRAME_RULES) == VIDEO_SCORES
    assert scores["frame_mean"] == pytest.approx(0.7) and scores["frame_max"] == pytest.approx(0.8)
    assert scores["sbi"] == pytest.approx(0.7) and scores["confident_mean"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="without any face score"):
        frame_rules([], [], [])


def test_the_deciding_rule() -> None:
    assert decisive_rule("auto", 4) == "lstm" and decisive_rule("auto", 1) == DEFAULT_FRAME_RULE
    assert decisive_rule("sbi", 4) == "sbi" and check_rule("confident_mean") == "confident_mean"
    with pytest.raises(ValueError, match="needs a model trained on clips"):
        decisive_rule("lstm", 1)
    with pytest.raises(ValueError, match="one of lstm, frame_mean, frame_max, sbi, confident_mean"):
        decisive_rule("median", 4)
