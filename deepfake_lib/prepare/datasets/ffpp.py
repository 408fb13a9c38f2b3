"""FaceForensics++ (Rössler et al., ICCV 2019) as its official download lays it out: ``original_sequences/{youtube,
actors}/{raw,c23,c40}/videos/*.mp4`` (real) and ``manipulated_sequences/<method>/{raw,c23,c40}/videos/*.mp4`` (fake),
read into one ``DatasetTable`` with the official splits (shipped in ``ffpp_splits/``, MIT, ondyari/FaceForensics).

A split pair ``[t, s]`` holds the originals ``t`` and ``s`` and the fakes ``t_s`` and ``s_t`` of every youtube method:
all in that split, one group ``ffpp:t_s``. DFD (``actors`` and ``DeepFakeDetection``) has no official split and is
grouped by actor (a fake by its target actor). Nothing is decoded; file names that fit no pair are never guessed."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from deepfake_lib import FAKE, REAL
from deepfake_lib.core.files import folder_problem, is_video_file
from deepfake_lib.prepare.datasets.table import ORIGINAL, SPLITS, DatasetRootError, DatasetTable, MediaRow

DATASET = "ffpp"
COMPRESSIONS = ("raw", "c23", "c40")
YOUTUBE_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")
DFD_METHOD = "DeepFakeDetection"
METHODS = (*YOUTUBE_METHODS, DFD_METHOD)
ORIGINALS_DIR = "original_sequences"
MANIPULATED_DIR = "manipulated_sequences"
YOUTUBE, ACTORS = "youtube", "actors"
VIDEOS_DIR = "videos"  # beside it: masks/ (not videos), never read

_PAIR_FAKE = re.compile(r"(\d+)_(\d+)")  # T_S
_ACTOR_ORIGINAL = re.compile(r"(\d+)__.+")  # 24__outside_talking_still_laughing
_DFD_FAKE = re.compile(r"(\d+)_(\d+)__.+")  # 24_23__outside_talking_still_laughing__YR5OVD4S
_SHOWN = 5  # file names a note lists before "..."

DFD_NOTES = (
    "DFD (original_sequences/actors, manipulated_sequences/DeepFakeDetection) has no official split: its videos get "
    "split None",
    "DFD videos are grouped by actor (dfd-actor:<id>): an actors original by its actor, a DeepFakeDetection fake by its "
    "target actor (the first id); DFD fakes also carry the source actor's face (the second id), so a grouped split by "
    "target actor can still share a source identity across splits",
)


@lru_cache(maxsize=1)
def _load_pairs() -> dict[str, tuple[tuple[str, str], ...]]:
    folder = resources.files(__package__).joinpath("ffpp_splits")
    pairs = {}
    for split in SPLITS:
        data = json.loads(folder.joinpath(f"{split}.json").read_text(encoding="utf-8"))
        pairs[split] = tuple((str(t), str(s)) for t, s in data)
    ids = [i for split_pairs in pairs.values() for pair in split_pairs for i in pair]
    if len(ids) != len(set(ids)):
        raise RuntimeError("ffpp_splits: a youtube id is in more than one official pair")
    return pairs


def official_pairs() -> dict[str, tuple[tuple[str, str], ...]]:
    """The official FaceForensics++ splits shipped with the package: split -> its ``(target, source)`` id pairs, in
    the split file's order (every youtube id in exactly one pair)."""
    return dict(_load_pairs())


@lru_cache(maxsize=1)
def _pair_index() -> dict[str, tuple[tuple[str, str], str]]:
    """youtube id -> (its pair, its split)."""
    return {i: (pair, split) for split, pairs in _load_pairs().items() for pair in pairs for i in pair}


def _pair_place(stem: str, fake: bool) -> tuple[str, str] | None:
    """``(group, split)`` of a youtube original ``NNN`` or pair fake ``T_S`` by the official pairs; None when the name
    fits no pair (a fake must be ``t_s`` or ``s_t`` of one pair)."""
    ids: tuple[str, ...] = (stem,)
    if fake:
        match = _PAIR_FAKE.fullmatch(stem)
        if match is None or match[1] == match[2]:
            return None
        ids = (match[1], match[2])
    entry = _pair_index().get(ids[0])
    if entry is None or not set(ids) <= set(entry[0]):
        return None
    (t, s), split = entry
    return f"ffpp:{t}_{s}", split


def _dfd_group(stem: str, fake: bool) -> str | None:
    """``dfd-actor:<id>`` of an actors original (its actor) or a DFD fake (its target actor); None for another name."""
    match = (_DFD_FAKE if fake else _ACTOR_ORIGINAL).fullmatch(stem)
    return None if match is None else f"dfd-actor:{match[1]}"


@dataclass(frozen=True)
class _Folder:
    """One (original source or method, compression) folder of the layout."""

    kind: str  # ORIGINALS_DIR or MANIPULATED_DIR
    name: str  # youtube / actors, or a method
    compression: str

    @property
    def fake(self) -> bool:
        return self.kind == MANIPULATED_DIR

    @property
    def paired(self) -> bool:
        """Named by the official splits (youtube originals and their methods' fakes)."""
        return self.name == YOUTUBE or self.name in YOUTUBE_METHODS

    @property
    def videos(self) -> str:
        return f"{self.kind}/{self.name}/{self.compression}/{VIDEOS_DIR}"

    @property
    def label(self) -> str:
        return f"{self.name if self.fake else f'{self.kind}/{self.name}'} {self.compression}"


def _check_root(root: Path) -> None:
    """Raise ``DatasetRootError`` (one line) unless ``root`` holds ``original_sequences/`` or
    ``manipulated_sequences/``."""
    problem = folder_problem(root)
    if problem is None and any((root / d).is_dir() for d in (ORIGINALS_DIR, MANIPULATED_DIR)):
        return
    where = f"{root} ({problem})" if problem else str(root)
    hint = ""
    for top in (ORIGINALS_DIR, MANIPULATED_DIR):
        if top in root.parts:
            above = Path(*root.parts[: root.parts.index(top)])
            hint = f"; it lies inside {top}/: give the folder above it ({above})"
    message = f"not a FaceForensics++ root: {where} has neither {ORIGINALS_DIR}/ nor {MANIPULATED_DIR}/{hint}"
    raise DatasetRootError(" ".join(message.splitlines()))


def _check_choices(compression: str | None, methods: Sequence[str] | None) -> tuple[str, ...]:
    """Validate the filters; returns the chosen methods (all of them for None)."""
    if compression is not None and compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)} (or None for all), got {compression!r}")
    if methods is None:
        return METHODS
    chosen = (methods,) if isinstance(methods, str) else tuple(methods)
    unknown = [m for m in chosen if m not in METHODS]
    if unknown or not chosen:
        got = f"unknown {unknown}" if unknown else "none"
        raise ValueError(
            f"FaceForensics++ methods: choose from {', '.join(METHODS)} (their originals come with them), got {got}"
        )
    return tuple(m for m in METHODS if m in chosen)


def _tops(methods: tuple[str, ...]) -> list[tuple[str, str]]:
    """The (kind, name) folders to read: the chosen methods and the originals their fakes were made from."""
    tops = [(ORIGINALS_DIR, YOUTUBE)] if set(methods) & set(YOUTUBE_METHODS) else []
    tops += [(ORIGINALS_DIR, ACTORS)] if DFD_METHOD in methods else []
    return tops + [(MANIPULATED_DIR, m) for m in methods]


def _unknown_notes(root: Path) -> list[str]:
    """A note for each folder the layout does not know (ignored): a source, a method or a compression."""
    notes: list[str] = []
    for kind, known in ((ORIGINALS_DIR, (YOUTUBE, ACTORS)), (MANIPULATED_DIR, METHODS)):
        top = root / kind
        for d in sorted(top.iterdir()) if top.is_dir() else []:
            if not d.is_dir() or d.name.startswith("."):
                continue
            if d.name not in known:
                notes.append(f"{kind}/{d.name}: not a FaceForensics++ folder ({', '.join(known)}), ignored")
                continue
            odd = sorted(c.name for c in d.iterdir() if c.is_dir() and c.name not in COMPRESSIONS)
            notes += [f"{kind}/{d.name}/{c}: not a compression ({', '.join(COMPRESSIONS)}), ignored" for c in odd]
    return notes


def _plan(root: Path, methods: tuple[str, ...], compression: str | None, notes: list[str]) -> list[_Folder]:
    """The (source or method, compression) folders to read; an existing but empty method folder gets a note and is
    left out, and so are compressions found nowhere when ``compression`` is None."""
    tops = []
    for kind, name in _tops(methods):
        top = root / kind / name
        if top.is_dir() and not any(top.iterdir()):
            notes.append(f"{name if kind == MANIPULATED_DIR else f'{kind}/{name}'}: the folder is empty")
        else:
            tops.append((kind, name))
    found = [c for c in COMPRESSIONS if any((root / k / n / c).is_dir() for k, n in tops)]
    compressions = [compression] if compression else found
    if not compressions and tops:
        notes.append(f"no compression folder ({', '.join(COMPRESSIONS)}) found: nothing downloaded")
    return [_Folder(kind, name, c) for kind, name in tops for c in compressions]


def _video_files(folder: Path) -> list[Path]:
    """The video files (by extension) directly in ``folder``; hidden files (``._x.mp4``) left out."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and is_video_file(p) and p.is_file())


def _row(root: Path, folder: _Folder, path: Path) -> tuple[MediaRow, bool]:
    """The row of one video, and whether its name fits the layout (an official pair, or a DFD actor)."""
    if folder.paired:
        place = _pair_place(path.stem, folder.fake)
        group, split = place or (f"ffpp:{path.stem}", None)
        fits = place is not None
    else:
        actor = _dfd_group(path.stem, folder.fake)
        group, split, fits = actor or f"dfd:{path.stem}", None, actor is not None
    method = folder.name if folder.fake else ORIGINAL
    label = FAKE if folder.fake else REAL
    rel = path.relative_to(root).as_posix()
    return MediaRow(rel, label, method, folder.compression, group, split, source=folder.name), fits


def _expected(folder: _Folder) -> Iterator[tuple[str, str]]:
    """``(stem, split)`` of every video the official splits name in a paired folder."""
    for split, pairs in _load_pairs().items():
        for t, s in pairs:
            yield from (((t, split), (s, split)) if not folder.fake else ((f"{t}_{s}", split), (f"{s}_{t}", split)))


def _stray_note(folder: _Folder, names: list[str]) -> str:
    """One note for the files of a folder whose names fit no official pair (or no DFD name)."""
    if folder.paired:
        what = "T_S of an official pair" if folder.fake else "id of an official pair"
    else:
        what = "DFD fake name <target>_<source>__<scene>__<code>" if folder.fake else "DFD name <actor>__<scene>"
    shown = ", ".join(names[:_SHOWN]) + (", ..." if len(names) > _SHOWN else "")
    return f"{folder.label}: {len(names)} file(s) fit no {what}, so split None, each grouped alone: {shown}"


def _read_folder(root: Path, folder: _Folder, notes: list[str]) -> tuple[list[MediaRow], list[tuple[str, str]]]:
    """The rows of one folder and, for a paired one, what the official splits name that is absent."""
    if not (root / folder.videos).parent.is_dir():
        notes.append(f"{folder.label}: not downloaded")
        return [], []
    files = _video_files(root / folder.videos)
    if not files:
        notes.append(f"{folder.label}: the folder is empty (no videos in {VIDEOS_DIR}/)")
        return [], []
    rows, strays = [], []
    for path in files:
        row, fits = _row(root, folder, path)
        rows.append(row)
        if not fits:
            strays.append(path.name)
    if strays:
        notes.append(_stray_note(folder, strays))
    present = {p.stem for p in files}
    missing = [
        (f"{folder.videos}/{stem}.mp4", f"named by the official {split} split, absent")
        for stem, split in (_expected(folder) if folder.paired else ())
        if stem not in present
    ]
    return rows, missing


def read_ffpp(
    root: str | os.PathLike[str], compression: str | None = None, methods: Sequence[str] | None = None
) -> DatasetTable:
    """Read a FaceForensics++ download at ``root`` (the folder holding ``original_sequences/`` and/or
    ``manipulated_sequences/``). ``compression``: ``raw``/``c23``/``c40``, None for every one found. ``methods``: the
    manipulations to read (``METHODS``), None for all; the originals they were made from come with them (youtube,
    actors for DeepFakeDetection). Raises ``DatasetRootError`` for a root that is not FaceForensics++, ``ValueError``
    for an unknown compression or method."""
    chosen = _check_choices(compression, methods)
    root = Path(root).expanduser()
    _check_root(root)
    notes = _unknown_notes(root)
    rows: list[MediaRow] = []
    missing: list[tuple[str, str]] = []
    for folder in _plan(root, chosen, compression, notes):
        folder_rows, folder_missing = _read_folder(root, folder, notes)
        rows += folder_rows
        missing += folder_missing
    if any(r.source in (ACTORS, DFD_METHOD) for r in rows):
        notes += DFD_NOTES
    if methods is not None:
        notes.append(f"methods: {', '.join(chosen)} (with their originals)")
    return DatasetTable(DATASET, root, sorted(rows, key=lambda r: r.path), sorted(missing), notes)
