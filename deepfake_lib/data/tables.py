"""What notebook 01 shows of a data set: class counts per split, the oversampling preview, example picks."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepfake_lib import CLASS_NAMES
from deepfake_lib.core.files import is_clip_dir
from deepfake_lib.data.samplers import (
    class_counts,
    make_oversampler,
)
from deepfake_lib.data.scan import SplitScan


def counts_table(scans: dict[str, SplitScan]) -> list[dict[str, Any]]:
    """One row per split: real, fake, total, fake share, imbalance ratio, skipped files."""
    rows = []
    for split, scan in scans.items():
        c = scan.counts
        total = sum(c.values())
        rows.append(
            {
                "split": split,
                "real": c["real"],
                "fake": c["fake"],
                "total": total,
                "fake_share": c["fake"] / total if total else float("nan"),
                "imbalance_ratio": scan.imbalance_ratio,
                "skipped": len(scan.skipped),
            }
        )
    return rows


def oversampling_preview(labels: Sequence[int], seed: int = 0) -> dict[str, Any]:
    """What one epoch of ``make_oversampler`` draws: per-class draws and how often each image repeats."""
    sampler = make_oversampler(labels, seed)
    drawn = list(sampler)
    per_class = class_counts([labels[i] for i in drawn])
    unique = class_counts([labels[i] for i in set(drawn)])
    counts = class_counts(labels)
    return {
        "epoch_size": len(drawn),
        "available": dict(zip(CLASS_NAMES, counts, strict=True)),
        "drawn": dict(zip(CLASS_NAMES, per_class, strict=True)),
        "distinct_images_drawn": dict(zip(CLASS_NAMES, unique, strict=True)),
        "mean_repeats_per_image": {
            name: (per_class[i] / counts[i] if counts[i] else float("nan")) for i, name in enumerate(CLASS_NAMES)
        },
    }


def sample_paths(scan: SplitScan, per_class: int, seed: int = 0) -> dict[str, list[Path]]:
    """A reproducible random pick of ``per_class`` image paths for each class."""
    rng = random.Random(seed)
    out = {}
    for label, name in enumerate(CLASS_NAMES):
        paths = [s.path for s in scan.samples if s.label == label]
        out[name] = rng.sample(paths, min(per_class, len(paths)))
    return out


def sample_clips(scan: SplitScan, per_class: int, seed: int = 0) -> dict[str, list[Path]]:
    """A reproducible random pick of ``per_class`` clip folders for each class (empty lists for image data)."""
    rng = random.Random(seed)
    out = {}
    for label, name in enumerate(CLASS_NAMES):
        paths = [s.path for s in scan.samples if s.label == label and is_clip_dir(s.path)]
        out[name] = rng.sample(paths, min(per_class, len(paths)))
    return out


def pick_alternating(items: Sequence[tuple[Any, int]], n: int, seed: int = 0) -> list[tuple[Any, int]]:
    """Up to ``n`` of ``(item, label)`` pairs, FAKE and REAL alternating (a reproducible random pick within each
    class)."""
    rng = random.Random(seed)
    by_label = {y: rng.sample([v for v in items if v[1] == y], sum(v[1] == y for v in items)) for y in (1, 0)}
    out: list[tuple[Any, int]] = []
    while len(out) < n and any(by_label.values()):
        for y in (1, 0):
            if by_label[y] and len(out) < n:
                out.append(by_label[y].pop(0))
    return out
