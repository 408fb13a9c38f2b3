"""The Deepfake Detection Challenge (DFDC, Dolhansky et al., arXiv:2006.07397) as it downloads, read into one table.

Training set: ``dfdc_train_part_N/`` folders, each with a ``metadata.json`` that maps a file name to ``{"label":
"REAL"|"FAKE", "split": "train", "original": "<real>.mp4" or null}`` (Kaggle's ``train_sample_videos/`` has the same
format; any folder with such a ``metadata.json`` counts as a part, and the root may be one part). Public test set: a
folder with ``labels.csv`` (``filename,label``, 1 = fake, 0 = real). Labels come only from those files: a video that
none names is left out with a note. A fake and the real video it was made from share one group; the training parts
have no official split (split None: the protocol step makes grouped splits), the public test set is split ``test``.
The helpers ``check_root``, ``load_json_mapping``, ``present_videos``, ``match_listed`` and ``listing_notes`` serve
every reader whose dataset lists its files in metadata (DFDC Preview too).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from deepfake_lib import FAKE, REAL
from deepfake_lib.core.files import Skipped, folder_problem, is_video_file, walk_folder
from deepfake_lib.prepare.datasets.table import ORIGINAL, DatasetRootError, DatasetTable, MediaRow

DATASET = "dfdc"
METHOD = "DFDC"  # the method of every DFDC fake
METADATA = "metadata.json"
LABELS_CSV = "labels.csv"
PART_PREFIX = "dfdc_train_part_"
LOOKED_FOR = f"{PART_PREFIX}*/{METADATA}, {METADATA} or {LABELS_CSV}"
TEST_SOURCE = "test"
NOTE_LIMIT = 20  # files named one by one in a note; the rest are counted
METADATA_LABELS = {"REAL": REAL, "FAKE": FAKE}
CSV_LABELS = {"0": REAL, "1": FAKE}
_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}

Listed = tuple[MediaRow, str]  # a row for a file as its list names it, and the list (relative to the root)


# --- helpers shared by the readers of listed datasets -----------------------------------------------------------------


def check_root(root: Path, name: str, looked_for: str) -> None:
    """``DatasetRootError`` (one line) when ``root`` is missing, a file or a symlink loop."""
    problem = folder_problem(root)
    if problem:
        raise DatasetRootError(f"not a {name} root: {root} ({problem}); looked for {looked_for}")


def load_json_mapping(path: Path, what: str) -> dict[str, Any]:
    """The JSON object in ``path``; ``DatasetRootError`` naming the file and why when it is unreadable, not valid
    JSON or not an object (``what`` says what the object should map)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DatasetRootError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise DatasetRootError(f"{path}: not valid JSON (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise DatasetRootError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(data, dict):
        kind = _JSON_TYPES.get(type(data), type(data).__name__)
        raise DatasetRootError(f"{path}: expected a JSON object mapping {what}, got a JSON {kind}")
    return data


def listed_path(folder: str, name: str, listed_in: Path) -> str:
    """``folder/name`` as a POSIX path relative to the root; ``DatasetRootError`` when ``name`` is empty, absolute
    or climbs out with ``..``."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if not name.strip() or PurePosixPath(name).is_absolute() or ".." in parts:
        raise DatasetRootError(f"{listed_in}: entry {name!r} is not a file path inside its folder")
    return PurePosixPath(folder, *parts).as_posix()


def present_videos(root: Path, notes: list[str]) -> list[str]:
    """Every video file under ``root`` (by extension, never decoded), as sorted POSIX paths relative to it; folders
    left out of the walk (unreadable, links outside the root) are added to ``notes``."""
    skipped: list[Skipped] = []
    found = [
        Path(dirpath, name).relative_to(root).as_posix()
        for dirpath, _dirnames, filenames in walk_folder(root, skipped)
        for name in filenames
        if is_video_file(name)
    ]
    notes.extend(f"{s.path}: {s.reason}" for s in skipped)
    return sorted(found)


def listing_notes(paths: Sequence[str], why: str, limit: int = NOTE_LIMIT) -> list[str]:
    """One note per path (``"<path>: <why>"``), the first ``limit`` of them, then how many more."""
    notes = [f"{p}: {why}" for p in paths[:limit]]
    if len(paths) > limit:
        notes.append(f"{len(paths) - limit} more files: {why}")
    return notes


def match_listed(
    listed: Sequence[Listed], present: Sequence[str], notes: list[str]
) -> tuple[list[MediaRow], list[tuple[str, str]], list[str]]:
    """The rows of the listed files that are present (sorted by path), ``missing`` (``"listed in <list>, absent"``)
    for the others, and the present videos no list names (left out: they have no label). A file two lists name is
    read from the first and noted."""
    on_disk = set(present)
    rows: dict[str, MediaRow] = {}
    missing: list[tuple[str, str]] = []
    twice: list[str] = []
    for row, listed_in in listed:
        if row.path not in on_disk:
            missing.append((row.path, f"listed in {listed_in}, absent"))
        elif row.path in rows:
            twice.append(row.path)
        else:
            rows[row.path] = row
    notes.extend(listing_notes(twice, "listed twice, the first listing read"))
    unlisted = [p for p in present if p not in rows]
    return sorted(rows.values(), key=lambda r: r.path), sorted(missing), unlisted


# --- DFDC -----------------------------------------------------------------------------------------------------------


def _subfolders(root: Path) -> list[Path]:
    try:
        return sorted(p for p in root.iterdir() if p.is_dir())
    except OSError as exc:
        raise DatasetRootError(f"not a DFDC root: {root} cannot be listed ({exc.strerror or exc})") from None


def _find_lists(root: Path, notes: list[str]) -> tuple[list[Path], list[Path]]:
    """The ``metadata.json`` files (the root's own, else one per sub-folder) and ``labels.csv`` files (likewise)."""
    folders = _subfolders(root)
    metadata = [root / METADATA] if (root / METADATA).is_file() else [f / METADATA for f in folders]
    labels = [root / LABELS_CSV] if (root / LABELS_CSV).is_file() else [f / LABELS_CSV for f in folders]
    metadata = [m for m in metadata if m.is_file()]
    labels = [c for c in labels if c.is_file()]
    if not (root / METADATA).is_file():
        empty = [f"{f.name}/" for f in folders if f.name.startswith(PART_PREFIX) and not (f / METADATA).is_file()]
        notes.extend(listing_notes(empty, f"no {METADATA}: not read (its videos have no label)"))
    return metadata, labels


def _metadata_label(path: Path, name: str, info: Any) -> tuple[int, str | None]:
    """An entry's label and original; ``DatasetRootError`` naming the file and entry when it is not the format."""
    if not isinstance(info, dict):
        raise DatasetRootError(f"{path}: entry {name!r} is not an object with a label (the format of {METADATA})")
    label = METADATA_LABELS.get(str(info.get("label", "")).upper())
    if label is None:
        raise DatasetRootError(f"{path}: entry {name!r}: label must be REAL or FAKE, got {info.get('label')!r}")
    original = info.get("original")
    if original is not None and (not isinstance(original, str) or not original.strip()):
        raise DatasetRootError(f"{path}: entry {name!r}: original must be a file name or null, got {original!r}")
    return label, original


def _metadata_rows(path: Path, root: Path, notes: list[str]) -> list[Listed]:
    """The rows one part's ``metadata.json`` lists (split None: the training set has no official split)."""
    data = load_json_mapping(path, 'a file name to {"label", "split", "original"}')
    folder = path.parent.relative_to(root).as_posix()
    listed_in = PurePosixPath(folder, METADATA).as_posix()
    source = path.parent.resolve().name
    rows: list[Listed] = []
    orphans: list[str] = []
    for name, info in data.items():
        label, original = _metadata_label(path, name, info)
        relative = listed_path(folder, name, path)
        key = PurePosixPath(name).stem
        if label == FAKE and original:
            key = PurePosixPath(original.replace("\\", "/")).stem
        elif label == FAKE:
            orphans.append(relative)
        method = ORIGINAL if label == REAL else METHOD
        rows.append((MediaRow(relative, label, method, "", f"dfdc:{key}", None, source), listed_in))
    if not data:
        notes.append(f"{listed_in} lists no videos")
    notes.extend(listing_notes(orphans, f"FAKE with no original in {listed_in}: its own group"))
    return rows


def _labels_rows(path: Path, root: Path, notes: list[str]) -> list[Listed]:
    """The rows the public test set's ``labels.csv`` lists (1 = FAKE, 0 = REAL), split ``test``."""
    folder = path.parent.relative_to(root).as_posix()
    listed_in = PurePosixPath(folder, LABELS_CSV).as_posix()
    rows: list[Listed] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = [c.strip() for c in reader.fieldnames or []]
            if not {"filename", "label"} <= set(columns):
                raise DatasetRootError(f"{path}: expected the columns filename,label, got {','.join(columns)!r}")
            reader.fieldnames = columns
            for record in reader:
                rows.append((_labels_row(path, reader.line_num, record, folder), listed_in))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetRootError(f"{path}: cannot read as CSV ({getattr(exc, 'strerror', None) or exc})") from None
    if not rows:
        notes.append(f"{listed_in} lists no videos")
    return rows


def _labels_row(path: Path, line: int, record: dict[str, Any], folder: str) -> MediaRow:
    """One ``labels.csv`` line as a row; ``DatasetRootError`` naming the file and line for a label not 0/1."""
    name = (record.get("filename") or "").strip()
    value = (record.get("label") or "").strip()
    label = CSV_LABELS.get(value)
    if label is None:
        raise DatasetRootError(f"{path}, line {line}: label must be 0 (real) or 1 (fake), got {value!r}")
    if not name:
        raise DatasetRootError(f"{path}, line {line}: no filename")
    relative = listed_path(folder, name, path)
    method = ORIGINAL if label == REAL else METHOD
    return MediaRow(relative, label, method, "", f"dfdc:{PurePosixPath(name).stem}", "test", TEST_SOURCE)


def _split_notes(metadata: list[Path], labels: list[Path]) -> list[str]:
    notes = []
    if metadata:
        notes.append(
            "DFDC training parts have no official split: split None, the protocol step makes grouped train/val "
            "splits from them (validation is never the public test set); a fake is grouped with its original"
        )
    if labels:
        notes.append(f"public test set ({LABELS_CSV}): split test; {LABELS_CSV} names no originals, each video is "
                     "its own group")  # fmt: skip
    return notes


def read_dfdc(root: str | os.PathLike[str]) -> DatasetTable:
    """DFDC's training parts and/or public test set under ``root`` (see the module docstring) as one table; paths
    relative to ``root``. ``DatasetRootError`` for a root that holds neither, or a list that is not the format."""
    root = Path(root)
    check_root(root, "DFDC", LOOKED_FOR)
    notes: list[str] = []
    metadata, labels = _find_lists(root, notes)
    if not metadata and not labels:
        raise DatasetRootError(f"not a DFDC root: {root} has no {LOOKED_FOR}")
    listed = [row for path in metadata for row in _metadata_rows(path, root, notes)]
    listed += [row for path in labels for row in _labels_rows(path, root, notes)]
    rows, missing, unlisted = match_listed(listed, present_videos(root, notes), notes)
    names = " or ".join(n for n, lists in ((METADATA, metadata), (LABELS_CSV, labels)) if lists)
    notes.extend(listing_notes(unlisted, f"not in {names}: left out (no label)"))
    notes.extend(_split_notes(metadata, labels))
    return DatasetTable(DATASET, root, rows, missing, notes)
