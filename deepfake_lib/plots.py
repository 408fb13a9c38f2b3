"""Figures for the notebooks (seaborn/matplotlib). Each function takes ``ax=None`` and returns the figure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .images import ImageLoadError, load_image

PALETTE = {"real": "#4C72B0", "fake": "#DD8452"}


def _axes(ax: Any = None, figsize: tuple[float, float] = (6, 4)) -> tuple[Any, Any]:
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def class_balance(rows: Sequence[dict[str, Any]], ax: Any = None) -> Any:
    """Grouped bar chart of image counts per split and class (``rows`` from ``data.counts_table``)."""
    fig, ax = _axes(ax)
    df = pd.DataFrame(rows).melt(id_vars="split", value_vars=["real", "fake"], var_name="class", value_name="images")
    sns.barplot(data=df, x="split", y="images", hue="class", palette=PALETTE, ax=ax)
    for container in ax.containers:
        ax.bar_label(container, fontsize=9)
    ax.set_title("Images per split and class")
    return fig


def sample_grid(paths_by_class: dict[str, Sequence[Any]], thumb: float = 1.6) -> Any:
    """A grid of example images, one row per class."""
    n_cols = max(1, max((len(v) for v in paths_by_class.values()), default=1))
    n_rows = max(1, len(paths_by_class))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(thumb * n_cols, thumb * n_rows + 0.4), squeeze=False)
    for r, (name, paths) in enumerate(paths_by_class.items()):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.axis("off")
            if c >= len(paths):
                continue
            try:
                ax.imshow(load_image(paths[c]))
            except ImageLoadError as exc:
                ax.text(0.5, 0.5, f"unreadable:\n{exc.reason[:40]}", ha="center", va="center", fontsize=7)
            if c == 0:
                ax.set_title(name.upper(), loc="left", fontsize=11, color=PALETTE.get(name, "black"))
    fig.suptitle("Sample images per class")
    fig.tight_layout()
    return fig


def training_curves(history: Sequence[dict[str, float]], best_epoch: int | None = None) -> Any:
    """Loss, accuracy and validation AUC per epoch (``history`` from ``train.fit``)."""
    df = pd.DataFrame(history)
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    panels = [
        ("loss", ["train_loss", "val_loss"]),
        ("accuracy", ["train_accuracy", "val_accuracy", "val_balanced_accuracy"]),
        ("val AUC", ["val_auc"]),
    ]
    for ax, (title, cols) in zip(axes, panels, strict=True):
        for col in cols:
            if col in df:
                ax.plot(df["epoch"], df[col], marker="o", label=col)
        if best_epoch:
            ax.axvline(best_epoch, color="grey", ls="--", lw=1, label="best epoch")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
