"""Figures for the notebooks (seaborn/matplotlib). Each function takes ``ax=None`` and returns the figure.

The frequency figures are in ``spectrum_plots``, those of one video's prediction in ``video_plots``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from deepfake_lib import CLASS_NAMES
from deepfake_lib.core.images import ImageLoadError, load_image
from deepfake_lib.evaluation import metrics

PALETTE = {"real": "#4C72B0", "fake": "#DD8452"}


def _axes(ax: Any = None, figsize: tuple[float, float] = (6, 4)) -> tuple[Any, Any]:
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def _show_file(ax: Any, path: Any) -> None:
    """The image (a clip folder: its middle frame) on ``ax``, or why it cannot be read."""
    try:
        ax.imshow(load_image(path))
    except ImageLoadError as exc:
        ax.text(0.5, 0.5, f"unreadable:\n{exc.reason[:40]}", ha="center", va="center", fontsize=7)


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
            _show_file(ax, paths[c])
            if c == 0:
                ax.set_title(name.upper(), loc="left", fontsize=11, color=PALETTE.get(name, "black"))
    fig.suptitle("Sample images per class")
    fig.tight_layout()
    return fig


def pseudo_fake_grid(rows: Sequence[Any], thumb: float = 1.8) -> Any:
    """Real faces next to their self-blended pseudo-fakes (``selfblend.preview`` rows): the real face with the
    landmarks used (green: detected, orange: the fallback layout), the pseudo-fake, its blend mask, and the
    difference from the real face (amplified 4x)."""
    n = max(1, len(rows))
    titles = ("real + landmarks", "pseudo-fake", "blend mask", "|fake - real| x4")
    fig, axes = plt.subplots(n, 4, figsize=(thumb * 4, thumb * n + 0.5), squeeze=False)
    for r, row in enumerate(rows):
        diff = np.clip(np.abs(row.fake.image.astype(np.int16) - row.real.astype(np.int16)) * 4, 0, 255)
        panels = (row.real, row.fake.image, row.fake.mask, diff.astype(np.uint8))
        for c, (ax, img) in enumerate(zip(axes[r], panels, strict=True)):
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1 if img.ndim == 2 else None)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=9)
        axes[r][0].scatter(row.points[:, 0], row.points[:, 1], s=8, c="#2ca02c" if row.detected else "#ff7f0e")
        axes[r][1].set_xlabel(f"{row.fake.region}, ratio {row.fake.ratio:.2f}", fontsize=8)
    for ax in axes.ravel()[len(rows) * 4 :]:
        ax.axis("off")
    fig.suptitle("Self-blended pseudo-fakes of real training faces")
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


# --------------------------------------------------------------------------- evaluation (notebook 03)
def _one_class_note(ax: Any, what: str) -> None:
    ax.text(
        0.5, 0.5, f"{what} undefined:\nthe split has one class only", ha="center", va="center", transform=ax.transAxes
    )


def confusion_heatmap(matrix: Sequence[Sequence[int]], normalize: bool = False, ax: Any = None) -> Any:
    """Seaborn heatmap of a 2x2 confusion matrix (rows true REAL/FAKE, columns predicted); ``normalize``: per row."""
    fig, ax = _axes(ax, (4.2, 3.6))
    cm = np.asarray(matrix, dtype=float)
    if normalize:
        rows = cm.sum(axis=1, keepdims=True)
        cm = np.divide(cm, rows, out=np.full_like(cm, np.nan), where=rows > 0)
    names = [n.upper() for n in CLASS_NAMES]
    sns.heatmap(
        cm, annot=True, fmt=".1%" if normalize else ".0f", cmap="Blues", cbar=False, square=True,
        xticklabels=names, yticklabels=names, vmin=0, vmax=1 if normalize else None, ax=ax,
    )  # fmt: skip
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("row-normalised (recall per class)" if normalize else "counts")
    return fig


def confusion_matrices(matrix: Sequence[Sequence[int]], title: str = "Confusion matrix") -> Any:
    """Counts and row-normalised heatmaps side by side."""
    fig, axes = plt.subplots(1, 2, figsize=(8.8, 3.8))
    confusion_heatmap(matrix, normalize=False, ax=axes[0])
    confusion_heatmap(matrix, normalize=True, ax=axes[1])
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _marker(ax: Any, x: float, y: float, label: str, color: str = "black") -> None:
    ax.plot([x], [y], marker="o", ms=7, mfc="none", mec=color, mew=1.8, ls="none", label=label)


def roc_curve(labels: Any, probs: Any, threshold: float | None = None, label: str = "model", ax: Any = None) -> Any:
    """ROC curve of FAKE ``probs [N]`` with AUC and EER, and the operating point at ``threshold``."""
    fig, ax = _axes(ax, (4.6, 4.2))
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), xlabel="false positive rate (REAL called FAKE)",
           ylabel="true positive rate (FAKE recall)", title="ROC")  # fmt: skip
    if not metrics.has_both_classes(labels):
        _one_class_note(ax, "ROC")
        return fig
    fpr, tpr, _ = metrics.roc_points(labels, probs)
    auc = roc_auc_score(labels, probs)
    eer, _ = metrics.eer_point(labels, probs)
    (line,) = ax.plot(fpr, tpr, lw=2, label=f"{label} (AUC {auc:.3f}, EER {eer:.3f})")
    if threshold is not None:
        c = metrics.confusion_counts(labels, probs, threshold)
        _marker(ax, c["fp"] / max(c["fp"] + c["tn"], 1), c["tp"] / max(c["tp"] + c["fn"], 1),
                f"{label}: threshold {threshold:.3f}", line.get_color())  # fmt: skip
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def pr_curve(labels: Any, probs: Any, threshold: float | None = None, label: str = "model", ax: Any = None) -> Any:
    """Precision-recall curve for FAKE with average precision, the chance level and the operating point."""
    fig, ax = _axes(ax, (4.6, 4.2))
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), xlabel="recall (FAKE)", ylabel="precision (FAKE)",
           title="Precision-recall")  # fmt: skip
    y = np.asarray(labels)
    if not metrics.has_both_classes(y):
        _one_class_note(ax, "PR curve")
        return fig
    precision, recall, _ = precision_recall_curve(y, probs)
    ap = average_precision_score(y, probs)
    (line,) = ax.step(recall, precision, where="post", lw=2, label=f"{label} (AP {ap:.3f})")
    ax.axhline(y.mean(), color="grey", ls=":", lw=1, label=f"chance ({y.mean():.2f} FAKE)")
    if threshold is not None:
        m = metrics.full_metrics(y, probs, threshold)
        if not np.isnan(m["fake_precision"]):
            _marker(ax, m["fake_recall"], m["fake_precision"], f"{label}: threshold {threshold:.3f}", line.get_color())
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(alpha=0.3)
    return fig


def reliability_diagram(labels: Any, probs: Any, n_bins: int = 10, ax: Any = None) -> Any:
    """Observed FAKE fraction per predicted-probability bin against the diagonal, with ECE and bin counts."""
    fig, ax = _axes(ax, (4.6, 4.2))
    b = metrics.reliability_bins(labels, probs, n_bins)
    ece = metrics.expected_calibration_error(labels, probs, n_bins)
    width = b["upper"] - b["lower"]
    used = b["count"] > 0
    ax.bar(b["lower"][used], b["frac_fake"][used], width=width[used], align="edge", alpha=0.75,
           edgecolor="white", color=PALETTE["fake"], label="observed FAKE fraction")  # fmt: skip
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1, label="perfect calibration")
    ax.plot(b["mean_prob"][used], b["frac_fake"][used], "k.", ms=6, label="mean predicted probability")
    for lo, w, frac, n in zip(b["lower"][used], width[used], b["frac_fake"][used], b["count"][used], strict=True):
        ax.text(lo + w / 2, min(frac + 0.02, 0.95), f"{int(n)}", ha="center", fontsize=7)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted FAKE probability", ylabel="fraction FAKE",
           title=f"Reliability (ECE {ece:.3f}; numbers: images per bin)")  # fmt: skip
    ax.legend(fontsize=8, loc="upper left")
    return fig


def reliability_before_after(labels: Any, raw_probs: Any, calibrated_probs: Any, temperature: float) -> Any:
    """Two reliability diagrams side by side: the scores before and after temperature scaling."""
    fig, axes = plt.subplots(1, 2, figsize=(9.4, 4.2))
    reliability_diagram(labels, raw_probs, ax=axes[0])
    reliability_diagram(labels, calibrated_probs, ax=axes[1])
    for ax, name in zip(axes, ("before calibration", f"after (temperature {temperature:.2f})"), strict=True):
        ax.set_title(f"{name}\n{ax.get_title()}", fontsize=9)
    fig.tight_layout()
    return fig


def score_histogram(labels: Any, probs: Any, threshold: float | None = None, ax: Any = None, bins: int = 25) -> Any:
    """Histogram of FAKE probabilities per true class, with the decision threshold."""
    fig, ax = _axes(ax, (6, 3.6))
    df = pd.DataFrame({"FAKE probability": np.asarray(probs, dtype=float),
                       "class": [CLASS_NAMES[int(y)] for y in np.asarray(labels)]})  # fmt: skip
    sns.histplot(data=df, x="FAKE probability", hue="class", hue_order=list(CLASS_NAMES), palette=PALETTE,
                 bins=np.linspace(0, 1, bins + 1), element="step", stat="count", common_norm=False, ax=ax)  # fmt: skip
    if threshold is not None:
        ax.axvline(threshold, color="black", ls="--", lw=1.2)
        ax.text(threshold, ax.get_ylim()[1] * 0.95, f" threshold {threshold:.3f}", fontsize=8, va="top")
    ax.set_xlim(0, 1)
    ax.set_title("Scores per true class")
    return fig


def failure_grid(failures: Sequence[dict[str, Any]], n: int = 16, cols: int = 8, thumb: float = 1.7) -> Any:
    """The first ``n`` failure records (hardest first): image, true label and FAKE probability."""
    shown = list(failures)[:n]
    if not shown:
        fig, ax = plt.subplots(figsize=(5, 1.2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no failures: every image was classified correctly", ha="center", va="center")
        return fig
    cols = min(cols, len(shown))
    rows = math.ceil(len(shown) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(thumb * cols, (thumb + 0.45) * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, rec in zip(axes.flat, shown, strict=False):
        _show_file(ax, rec["path"])
        true = rec["true_label"]
        ax.set_title(f"true {true.upper()}\np(FAKE)={rec['probability']:.3f}", fontsize=8, color=PALETTE.get(true))
    fig.tight_layout()
    fig.suptitle("Worst failures (most confidently wrong first)", y=1.02)
    return fig


# --------------------------------------------------------------------------- fine-tuning (notebook 04)
def metric_comparison(table: pd.DataFrame, keys: Sequence[str] | None = None, ax: Any = None) -> Any:
    """Grouped horizontal bars of ``table`` columns ``before`` and ``after`` (rows: metrics)."""
    rows = [k for k in (keys or table.index) if k in table.index]
    fig, ax = _axes(ax, (6.5, 0.38 * len(rows) + 1.2))
    df = table.loc[rows, ["before", "after"]].reset_index(names="metric").melt(id_vars="metric", var_name="model")
    sns.barplot(data=df, y="metric", x="value", hue="model", palette=["#8C8C8C", "#55A868"], ax=ax)
    for container in ax.containers:
        ax.bar_label(container, fmt="%.3f", fontsize=7, padding=2)
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_xlim(0, max(1.0, float(np.nanmax(df["value"].to_numpy(dtype=float), initial=0.0))) * 1.12)
    sns.move_legend(ax, "lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, title=None, frameon=False)
    ax.set_title("Before vs after fine-tuning", pad=24)
    return fig


def before_after(
    table: pd.DataFrame,
    curves: dict[str, tuple[Any, Any, float | None]],
    keys: Sequence[str] = ("balanced_accuracy", "fake_recall", "real_recall", "auc", "average_precision", "eer"),
    title: str = "",
) -> Any:
    """Metric bars and overlaid ROC curves; ``curves``: name -> ``(labels [N], probs [N], threshold)``."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), gridspec_kw={"width_ratios": [1.3, 1]})
    metric_comparison(table, keys, ax=axes[0])
    for name, (labels, probs, threshold) in curves.items():
        roc_curve(labels, probs, threshold, label=name, ax=axes[1])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- robustness (notebook 03)
def _severity_label(name: str, severity: Any) -> str:
    return f"{name} {severity:g}" if isinstance(severity, (int, float)) else f"{name} {severity}"


def robustness(table: pd.DataFrame, ax: Any = None) -> Any:
    """AUC and balanced accuracy per degradation and severity as grouped bars; the clean row as dashed lines.

    ``table``: ``RobustnessResult.table()`` (columns ``degradation``, ``severity``, ``auc``,
    ``balanced_accuracy``; the row ``none`` is the clean baseline).
    """
    names = {"auc": "AUC", "balanced_accuracy": "balanced accuracy"}
    colors = {"AUC": "#4C72B0", "balanced accuracy": "#55A868"}
    clean = table[table["degradation"] == "none"]
    degraded = table[table["degradation"] != "none"].copy()
    fig, ax = _axes(ax, (max(6.0, 0.8 * len(degraded) + 2.5), 4.2))
    degraded["setting"] = [
        _severity_label(d, s) for d, s in zip(degraded["degradation"], degraded["severity"], strict=True)
    ]
    long = degraded.melt(id_vars="setting", value_vars=list(names), var_name="metric", value_name="value")
    long["metric"] = long["metric"].map(names)
    if len(long):
        sns.barplot(data=long, x="setting", y="value", hue="metric", palette=colors, ax=ax)
        for container in ax.containers:
            ax.bar_label(container, labels=[f"{v:.2f}" if np.isfinite(v) else "" for v in container.datavalues],
                         fontsize=7, padding=1)  # fmt: skip
        plt.setp(ax.get_xticklabels(), rotation=30, ha="right", rotation_mode="anchor")
    else:
        ax.text(0.5, 0.5, "no degradations: clean baseline only", ha="center", va="center", transform=ax.transAxes)
    for key, name in names.items():
        value = float(clean[key].iloc[0]) if len(clean) else math.nan
        if np.isfinite(value):
            ax.axhline(value, color=colors[name], ls="--", lw=1.2, label=f"clean {name} ({value:.3f})")
    ax.set(ylim=(0, 1.08), xlabel="", ylabel="score", title="Robustness to degradations (fixed threshold)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return fig


# --------------------------------------------------------------------------- clips and ROC levels (notebooks 01, 03, 07)
def clip_strips(clips_by_class: dict[str, Sequence[Any]], thumb: float = 1.2, max_frames: int = 8) -> Any:
    """Each clip folder as a row of its frames (up to ``max_frames``, evenly picked), rows grouped by class."""
    from deepfake_lib.core.images import clip_frame_files

    rows = [(name, clip) for name, clips in clips_by_class.items() for clip in clips]
    frames = [clip_frame_files(clip) for _, clip in rows]
    frames = [[f[i] for i in np.linspace(0, len(f) - 1, min(max_frames, len(f))).round().astype(int)] if f else []
              for f in frames]  # fmt: skip
    n_cols = max([len(f) for f in frames] + [1])
    fig, axes = plt.subplots(max(1, len(rows)), n_cols, figsize=(thumb * n_cols, thumb * max(1, len(rows)) + 0.4),
                             squeeze=False)  # fmt: skip
    for r, ((name, clip), files) in enumerate(zip(rows, frames, strict=True)):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(files):
                _show_file(ax, files[c])
        axes[r][0].set_title(f"{name.upper()} · {Path(clip).name[:40]}", loc="left", fontsize=8,
                             color=PALETTE.get(name, "black"))  # fmt: skip
    fig.suptitle("Video clips: the frames of one clip per row")
    fig.tight_layout()
    return fig


def roc_levels(
    scores: dict[str, tuple[Any, Any]],
    names: dict[str, str] | None = None,
    ax: Any = None,
    title: str = "ROC: frames, clips and videos",
) -> Any:
    """ROC curves of several scorings of one set (frames, clips and videos; or the detector and a baseline):
    ``{key: (labels, probs)}``; keys with one class only are left out."""
    fig, ax = _axes(ax, (5.2, 4.4))
    for key, (labels, probs) in scores.items():
        if metrics.has_both_classes(labels):
            roc_curve(labels, probs, label=(names or {}).get(key, key), ax=ax)
    ax.set_title(title)
    return fig
