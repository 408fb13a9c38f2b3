"""Figures of one video's prediction: FAKE probability over time, and a strip of its scored frames."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from deepfake_lib.report.plots import PALETTE, _axes


def video_timeline(
    frames: Sequence[dict[str, Any]],
    clips: Sequence[dict[str, Any]] = (),
    threshold: float = 0.5,
    probability: float | None = None,
    title: str = "",
    ax: Any = None,
) -> Any:
    """FAKE probability over a video's time: each sampled frame scored alone (dots and line, one per face track),
    each clip's LSTM score as a bar over the time it spans, the decision threshold and the video's probability.

    ``frames``: dicts with ``time`` (s), ``probability``, ``track``; ``clips``: dicts with ``start``, ``end``,
    ``probability``, ``track``.
    """
    fig, ax = _axes(ax, figsize=(8, 3.2))
    df = pd.DataFrame(list(frames))
    for track, rows in df.groupby("track", sort=True):
        rows = rows.sort_values("time")
        ax.plot(rows["time"], rows["probability"], "o-", ms=4, lw=1.2, label=f"frames, track {track}")
    for i, c in enumerate(clips):
        end = c["end"] if c["end"] > c["start"] else c["start"] + 1e-3
        ax.hlines(c["probability"], c["start"], end, colors="#C44E52", lw=4, alpha=0.7,
                  label="clips (LSTM)" if i == 0 else None)  # fmt: skip
    ax.axhline(threshold, color="grey", ls="--", lw=1, label=f"threshold {threshold:.2f}")
    if probability is not None:
        ax.axhline(probability, color="black", lw=1, alpha=0.6, label=f"video {probability:.2f}")
    ax.set(xlabel="time (s)", ylabel="P(FAKE)", ylim=(-0.02, 1.02), title=title or "FAKE probability over time")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    return fig


def frame_strip(images: Sequence[Any], probabilities: Sequence[float], times: Sequence[float], thumb: float = 1.4,
                threshold: float = 0.5) -> Any:  # fmt: skip
    """A strip of sampled frames (face crops) with their time and FAKE probability (red title: above threshold)."""
    n = max(1, len(images))
    fig, axes = plt.subplots(1, n, figsize=(thumb * n, thumb + 0.5), squeeze=False)
    for ax, img, p, t in zip(axes[0], images, probabilities, times, strict=False):
        ax.imshow(img)
        ax.set_title(f"{t:.2f}s\n{p:.2f}", fontsize=8, color=PALETTE["fake"] if p >= threshold else PALETTE["real"])
    for ax in axes[0]:
        ax.axis("off")
    fig.tight_layout()
    return fig
