"""One table for every dataset layout: each video (or image) a reader found, with its label, manipulation method,
compression, group and official split; what the dataset's own metadata names that is absent; and the one-line refusal
of a root that is not the dataset. Readers (``ffpp``, ``dfdc``, ``dfdcp``, ``celebdf``, ``folders``) build it, the
protocol step reads it."""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from deepfake_lib import CLASS_NAMES, FAKE, REAL

SPLITS = ("train", "val", "test")
ORIGINAL = "original"  # the method of every real video


class DatasetRootError(ValueError):
    """A root that is not the dataset a reader reads: the message names the root and what was looked for."""


@dataclass(frozen=True)
class MediaRow:
    """One file of a dataset. ``path``: relative to the dataset root (POSIX). ``label``: REAL 0 / FAKE 1, from the
    dataset's own labels or layout, never guessed. ``method``: ``ORIGINAL`` for real files, else the manipulation
    (``Deepfakes``, ``Face2Face``, ``Celeb-synthesis``, ``DFDC``...). ``compression``: ``raw``/``c23``/``c40`` for
    FaceForensics++, "" where a dataset has one. ``group``: what must stay on one side of a split (the FF++ pair, the
    DFDC original, the Celeb-DF identity). ``split``: the official split (``SPLITS``) where the dataset's protocol
    gives one, else None. ``source``: the subset it came from (``youtube``, ``actors``, ``dfdc_train_part_0``,
    ``YouTube-real``)."""

    path: str
    label: int
    method: str
    compression: str
    group: str
    split: str | None
    source: str = ""

    def __post_init__(self) -> None:
        if self.label not in (REAL, FAKE):
            raise ValueError(f"{self.path}: label must be {REAL} (real) or {FAKE} (fake), got {self.label!r}")
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"{self.path}: split must be one of {SPLITS} or None, got {self.split!r}")
        if not self.group:
            raise ValueError(f"{self.path}: every row needs a group")


@dataclass
class DatasetTable:
    """What a reader found under ``root``: ``rows`` (sorted by path), ``missing`` (``(path, why)`` for each file the
    dataset's metadata or split files name that is absent: a partial download), and ``notes`` (what the reader decided
    and the user should know, e.g. "DFD actor videos have no official split")."""

    dataset: str
    root: Path
    rows: list[MediaRow]
    missing: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def counts(self) -> list[dict[str, Any]]:
        """Files per method, compression, official split and class: ``[{"method", "compression", "split", "label",
        "n"}]`` sorted, split ``"-"`` where none is given."""
        counter = Counter((r.method, r.compression, r.split or "-", CLASS_NAMES[r.label]) for r in self.rows)
        keys = ("method", "compression", "split", "label")
        return [{**dict(zip(keys, k, strict=True)), "n": n} for k, n in sorted(counter.items())]

    def report(self) -> dict[str, Any]:
        """The JSON-able record of what was found and left out (metrics.json's ``data.dataset``)."""
        return {
            "dataset": self.dataset, "root": str(self.root), "files": len(self.rows),
            "groups": len({r.group for r in self.rows}), "counts": self.counts(),
            "missing": [{"path": p, "why": w} for p, w in self.missing], "notes": list(self.notes),
        }  # fmt: skip

    def write_csv(self, path: str | os.PathLike[str]) -> Path:
        """The rows as CSV (``MediaRow``'s fields as columns), written atomically."""
        from deepfake_lib.core.runs import write_csv

        columns = [x.name for x in fields(MediaRow)]
        return write_csv(path, columns, ({**asdict(r), "split": r.split or ""} for r in self.rows))


def read_table_csv(path: str | os.PathLike[str]) -> list[MediaRow]:
    """``write_csv``'s rows read back."""
    with Path(path).open(newline="", encoding="utf-8") as f:
        return [MediaRow(**{**r, "label": int(r["label"]), "split": r["split"] or None}) for r in csv.DictReader(f)]
