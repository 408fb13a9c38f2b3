"""The DFDC Preview dataset (Dolhansky et al., arXiv:1910.08854) as it downloads, read into one table.

``dataset.json`` at the root maps each video's path (``original_videos/...``, ``method_A/...``, ``method_B/...``) to
``{"label": "real"|"fake", "set": "train"|"test", ...}``; other keys (``augmentations``, ``target_id``...) may be
there. Labels come only from it: a video it does not name is left out with a note. Videos of one subject stay in one
group: by the subject id (``target_id``, the person filmed) where the entry has one, else by the folder under the
method folder (``method_A/<subject>/.../file.mp4``: a subject or session). Set ``test`` is split ``test``; set
``train`` is split None (the protocol step makes grouped train/val splits from it, so validation is never the test
set).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any

from deepfake_lib import FAKE, REAL
from deepfake_lib.prepare.datasets.dfdc import (
    Listed,
    check_root,
    listed_path,
    listing_notes,
    load_json_mapping,
    match_listed,
    present_videos,
)
from deepfake_lib.prepare.datasets.table import ORIGINAL, DatasetRootError, DatasetTable, MediaRow

DATASET = "dfdcp"
METHOD = "DFDC-Preview"  # a fake's method where its path has no method_* folder
INDEX = "dataset.json"
SUBJECT_KEYS = ("target_id", "subject_id")  # the entry's subject, first found wins
LABELS = {"real": REAL, "fake": FAKE}
SETS = {"train": None, "test": "test"}  # set -> official split (train: None, we split it by groups)
GROUPED_BY = {"folder": "the folder under the method folder (a subject or session)", "file": "the file's own name"}


def _label_and_split(index: Path, key: str, info: Any) -> tuple[int, str | None]:
    """An entry's label and split; ``DatasetRootError`` naming the file and entry when it is not the format."""
    if not isinstance(info, dict):
        raise DatasetRootError(f"{index}: entry {key!r} is not an object with a label and a set")
    label = LABELS.get(str(info.get("label", "")).lower())
    if label is None:
        raise DatasetRootError(f"{index}: entry {key!r}: label must be real or fake, got {info.get('label')!r}")
    subset = str(info.get("set", "")).lower()
    if subset not in SETS:
        raise DatasetRootError(f"{index}: entry {key!r}: set must be train or test, got {info.get('set')!r}")
    return label, SETS[subset]


def _group(info: dict[str, Any], parts: tuple[str, ...]) -> tuple[str, str]:
    """The entry's group and what gave it: a subject id key, ``folder`` (``method/<folder>/...``) or ``file``."""
    for key in SUBJECT_KEYS:
        value = info.get(key)
        if value is not None and str(value).strip():
            return f"dfdcp:{str(value).strip()}", key
    if len(parts) >= 3:
        return f"dfdcp:{parts[1]}", "folder"
    return f"dfdcp:{PurePosixPath(parts[-1]).stem}", "file"


def _entry_row(index: Path, key: str, info: Any) -> tuple[MediaRow, str]:
    """One ``dataset.json`` entry as a row, and what its group came from."""
    label, split = _label_and_split(index, key, info)
    path = listed_path(".", key, index)
    parts = PurePosixPath(path).parts
    folder = parts[0] if len(parts) > 1 else ""
    fake_method = folder if folder.lower().startswith("method") else METHOD
    method = ORIGINAL if label == REAL else fake_method
    group, grouped_by = _group(info, parts)
    return MediaRow(path, label, method, "", group, split, folder), grouped_by


def _grouping_note(counts: Counter[str]) -> str:
    """Which videos were grouped by what."""
    ways = [
        f"by subject id ({how}) for {n}" if how in SUBJECT_KEYS else f"by {GROUPED_BY[how]} for {n}"
        for how, n in sorted(counts.items())
    ]
    return "groups: " + ", ".join(ways) + " videos"


def _notes(rows: list[MediaRow], grouped: Counter[str], unlisted: list[str]) -> list[str]:
    notes = listing_notes(unlisted, f"not in {INDEX}: left out (no label)")
    if grouped:
        notes.append(_grouping_note(grouped))
    if any(r.split is None for r in rows):
        notes.append(
            "set train: split None, the protocol step makes grouped train/val splits from it (validation is never "
            "the test set); set test: split test"
        )
    return notes


def read_dfdcp(root: str | os.PathLike[str]) -> DatasetTable:
    """DFDC Preview under ``root`` (``dataset.json`` and its videos) as one table; paths relative to ``root``.
    ``DatasetRootError`` for a root without ``dataset.json``, or one that is not the format."""
    root = Path(root)
    check_root(root, "DFDC Preview", INDEX)
    index = root / INDEX
    if not index.is_file():
        raise DatasetRootError(f"not a DFDC Preview root: {root} has no {INDEX}")
    data = load_json_mapping(index, 'a video path to {"label", "set"}')
    notes: list[str] = [] if data else [f"{INDEX} lists no videos"]
    listed: list[Listed] = []
    grouped: dict[str, str] = {}
    for key, info in data.items():
        row, grouped_by = _entry_row(index, key, info)
        grouped.setdefault(row.path, grouped_by)
        listed.append((row, INDEX))
    rows, missing, unlisted = match_listed(listed, present_videos(root, notes), notes)
    counts = Counter(grouped[r.path] for r in rows)
    notes.extend(_notes(rows, counts, unlisted))
    return DatasetTable(DATASET, root, rows, missing, notes)
