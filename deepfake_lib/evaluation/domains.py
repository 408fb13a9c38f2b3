"""The cross-dataset matrix in the field's form: one trained model scored on its own test split and on the test
sides of other datasets (folders the protocol step prepared: ``prepare.protocol``), one row per domain and per
manipulation method, with frame-level and video-level AUC.

For every row: the number of videos, frame AUC and video AUC (each video's frame probabilities pooled by their mean,
the field's rule; ``rules`` adds the workbench's other video rules), each with a 95% interval from a bootstrap over
the videos' groups (a resample draws whole groups, so frames of one video never count as independent evidence), the
ECE of the model's stored temperature on that domain and the false-alarm rate (REAL frames called FAKE) at its stored
threshold (chosen on frames). A method's row holds the domain's real videos and that method's fakes.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from deepfake_lib.evaluation.inference import Predictions
from deepfake_lib.evaluation.metrics import expected_calibration_error, full_metrics, has_both_classes

ALL_METHODS = "all"
VIDEO_RULE = "mean"  # the field's video score: the mean of its frames' probabilities


@dataclass
class DomainScores:
    """A model's frame-level scores on one domain: ``preds`` (probabilities at the model's temperature) and, aligned
    with them, each frame's video, method and group from the protocol manifest."""

    name: str
    preds: Predictions
    videos: list[str]
    methods: list[str]
    groups: list[str]


def score_domain(
    model: nn.Module,
    data_dir: str | os.PathLike[str],
    split: str = "test",
    name: str | None = None,
    batch_size: int = 64,
    num_workers: int = -1,
    tta: str = "none",
    progress: bool = True,
) -> DomainScores:
    """Score every frame of ``data_dir/split`` (a protocol folder; a plain folder counts each file as its own video
    with method ``fake`` / ``original``)."""
    from deepfake_lib import CLASS_NAMES
    from deepfake_lib.data.scan import scan_split
    from deepfake_lib.evaluation.evaluate import predict_samples
    from deepfake_lib.prepare.protocol import read_protocol_manifest

    root = Path(data_dir)
    samples = scan_split(root, split, validate=False, required=()).samples  # one class: scored, AUC n/a
    preds = predict_samples(model, samples, batch_size=batch_size, num_workers=num_workers, tta=tta,
                            progress=progress, desc=f"score {name or root.name}")  # fmt: skip
    manifest = {str(root / r["path"]): r for r in read_protocol_manifest(root) or []}
    videos, methods, groups = [], [], []
    for path, label in zip(preds.paths, preds.labels, strict=True):
        row = manifest.get(str(path)) or {}
        videos.append(row.get("video") or str(path))
        methods.append(row.get("method") or ("original" if int(label) == 0 else CLASS_NAMES[1]))
        groups.append(row.get("group") or row.get("video") or str(path))
    return DomainScores(name or root.name, preds, videos, methods, groups)


def grouped_bootstrap_auc(
    labels: np.ndarray, scores: np.ndarray, groups: list[str], n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """A percentile bootstrap interval of the AUC that resamples whole groups with replacement; NaNs when the
    scores lack a class or there are fewer than two groups."""
    from sklearn.metrics import roc_auc_score

    y, p = np.asarray(labels).astype(int), np.asarray(scores, dtype=np.float64)
    keys = sorted(set(groups))
    if not has_both_classes(y) or len(keys) < 2:
        return math.nan, math.nan
    index: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        index[g].append(i)
    members = [np.asarray(index[k]) for k in keys]
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(n_boot):
        picked = np.concatenate([members[i] for i in rng.integers(0, len(keys), len(keys))])
        if has_both_classes(y[picked]):
            aucs.append(roc_auc_score(y[picked], p[picked]))
    if not aucs:
        return math.nan, math.nan
    tail = (1 - level) / 2 * 100
    return float(np.percentile(aucs, tail)), float(np.percentile(aucs, 100 - tail))


def _video_scores(
    scores: DomainScores, keep: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, np.ndarray]]:
    """Per video (of the kept frames): its label, the mean of its frame probabilities, its group, and its score by
    each of the workbench's frame rules (``aggregate.frame_rules``: one face per frame)."""
    from deepfake_lib.evaluation.aggregate import frame_rules

    by_video: dict[str, list[int]] = defaultdict(list)
    for i in np.flatnonzero(keep):
        by_video[scores.videos[i]].append(int(i))
    ordered = sorted(by_video)
    labels = np.array([int(scores.preds.labels[by_video[v][0]]) for v in ordered])
    probs = np.array([float(np.mean(scores.preds.probs[by_video[v]])) for v in ordered])
    groups = [scores.groups[by_video[v][0]] for v in ordered]
    per_rule = [frame_rules([0] * len(by_video[v]), by_video[v], scores.preds.probs[by_video[v]]) for v in ordered]
    rules = {rule: np.array([r[rule] for r in per_rule]) for rule in (per_rule[0] if per_rule else {})}
    return labels, probs, groups, rules


def domain_row(
    scores: DomainScores, method: str, threshold: float, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """One row of the matrix: the domain's real videos and ``method``'s fakes (``ALL_METHODS``: every fake)."""
    labels = scores.preds.labels.astype(int)
    methods = np.asarray(scores.methods)
    keep = (labels == 0) | ((methods == method) if method != ALL_METHODS else (labels == 1))
    y, p, g = labels[keep], scores.preds.probs[keep], [scores.groups[i] for i in np.flatnonzero(keep)]
    vy, vp, vg, rules = _video_scores(scores, keep)
    frame_low, frame_high = grouped_bootstrap_auc(y, p, g, n_boot, seed=seed)
    video_low, video_high = grouped_bootstrap_auc(vy, vp, vg, n_boot, seed=seed)
    frame = full_metrics(y, p, threshold) if has_both_classes(y) else {"auc": math.nan}
    video = full_metrics(vy, vp, threshold) if has_both_classes(vy) else {"auc": math.nan}
    return {
        "domain": scores.name, "method": method, "real videos": int((vy == 0).sum()),
        "fake videos": int((vy == 1).sum()), "frames": int(keep.sum()),
        "frame AUC": frame["auc"], "frame AUC 95%": (frame_low, frame_high),
        "video AUC": video["auc"], "video AUC 95%": (video_low, video_high),
        "ECE": float(expected_calibration_error(y, p)) if len(y) else math.nan,
        "false alarms": float(np.mean(p[y == 0] >= threshold)) if (y == 0).any() else math.nan,
        "video AUC by rule": {rule: full_metrics(vy, r)["auc"] if has_both_classes(vy) else math.nan
                              for rule, r in rules.items()},
    }  # fmt: skip


def domain_rows(scores: DomainScores, threshold: float, n_boot: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """The domain's ``ALL_METHODS`` row, then one row per fake method when it has more than one."""
    fakes = sorted({m for m, lab in zip(scores.methods, scores.preds.labels, strict=True) if int(lab) == 1})
    methods = [ALL_METHODS] + (fakes if len(fakes) > 1 else [])
    return [domain_row(scores, m, threshold, n_boot, seed) for m in methods]


def matrix_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The rows as a table for a notebook: intervals as ``low-high`` text."""
    table = pd.DataFrame(rows).drop(columns=["video AUC by rule"], errors="ignore")  # metrics.json keeps it
    for col in ("frame AUC 95%", "video AUC 95%"):
        if col in table:
            table[col] = [f"{lo:.3f}-{hi:.3f}" if math.isfinite(lo) else "" for lo, hi in table[col]]
    return table.set_index(["domain", "method"]) if len(table) else table


def matrix_record(rows: list[dict[str, Any]], threshold: float, temperature: float) -> dict[str, Any]:
    """metrics.json's ``cross_dataset_matrix``: the rows (intervals as ``[low, high]``), the stored threshold and
    temperature they were measured at."""
    return {"threshold": float(threshold), "temperature": float(temperature), "video_rule": VIDEO_RULE,
            "rows": [{k: list(v) if isinstance(v, tuple) else v for k, v in r.items()} for r in rows]}  # fmt: skip


def cross_dataset_matrix(
    model: nn.Module,
    data_dir: str | os.PathLike[str],
    report_split: str,
    datasets: list[str],
    threshold: float,
    ckpt: dict[str, Any],
    batch_size: int = 64,
    num_workers: int = -1,
    tta: str = "none",
    seed: int = 0,
    device: str = "cpu",
    n_boot: int = 1000,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """The matrix's rows (none when ``data_dir`` did not come through the protocol step and ``datasets`` is empty):
    the model's own ``report_split`` (per method when its data came through the protocol step), then the test side of each dataset in ``datasets`` (``NAME:ROOT?options`` strings), prepared by the
    protocol step with the faces cut as the model's training faces were (the checkpoint's ``faces``)."""
    from deepfake_lib.prepare.datasets.spec import parse_dataset
    from deepfake_lib.prepare.protocol import prepare_protocol, read_protocol_manifest

    if not datasets and read_protocol_manifest(data_dir) is None:
        return []  # plain data and no other dataset: the cross-dataset cell above covers folders
    kw = {"batch_size": batch_size, "num_workers": num_workers, "tta": tta, "progress": progress}
    own = score_domain(model, data_dir, report_split, name=f"own {report_split}", **kw)
    rows = domain_rows(own, threshold, n_boot, seed)
    face = ckpt.get("faces") or {}
    for text in datasets:
        spec = parse_dataset(text)
        prepared = prepare_protocol(
            spec, None, face.get("margin", 1.3), face.get("size"), face.get("keep", "largest"),
            face.get("min_score", 0.9), seed, device=device, progress=progress, only_splits=("test",),
        )  # fmt: skip
        scores = score_domain(model, prepared.data_dir, "test", name=f"{spec.label} test", **kw)
        rows += domain_rows(scores, threshold, n_boot, seed)
    return rows
