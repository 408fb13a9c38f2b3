"""Scan ``DATA_DIR/<split>/{real,fake}``: the samples of a split with their labels, and the files left out."""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from deepfake_lib import CLASS_NAMES
from deepfake_lib.core.files import Skipped
from deepfake_lib.core.images import (
    VIDEO_HINT,
    VIDEO_WAY_IN,
    check_image,
    list_samples,
)

log = logging.getLogger(__name__)


class DataLayoutError(ValueError):
    """The data folder does not have the ``<split>/{real,fake}/`` layout; the message says what to fix."""


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int  # REAL = 0, FAKE = 1


@dataclass
class SplitScan:
    """The usable samples of one split, and the files that were skipped with the reason."""

    split: str
    root: Path
    samples: list[Sample]
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def labels(self) -> list[int]:
        return [s.label for s in self.samples]

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(self.labels)
        return {name: c.get(i, 0) for i, name in enumerate(CLASS_NAMES)}

    @property
    def imbalance_ratio(self) -> float:
        """Majority count / minority count (``inf`` when a class is empty)."""
        n = sorted(self.counts.values())
        return float("inf") if n[0] == 0 else n[-1] / n[0]

    def summary(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "counts": self.counts,
            "total": len(self.samples),
            "imbalance_ratio": self.imbalance_ratio,
            "skipped": len(self.skipped),
            "skipped_files": [{"path": str(s.path), "reason": s.reason} for s in self.skipped],
            "warnings": list(self.warnings),
        }


def find_class_dirs(split_dir: Path) -> dict[int, Path]:
    """Map label -> folder for ``real``/``fake`` (any case) inside ``split_dir``."""
    found: dict[int, list[Path]] = {}
    for child in sorted(split_dir.iterdir()):
        if child.is_dir() and child.name.lower() in CLASS_NAMES:
            found.setdefault(CLASS_NAMES.index(child.name.lower()), []).append(child)
    for label, dirs in found.items():
        if len(dirs) > 1:
            names = ", ".join(d.name for d in dirs)
            raise DataLayoutError(
                f"{split_dir}: several folders for class '{CLASS_NAMES[label]}' ({names}); merge them into one"
            )
    return {label: dirs[0] for label, dirs in found.items()}


def scan_split(
    data_dir: str | os.PathLike[str],
    split: str,
    validate: bool = True,
    workers: int = 4,
    required: Sequence[str] = CLASS_NAMES,
) -> SplitScan:
    """Scan ``data_dir/split/{real,fake}``.

    With ``validate`` every image is decoded once; broken files are skipped and listed with the
    reason. Raises ``DataLayoutError`` for a missing split or ``required`` class folder, or a split with no usable
    image; a missing class folder that is not required is a warning (``required=("real",)`` for training on
    self-blended pseudo-fakes, which needs no fakes).
    """
    root = Path(data_dir)
    split_dir = root / split
    if not split_dir.is_dir():
        available = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        hint = f" (found: {', '.join(available)})" if available else ""
        raise DataLayoutError(
            f"split folder '{split_dir}' not found{hint}; expected {root}/{split}/real and {root}/{split}/fake"
        )
    class_dirs = find_class_dirs(split_dir)
    absent = [CLASS_NAMES[i] for i in range(len(CLASS_NAMES)) if i not in class_dirs]
    missing = [name for name in absent if name in required]
    if missing:
        others = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
        raise DataLayoutError(
            f"{split_dir}: missing class folder(s) {', '.join(missing)} (found: {', '.join(others) or 'none'}); "
            f"put real images in {split_dir}/real and fake images in {split_dir}/fake"
        )
    candidates: list[Sample] = []
    skipped: list[Skipped] = []
    for label, folder in sorted(class_dirs.items()):
        files, bad = list_samples(folder)
        candidates += [Sample(p, label) for p in files]
        skipped += bad
    samples = candidates
    if validate and candidates:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            reasons = list(
                tqdm(
                    pool.map(lambda s: check_image(s.path), candidates),
                    total=len(candidates),
                    desc=f"checking {split}",
                    leave=False,
                )
            )
        samples = [s for s, r in zip(candidates, reasons, strict=True) if r is None]
        skipped += [Skipped(s.path, r) for s, r in zip(candidates, reasons, strict=True) if r is not None]
    scan = SplitScan(split=split, root=split_dir, samples=samples, skipped=skipped)
    for s in skipped:
        log.warning("skipped %s: %s", s.path, s.reason)
    for name in absent:
        scan.warnings.append(f"{split}: no '{name}' folder in {split_dir}")
    for name, n in scan.counts.items():
        if n == 0 and name not in absent:
            scan.warnings.append(
                f"{split}: class '{name}' has no usable images in {class_dirs[CLASS_NAMES.index(name)]}"
            )
    if not samples:
        videos = sum(s.reason == VIDEO_HINT for s in skipped)
        hint = "; see the skipped list"
        if videos:
            hint = f"; {videos} of them are videos: cut them into clips first ({VIDEO_WAY_IN})"
        raise DataLayoutError(f"{split_dir}: no usable images or clips ({len(skipped)} skipped){hint}")
    return scan


# --------------------------------------------------------------------------- whole dataset
def scan_dataset(
    data_dir: str | os.PathLike[str],
    splits: Sequence[str] = ("train", "val"),
    validate: bool = True,
    required: Sequence[str] = CLASS_NAMES,
) -> dict[str, SplitScan]:
    """``scan_split`` for each split (``required``: the class folders that must exist); raises
    ``DataLayoutError`` naming the first problem found."""
    root = Path(data_dir)
    if not root.is_dir():
        raise DataLayoutError(
            f"data folder {root} not found; expected {root}/<split>/real and {root}/<split>/fake "
            f"(build the demo data with `python -m deepfake_lib.cli.demo --out {root}`)"
        )
    return {split: scan_split(root, split, validate=validate, required=required) for split in splits}
