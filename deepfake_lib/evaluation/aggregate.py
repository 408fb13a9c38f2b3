"""How the probabilities of a video's faces become one video score: the rules 03 compares and ``predict`` applies.

Each face score belongs to a sampled frame (its frame number) and a face track (one person). The rules:

- ``lstm``: the LSTM's clip probabilities (T frames at once), averaged per track, the most suspicious track;
- ``frame_mean``: the per-frame probabilities (each frame scored alone) averaged per track, the most suspicious
  track (a video is as fake as its most manipulated person);
- ``frame_max``: the largest per-frame probability;
- ``sbi``: per frame the most suspicious face, then the mean over frames (the video protocol of SBI,
  Shiohara & Yamasaki, CVPR 2022);
- ``confident_mean``: the DFDC winner's rule (Seferbekov, 2020): when more than ``n / 2.5`` and more than 11 of
  the ``n`` face scores are above 0.8, the mean of those; else when more than 90% are under 0.2, the mean of
  those; else the mean of all. A few confident frames decide, a lukewarm majority does not dilute them.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from deepfake_lib.core.choices import FRAME_RULES, VIDEO_SCORES  # noqa: F401  (re-exported here)

# The frame rule that decides a video for a model trained on single images (a clip model's is "lstm"). On fresh
# demo videos (docs/videos.md) the max ranked better in 3 of 4 rows but within an AUC's noise at 40 videos, and
# the max turns one bad frame of a real video into a false alarm: the mean is kept (SBI's rule equals it for one
# face a frame).
DEFAULT_FRAME_RULE = "frame_mean"
CONFIDENT = {"high": 0.8, "low": 0.2, "min_high": 11, "high_share": 1 / 2.5, "low_share": 0.9}


def check_rule(name: str) -> str:
    """``name`` when it is one of ``VIDEO_SCORES`` (or ``"auto"``), else ``ValueError`` listing them."""
    if name != "auto" and name not in VIDEO_SCORES:
        raise ValueError(f"video aggregate must be 'auto' or one of {', '.join(VIDEO_SCORES)}, got {name!r}")
    return name


def decisive_rule(name: str, clip_frames: int) -> str:
    """The rule that decides: ``name``, or for ``"auto"`` ``"lstm"`` when the model reads clips of
    ``clip_frames > 1`` frames, else ``DEFAULT_FRAME_RULE``. ``"lstm"`` for a single-frame model is refused."""
    check_rule(name)
    if name == "auto":
        return "lstm" if clip_frames > 1 else DEFAULT_FRAME_RULE
    if name == "lstm" and clip_frames <= 1:
        raise ValueError("video aggregate 'lstm' needs a model trained on clips (frames > 1); this one reads 1")
    return name


def track_mean_max(tracks: Sequence[int], probs: Sequence[float]) -> float:
    """The mean probability per track, then the most suspicious track."""
    by_track: dict[int, list[float]] = {}
    for t, p in zip(tracks, probs, strict=True):
        by_track.setdefault(int(t), []).append(float(p))
    return float(max(np.mean(v) for v in by_track.values()))


def sbi_rule(frames: Sequence[Hashable], probs: Sequence[float]) -> float:
    """Per frame (its number, or any key naming it) the largest probability (its most suspicious face), then the
    mean over frames."""
    by_frame: dict[Hashable, float] = {}
    for f, p in zip(frames, probs, strict=True):
        by_frame[f] = max(by_frame.get(f, 0.0), float(p))
    return float(np.mean(list(by_frame.values())))


def confident_mean(probs: Sequence[float]) -> float:
    """The DFDC winner's rule over all face scores (see the module docstring; thresholds in ``CONFIDENT``)."""
    p = np.asarray(probs, dtype=np.float64)
    n = len(p)
    high, low = p[p > CONFIDENT["high"]], p[p < CONFIDENT["low"]]
    if len(high) > n * CONFIDENT["high_share"] and len(high) > CONFIDENT["min_high"]:
        return float(high.mean())
    if len(low) > CONFIDENT["low_share"] * n:
        return float(low.mean())
    return float(p.mean())


def frame_rules(tracks: Sequence[int], frames: Sequence[Hashable], probs: Sequence[float]) -> dict[str, float]:
    """Every rule of ``FRAME_RULES`` over one video's face scores: ``probs[i]`` of track ``tracks[i]`` in frame
    number ``frames[i]`` (each face of each sampled frame once). ``ValueError`` when there is no score."""
    if len(probs) == 0:
        raise ValueError("a video without any face score")
    return {
        "frame_mean": track_mean_max(tracks, probs),
        "frame_max": float(np.max(probs)),
        "sbi": sbi_rule(frames, probs),
        "confident_mean": confident_mean(probs),
    }
