"""Celeb-DF (v1 and v2, Li et al., CVPR 2020) as it downloads: ``Celeb-real/`` (real, ``id{N}_{k}.mp4``),
``Celeb-synthesis/`` (fake, ``id{target}_id{source}_{k}.mp4``), ``YouTube-real/`` (real, ``{k}.mp4``) and
``List_of_testing_videos.txt`` (``<label> <folder>/<file>.mp4``, label 1 = real, 0 = fake: the reverse of this
project's REAL 0 / FAKE 1). Read into a ``DatasetTable``: label from the folder, group by identity, the test list as
the official test split. Nothing is decoded."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from deepfake_lib import CLASS_NAMES, FAKE, REAL
from deepfake_lib.core.files import VIDEO_EXTENSIONS, folder_problem
from deepfake_lib.prepare.datasets.table import ORIGINAL, DatasetRootError, DatasetTable, MediaRow

DATASET = "celebdf"
SYNTHESIS_METHOD = "Celeb-synthesis"
TEST_LIST = "List_of_testing_videos.txt"
# Celeb-DF's own label in the test list -> this project's label (the dataset's 1 is REAL, its 0 is FAKE).
LIST_LABELS = {"1": REAL, "0": FAKE}
EXAMPLES = 5  # file names quoted in a note


@dataclass(frozen=True)
class Folder:
    """One of Celeb-DF's video folders: its label, method, the file-name pattern and how a name gives a group."""

    name: str
    label: int
    method: str
    pattern: re.Pattern[str]
    shape: str  # the pattern in words, for notes

    def group(self, stem: str) -> str | None:
        """The group of a file stem that fits the pattern, None when it does not fit."""
        match = self.pattern.fullmatch(stem)
        if match is None:
            return None
        if self.name == "YouTube-real":  # no identity: each YouTube video is its own group
            return f"{DATASET}:youtube:{stem}"
        return f"{DATASET}:id{int(match.group(1))}"  # the (target) identity: id07 and id7 are one person


FOLDERS = (
    Folder("Celeb-real", REAL, ORIGINAL, re.compile(r"id(\d+)_(\d+)"), "id{N}_{k}"),
    Folder(
        "Celeb-synthesis", FAKE, SYNTHESIS_METHOD, re.compile(r"id(\d+)_id(\d+)_(\d+)"), "id{target}_id{source}_{k}"
    ),
    Folder("YouTube-real", REAL, ORIGINAL, re.compile(r"\d+"), "{k}"),
)
ROOT_MESSAGE = "not a Celeb-DF root: {root} has none of " + ", ".join(f"{f.name}/" for f in FOLDERS)


def read_celebdf(root: str | os.PathLike[str]) -> DatasetTable:
    """Every video of a Celeb-DF (v1 or v2) download under ``root``, sorted by path. Raises ``DatasetRootError``
    (one line) for a root with none of the three video folders (or no folder at all), and for a malformed line of
    ``List_of_testing_videos.txt`` (naming the file and line number)."""
    root = Path(root)
    check_root(root)
    table = DatasetTable(DATASET, root, rows=[])
    for folder in FOLDERS:
        table.rows += read_folder(root, folder, table.notes)
    found = [f"{f.name}/" for f in FOLDERS if (root / f.name).is_dir()]
    table.notes.append(f"folders found: {', '.join(found)}; Celeb-DF v1 and v2 share this layout, not told apart")
    if (root / "Celeb-synthesis").is_dir():
        table.notes.append(
            "a Celeb-synthesis video id{T}_id{S}_{k} is grouped with its target identity id{T} (the video is "
            "the target's); the source identity's face appears in it too"
        )
    apply_test_list(root, table)
    table.rows.sort(key=lambda r: r.path)
    return table


def check_root(root: Path) -> None:
    """``DatasetRootError`` unless ``root`` is a folder holding at least one of Celeb-DF's video folders."""
    problem = folder_problem(root)
    if problem is None and any((root / f.name).is_dir() for f in FOLDERS):
        return
    message = ROOT_MESSAGE.format(root=root)
    if problem is not None:
        message += f" ({problem})"
    elif (hint := nested_root(root)) is not None:
        message += f"; it is in {hint}: pass that folder"
    raise DatasetRootError(message)


def nested_root(root: Path) -> Path | None:
    """A folder one level down that holds Celeb-DF's folders (an archive unpacked into ``Celeb-DF-v2/``), or None."""
    try:
        children = sorted(c for c in root.iterdir() if c.is_dir())
    except OSError:
        return None
    return next((c for c in children if any((c / f.name).is_dir() for f in FOLDERS)), None)


def read_folder(root: Path, folder: Folder, notes: list[str]) -> list[MediaRow]:
    """The rows of one video folder; a missing or empty folder, and names that fit no pattern, go into ``notes``."""
    path = root / folder.name
    if not path.is_dir():
        kind = CLASS_NAMES[folder.label]
        notes.append(f"no {folder.name}/ folder: its {kind} videos are not in the table (a partial download?)")
        return []
    videos = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS and not p.name.startswith("."))
    if not videos:
        notes.append(f"{folder.name}/ is empty: no videos in it")
    rows, misfits = [], []
    for video in videos:
        group = folder.group(video.stem)
        if group is None:
            misfits.append(video.name)
            group = f"{DATASET}:{folder.name}/{video.stem}"
        rows.append(MediaRow(f"{folder.name}/{video.name}", folder.label, folder.method, "", group, None, folder.name))
    if misfits:
        notes.append(
            f"{len(misfits)} file(s) in {folder.name}/ do not fit {folder.shape}.mp4, so no identity is read from "
            f"them: each is its own group ({quote(misfits)})"
        )
    return rows


def read_test_list(path: Path) -> list[tuple[int, str, str]]:
    """``(line number, Celeb-DF label "0"/"1", path)`` for each line of the test list; ``DatasetRootError`` naming
    the file and line for a line that is not ``<0|1> <folder>/<file>``."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetRootError(f"{path}: cannot read the test list ({exc})") from None
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in LIST_LABELS or "/" not in parts[1].replace("\\", "/"):
            raise DatasetRootError(f"{path}: line {number} is not '<0|1> <folder>/<file>.mp4': {line.strip()!r}")
        name = parts[1].replace("\\", "/").removeprefix("./")
        entries.append((number, parts[0], name))
    return entries


def apply_test_list(root: Path, table: DatasetTable) -> None:
    """Mark the files of ``List_of_testing_videos.txt`` split "test"; what it names that is absent goes into
    ``missing``, a label that disagrees with the file's folder into ``notes`` (the folder's label is kept)."""
    list_path = root / TEST_LIST
    if not list_path.is_file():
        table.notes.append(f"no {TEST_LIST}: no official test split")
        return
    rows = {r.path: i for i, r in enumerate(table.rows)}
    seen: dict[str, int] = {}
    outside = []
    for number, raw, name in read_test_list(list_path):
        if name in seen:
            table.notes.append(f"{TEST_LIST}:{number} repeats {name} (first at line {seen[name]})")
            continue
        seen[name] = number
        index = rows.get(name)
        if index is None:
            if (root / name).exists():
                outside.append(name)
            else:
                table.missing.append((name, f"named by {TEST_LIST}, absent"))
            continue
        row = table.rows[index]
        table.rows[index] = MediaRow(row.path, row.label, row.method, row.compression, row.group, "test", row.source)
        if LIST_LABELS[raw] != row.label:
            table.notes.append(
                f"{TEST_LIST}:{number} '{raw} {name}' says {CLASS_NAMES[LIST_LABELS[raw]]} (its 1 is real, 0 fake), "
                f"its folder {row.source}/ says {CLASS_NAMES[row.label]}: the folder's label is kept"
            )
    tested = sum(r.split == "test" for r in table.rows)
    table.notes.append(
        f"the {tested} files here of the {len(seen)} that {TEST_LIST} names are split 'test' (the official test set); "
        "every other file has no official split: split those by identity, so validation is never the test set"
    )
    table.missing.sort()
    if outside:
        table.notes.append(
            f"{TEST_LIST} names {len(outside)} file(s) outside the video folders, not read: {quote(outside)}"
        )


def quote(names: list[str]) -> str:
    """Up to ``EXAMPLES`` names, comma-separated, with how many more there are."""
    more = f", and {len(names) - EXAMPLES} more" if len(names) > EXAMPLES else ""
    return ", ".join(names[:EXAMPLES]) + more
