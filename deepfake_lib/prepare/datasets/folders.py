"""Plain real/fake folders as a ``DatasetTable``: ``<root>/{real,fake}/...`` (flat: no split) or
``<root>/{train,val,test}/{real,fake}/...`` (the split from the folder). Class and split folder names in any case;
images and videos anywhere under a class folder; groups from a root ``manifest.csv`` (``path,group``) where there is
one, else each file its own group. Nothing is decoded."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from deepfake_lib import CLASS_NAMES, REAL
from deepfake_lib.core.files import (
    CLIP_SUFFIX,
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    Skipped,
    folder_problem,
    walk_folder,
)
from deepfake_lib.data.scan import DataLayoutError, find_class_dirs
from deepfake_lib.prepare.datasets.table import ORIGINAL, SPLITS, DatasetRootError, DatasetTable, MediaRow

DATASET = "folders"
FAKE_METHOD = "fake"
MANIFEST = "manifest.csv"
MEDIA_EXTENSIONS = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
EXAMPLES = 5  # names quoted in a note


@dataclass
class Manifest:
    """``manifest.csv``'s groups (and labels, where it has a ``label`` column) by path relative to the root."""

    groups: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


def read_folders(root: str | os.PathLike[str]) -> DatasetTable:
    """Every image and video under ``root``'s class folders, sorted by path. Raises ``DatasetRootError`` (one line)
    when ``root`` is not a folder or has no real/ or fake/ folder, neither at the top nor under train/, val/, test/."""
    root = Path(root)
    problem = folder_problem(root)
    if problem is not None:
        raise DatasetRootError(f"not a real/fake folders root: {root} {problem}; {expected(root)}")
    table = DatasetTable(DATASET, root, rows=[])
    for split, class_dirs in find_layout(root, table.notes):
        for label in range(len(CLASS_NAMES)):
            if label not in class_dirs:
                name, scope = CLASS_NAMES[label], f"split {split}" if split else "the table"
                table.notes.append(f"no {name}/ folder{f' in {split}/' if split else ''}: {scope} has no {name} files "
                                   "(both classes are needed for AUC)")  # fmt: skip
                continue
            table.rows += read_class(root, class_dirs[label], label, split, table.notes)
    apply_manifest(root, table)
    table.rows.sort(key=lambda r: r.path)
    return table


def expected(root: Path) -> str:
    """What a folders root looks like, for a refusal."""
    return f"expected {root}/real/ and {root}/fake/, or {root}/<split>/real/ and {root}/<split>/fake/ ({', '.join(SPLITS)})"


def class_dirs_of(folder: Path) -> dict[int, Path]:
    """``find_class_dirs`` with its refusal (two folders for one class, as ``real/`` and ``Real/``) as a
    ``DatasetRootError``."""
    try:
        return find_class_dirs(folder)
    except DataLayoutError as exc:
        raise DatasetRootError(str(exc)) from None


def split_dirs_of(root: Path) -> dict[str, Path]:
    """The split folders (``train``, ``val``, ``test`` in any case) directly under ``root``."""
    found: dict[str, list[Path]] = {}
    for child in sorted(root.iterdir()):
        if child.is_dir() and child.name.lower() in SPLITS:
            found.setdefault(child.name.lower(), []).append(child)
    for split, dirs in found.items():
        if len(dirs) > 1:
            names = ", ".join(d.name for d in dirs)
            raise DatasetRootError(f"{root}: several folders for split '{split}' ({names}); merge them into one")
    return {split: dirs[0] for split, dirs in found.items()}


def find_layout(root: Path, notes: list[str]) -> list[tuple[str | None, dict[int, Path]]]:
    """``(split, {label: class folder})`` for the flat layout (one entry, split None) or each split folder that
    holds a class folder; ``DatasetRootError`` when there is no class folder at either level, or both."""
    top = class_dirs_of(root)
    splits = {s: d for s, d in split_dirs_of(root).items() if class_dirs_of(d)}
    if top and splits:
        raise DatasetRootError(
            f"{root} has both real/fake folders at the top and under {', '.join(d.name for d in splits.values())}/: "
            "keep one layout (flat, or one folder per split)"
        )
    if top:
        notes.append("flat layout (<root>/{real,fake}/): no official split")
        return [(None, top)]
    if not splits:
        looked = ", ".join(f"{s}/real/, {s}/fake/" for s in SPLITS)
        raise DatasetRootError(f"not a real/fake folders root: {root} has none of real/, fake/, {looked} (any case)")
    notes.append(f"split layout: the split of each file is its folder ({', '.join(f'{s}/' for s in splits)})")
    for split in SPLITS:
        if split not in splits:
            notes.append(f"no {split}/ folder with real/ or fake/ in it: no {split} files")
    return [(split, class_dirs_of(splits[split])) for split in SPLITS if split in splits]


def list_media(folder: Path) -> tuple[list[Path], list[Skipped], list[Path]]:
    """Image and video files under ``folder`` (recursive, links kept inside it), what the walk left out, and the
    clip folders (``*.clip``) found, which are not entered."""
    files, skipped, clips = [], [], []
    for dirpath, dirnames, filenames in walk_folder(folder, skipped):
        clips += [Path(dirpath) / d for d in dirnames if d.lower().endswith(CLIP_SUFFIX)]
        dirnames[:] = [d for d in dirnames if not d.lower().endswith(CLIP_SUFFIX) and not d.startswith(".")]
        for name in filenames:
            path = Path(dirpath) / name
            if name.startswith(".") or path.suffix.lower() not in MEDIA_EXTENSIONS:
                continue
            if path.exists():
                files.append(path)
            else:
                skipped.append(Skipped(path, "broken symlink"))
    return sorted(files), skipped, clips


def read_class(root: Path, folder: Path, label: int, split: str | None, notes: list[str]) -> list[MediaRow]:
    """The rows of one class folder: group = the file's path inside the class folder without its extension (the
    stem, for a file directly in it; ``real/a.jpg`` and ``fake/a.jpg`` share a group)."""
    files, skipped, clips = list_media(folder)
    where = folder.relative_to(root).as_posix()
    if not files:
        notes.append(f"{where}/ has no images or videos")
    for s in skipped:
        notes.append(f"{where}: left out {s.path}: {s.reason}")
    if clips:
        notes.append(f"{where}: {len(clips)} clip folder(s) (*{CLIP_SUFFIX}) not read: this reader takes images and "
                     f"videos ({quote([c.name for c in clips])})")  # fmt: skip
    method = ORIGINAL if label == REAL else FAKE_METHOD
    rows = []
    for path in files:
        inside = path.relative_to(folder).with_suffix("").as_posix()
        rows.append(MediaRow(path.relative_to(root).as_posix(), label, method, "", inside, split, folder.name))
    return rows


def read_manifest(path: Path) -> Manifest | None:
    """``manifest.csv``'s groups by path, or None when it has no ``path`` and ``group`` columns."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = [c.strip().lower() for c in reader.fieldnames or []]
            if "path" not in columns or "group" not in columns:
                return None
            reader.fieldnames = columns
            manifest = Manifest()
            for record in reader:
                name = (record.get("path") or "").strip().replace("\\", "/").removeprefix("./")
                manifest.groups[name] = (record.get("group") or "").strip()
                manifest.labels[name] = (record.get("label") or "").strip().lower()
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetRootError(f"{path}: cannot read the manifest ({exc})") from None
    return manifest


def apply_manifest(root: Path, table: DatasetTable) -> None:
    """Take each row's group from ``manifest.csv`` where the root has one; files it names that are absent go into
    ``missing``, rows it does not group keep their own and are counted in a note, and so are labels that disagree
    with the folder (the folder's label is kept)."""
    path = root / MANIFEST
    if not path.is_file():
        table.notes.append(f"no {MANIFEST} at the root: each file is its own group (its name without extension)")
        return
    manifest = read_manifest(path)
    if manifest is None:
        table.notes.append(f"{MANIFEST} has no path and group columns: not used; each file is its own group")
        return
    ungrouped, disagree = [], []
    for i, row in enumerate(table.rows):
        group = manifest.groups.get(row.path)
        if not group:
            ungrouped.append(row.path)
            continue
        table.rows[i] = MediaRow(row.path, row.label, row.method, row.compression, group, row.split, row.source)
        label = manifest.labels.get(row.path, "")
        if label in ("0", "1", *CLASS_NAMES) and label not in (str(row.label), CLASS_NAMES[row.label]):
            disagree.append(row.path)
    present = {r.path for r in table.rows}
    table.missing += [(p, f"named by {MANIFEST}, absent") for p in sorted(manifest.groups) if p not in present]
    table.notes.append(f"groups from {MANIFEST} ({len(table.rows) - len(ungrouped)} files)")
    if ungrouped:
        table.notes.append(f"{len(ungrouped)} file(s) without a group in {MANIFEST}: each is its own group "
                           f"({quote(ungrouped)})")  # fmt: skip
    if disagree:
        table.notes.append(f"{len(disagree)} file(s) whose {MANIFEST} label disagrees with their folder: the "
                           f"folder's label is kept ({quote(disagree)})")  # fmt: skip


def quote(names: list[str]) -> str:
    """Up to ``EXAMPLES`` names, comma-separated, with how many more there are."""
    more = f", and {len(names) - EXAMPLES} more" if len(names) > EXAMPLES else ""
    return ", ".join(names[:EXAMPLES]) + more
