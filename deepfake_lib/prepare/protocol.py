"""The protocol step: a dataset's table (``datasets``) -> a training-ready split folder, as the field prepares it.

Each video's split comes from the dataset's official protocol where it has one (FaceForensics++'s 720/140/140 pairs,
Celeb-DF's and DFDC's test lists), else from a grouped split by identity or source video (``assignment.assign_splits``;
the validation split never is the test set). Frames are sampled per video, ``spec.frames`` for training and
``spec.test_frames`` for validation and test (the field trains on 8-32 and tests on 32), faces are cut by the face step
(``faces.prepare_faces``, margin 1.3 by default), and everything is cached once under the prepared folder:

    <prepared>/frames/<real|fake>/<video>__f<index>.jpg     the sampled frames (reused while the video is unchanged)
    <prepared>/faces-.../                                    the face crops (the face step's own cache)
    <prepared>/data/<split>/<real|fake>/...                  links: what 02-05 read
    <prepared>/data/protocol_manifest.csv                    each file's video, method, compression, group, split
"""

from __future__ import annotations

import csv
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from deepfake_lib import CLASS_NAMES
from deepfake_lib.core.runs import LinkWriter, atomic_write, read_json, resolve_path, write_csv, write_json
from deepfake_lib.prepare.datasets.spec import DatasetSpec, format_dataset, parse_dataset, read_dataset
from deepfake_lib.prepare.datasets.table import SPLITS, DatasetTable, MediaRow

PROTOCOL_FILE = "protocol.json"  # at the prepared root: the settings, the dataset report, what was left out
PROTOCOL_MANIFEST = "protocol_manifest.csv"  # in the data folder: one row per file
MANIFEST_COLUMNS = ("path", "split", "label", "dataset", "method", "compression", "group", "video", "frame")
FRAMES_RECORD = "frames_done.json"  # at the prepared root: per video, its size, mtime and the frames written
TOOL = "deepfake_lib.protocol"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)
SHOWN_LEFT_OUT = 50  # frames without a face named in the record


@dataclass
class ProtocolResult:
    """What ``prepare_protocol`` did: the dataset's table, each video's split and where it came from, the data
    folder and its manifest, the face step's record, and the videos left out with the reason."""

    spec: DatasetSpec
    table: DatasetTable
    root: Path
    data_dir: Path
    manifest: Path
    splits: dict[str, str]
    split_origin: dict[str, str]
    counts: dict[str, dict[str, int]]
    faces: dict[str, Any] | None = None
    left_out: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The JSON-able record (``protocol.json``, metrics.json's ``data.protocol``)."""
        return {
            "tool": TOOL, "dataset": format_dataset(self.spec), "frames": self.spec.frames,
            "test_frames": self.spec.test_frames, "faces": self.faces, "found": self.table.report(),
            "split_origin": self.split_origin, "counts": self.counts, "left_out": self.left_out, "notes": self.notes,
            "data_dir": str(self.data_dir),
        }  # fmt: skip


def default_protocol_root(spec: DatasetSpec) -> Path:
    """``outputs/prepared/<dataset>-<hash of the dataset string>``."""
    import hashlib

    from deepfake_lib.core.runs import project_root

    digest = hashlib.sha1(format_dataset(spec).encode()).hexdigest()[:8]
    return project_root() / "outputs" / "prepared" / f"{spec.name}-{digest}"


def protocol_splits(
    table: DatasetTable, seed: int = 0, fractions: tuple[float, ...] = DEFAULT_FRACTIONS, test_side: bool = False
) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """Each row's split: the official one where given; the rest by groups (``assign_splits``): into train and val
    only when the dataset's protocol fixes just the test set (Celeb-DF, DFDC Preview), else train/val/test.
    ``test_side``: the dataset is only scored (another dataset trained the model): without an official test set,
    every file is its test side. Returns ``(path -> split, path -> "official" | "grouped" | "whole set", notes)``."""
    from deepfake_lib.prepare.assignment import assign_splits

    if test_side and not any(r.split == "test" for r in table.rows):
        note = "no official test split: every file is scored as the test side (the model never trained on it)"
        return {r.path: "test" for r in table.rows}, {r.path: "whole set" for r in table.rows}, [note]

    splits = {r.path: r.split for r in table.rows if r.split}
    origin = dict.fromkeys(splits, "official")
    rest = [r for r in table.rows if not r.split]
    notes: list[str] = []
    if rest:
        official = set(splits.values())
        frac = (fractions[0] + fractions[2], fractions[1], 0.0) if official == {"test"} else tuple(fractions)
        assigned = assign_splits([(r.path, r.label, r.group) for r in rest], frac, seed)
        splits |= assigned
        origin |= dict.fromkeys(assigned, "grouped")
        where = "train and val" if official == {"test"} else "train, val and test"
        notes.append(f"{len(rest)} file(s) without an official split went to {where} by their groups (seed {seed})")
        test_groups = {r.group for r in table.rows if splits[r.path] == "test" and r.split == "test"}
        shared = {r.group for r in rest if splits[r.path] != "test"} & test_groups
        if shared:
            notes.append(f"{len(shared)} group(s) of the official test set also have files outside it (the "
                         f"dataset's own protocol puts them there), e.g. {sorted(shared)[0]}")  # fmt: skip
    return splits, origin, notes


def _video_key(path: str) -> str:
    return Path(path).with_suffix("").as_posix().replace("/", "__")


def _frame_files(frames_dir: Path, row: MediaRow) -> list[Path]:
    """The frames written for ``row``: ``<key>__f<6 digits>.jpg`` exactly (another video's key may extend this one)."""
    pattern = re.compile(re.escape(_video_key(row.path)) + r"__f\d{6}\.jpg")
    folder = frames_dir / CLASS_NAMES[row.label]
    return sorted(p for p in folder.glob(f"{_video_key(row.path)}__f*") if pattern.fullmatch(p.name))


def _sample_one(src: Path, row: MediaRow, n: int, frames_dir: Path) -> list[Path]:
    """Write ``n`` frames of one video (spread uniformly) or the image itself; raises on an unreadable file."""
    from deepfake_lib.core.video import read_frames

    out = frames_dir / CLASS_NAMES[row.label]
    out.mkdir(parents=True, exist_ok=True)
    for old in _frame_files(frames_dir, row):
        old.unlink()
    key = _video_key(row.path)
    if src.suffix.lower() in IMAGE_SUFFIXES:
        from deepfake_lib.core.images import load_image

        target = out / f"{key}__f000000.jpg"
        image = load_image(src)
        atomic_write(target, lambda tmp: image.save(tmp, format="JPEG", quality=95), suffix=".jpg")
        return [target]
    frames = read_frames(src, num=n)
    if not frames:
        raise ValueError("no frame could be decoded")
    written = []
    for frame in frames:
        target = out / f"{key}__f{frame.index:06d}.jpg"
        atomic_write(target, lambda tmp, f=frame: f.image.save(tmp, format="JPEG", quality=95), suffix=".jpg")
        written.append(target)
    return written


def sample_frames(
    table: DatasetTable, splits: dict[str, str], spec: DatasetSpec, frames_dir: Path, progress: bool = True
) -> tuple[dict[str, list[Path]], list[dict[str, str]]]:
    """The frames of every row: ``spec.frames`` for training videos, ``spec.test_frames`` for the others; cached by
    the video's size and mtime. Returns ``(path -> frame files, left out [{"path", "reason"}])``."""
    record_path = frames_dir.parent / FRAMES_RECORD  # beside the frames: the face step reads every file in them
    record: dict[str, Any] = read_json(record_path, default={}) or {}
    frames: dict[str, list[Path]] = {}
    left_out: list[dict[str, str]] = []
    try:
        for row in tqdm(table.rows, desc="sampling frames", disable=not progress, leave=False):
            src = table.root / row.path
            n = spec.frames if splits[row.path] == "train" else spec.test_frames
            stat = src.stat()
            sig = {"size": stat.st_size, "mtime": stat.st_mtime_ns, "n": n}
            cached = record.get(row.path)
            if cached and {k: cached.get(k) for k in sig} == sig:
                if cached.get("error"):
                    left_out.append({"path": row.path, "reason": cached["error"]})
                else:
                    frames[row.path] = _frame_files(frames_dir, row)
                continue
            try:
                frames[row.path] = _sample_one(src, row, n, frames_dir)
                record[row.path] = sig
            except Exception as exc:  # a corrupt or unreadable video is left out, with the reason
                reason = f"{type(exc).__name__}: {exc}"
                left_out.append({"path": row.path, "reason": reason})
                record[row.path] = {**sig, "error": reason}
    finally:  # what was done is kept for the next run, also on interruption
        write_json(record_path, record)
    return frames, left_out


def _crop(frames_dir: Path, root: Path, face: dict[str, Any], device: str, progress: bool) -> tuple[Path, dict]:
    """Face crops of every frame (the face step, cached); ``(crop folder, its record)``."""
    from deepfake_lib.prepare.faces import prepare_faces
    from deepfake_lib.prepare.folder_names import faces_folder_name

    out = root / faces_folder_name(face["margin"], face["size"], face["keep"], face["min_score"])
    result = prepare_faces(frames_dir, out, face["margin"], face["size"], face["keep"], face["min_score"], device,
                           progress=progress)  # fmt: skip
    # frames without a face (counted in full; the first few named, every one in the face step's faces_report.json)
    left_out = [{"path": p, "reason": r} for p, r in [*result.no_face, *result.unreadable]][:SHOWN_LEFT_OUT]
    return out, {**face, **result.summary(), "left_out": left_out}


def _crop_of(frame: Path, frames_dir: Path, crops: Path | None) -> Path | None:
    """The file that stands for one frame in the data folder: its face crop (None without a face) or itself."""
    if crops is None:
        return frame
    crop = crops / frame.relative_to(frames_dir).parent / f"{frame.stem}_face0.png"
    return crop if crop.is_file() else None


def _write_data(
    root: Path, table: DatasetTable, splits: dict[str, str], frames: dict[str, list[Path]], frames_dir: Path,
    crops: Path | None,
) -> tuple[Path, dict[str, dict[str, int]], list[dict[str, str]]]:  # fmt: skip
    """Link each row's crops (or frames) into ``data/<split>/<class>/`` and write the two manifests; returns the
    data folder, the counts per split and class, and the videos left without any face."""
    from deepfake_lib.prepare.split_writer import MANIFEST_COLUMNS as SPLIT_COLUMNS
    from deepfake_lib.prepare.split_writer import MANIFEST_FILE

    data = root / "data"
    if data.exists():
        shutil.rmtree(data)  # only links and manifests this step wrote (the root is ours: checked by the caller)
    writer = LinkWriter("link")
    rows, split_rows, no_face = [], [], []
    counts = {s: {c: 0 for c in CLASS_NAMES} for s in SPLITS}
    for row in table.rows:
        split, label = splits[row.path], CLASS_NAMES[row.label]
        kept = [f for f in (_crop_of(p, frames_dir, crops) for p in frames.get(row.path, [])) if f is not None]
        if row.path in frames and not kept:
            no_face.append({"path": row.path, "reason": "no face in any sampled frame"})
        for file in kept:
            writer(file, data / split / label / file.name)
            rel = f"{split}/{label}/{file.name}"
            rows.append({"path": rel, "split": split, "label": row.label, "dataset": table.dataset,
                         "method": row.method, "compression": row.compression, "group": row.group,
                         "video": row.path, "frame": file.stem.rsplit("__f", 1)[-1].split("_")[0]})  # fmt: skip
            split_rows.append({"path": f"{label}/{file.name}", "label": label, "group": row.group, "split": split})
            counts[split][label] += 1
    write_csv(data / PROTOCOL_MANIFEST, MANIFEST_COLUMNS, rows)
    write_csv(data / MANIFEST_FILE, SPLIT_COLUMNS, split_rows)
    return data, counts, no_face


def _checked_root(root: Path) -> None:
    """A prepared root must be new, empty or ours (``protocol.json`` written by this step)."""
    if not root.exists():
        return
    if not root.is_dir():
        raise ValueError(f"prepared folder {root} exists and is not a folder")
    mine = (read_json(root / PROTOCOL_FILE, default={}) or {}).get("tool") == TOOL
    if not mine and any(not p.name.startswith(".") for p in root.iterdir()):
        raise ValueError(f"prepared folder {root} is not empty and was not made by the protocol step (no "
                         f"{PROTOCOL_FILE}); choose a new or empty folder")  # fmt: skip


def prepare_protocol(
    spec: DatasetSpec | str,
    prepared_root: str | os.PathLike[str] | None = None,
    face_margin: float = 1.3,
    face_size: int | None = 224,
    face_keep: str = "largest",
    face_min_score: float = 0.9,
    seed: int = 0,
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS,
    device: str = "cpu",
    progress: bool = True,
    only_splits: tuple[str, ...] | None = None,
) -> ProtocolResult:
    """Read the dataset, split it by its protocol, sample frames, cut faces (``spec.faces``) and write the data
    folder; see the module docstring. ``prepared_root``: default ``outputs/prepared/<dataset>-<hash>``.
    ``only_splits``: prepare only these splits' videos (a dataset scored on its test side alone)."""
    from deepfake_lib.prepare.folder_names import PREPARED_FILE

    spec = parse_dataset(spec) if isinstance(spec, str) else spec
    table = found = read_dataset(spec)
    if not table.rows:
        raise ValueError(f"{spec}: the reader found no file under {table.root}")
    root = resolve_path(prepared_root) if prepared_root else default_protocol_root(spec)
    _checked_root(root)
    root.mkdir(parents=True, exist_ok=True)
    write_json(root / PROTOCOL_FILE, {"tool": TOOL, "dataset": format_dataset(spec), "status": "preparing"})
    splits, origin, notes = protocol_splits(table, seed, fractions, test_side=only_splits == ("test",))
    if only_splits is not None:
        kept = [r for r in table.rows if splits[r.path] in only_splits]
        notes.append(f"only the {', '.join(only_splits)} split(s) prepared: {len(kept)} of {len(table.rows)} files")
        table = DatasetTable(table.dataset, table.root, kept, table.missing, table.notes)
    frames_dir = root / "frames"
    frames, left_out = sample_frames(table, splits, spec, frames_dir, progress)
    face = {"margin": face_margin, "size": face_size, "keep": face_keep, "min_score": face_min_score}
    crops, faces = _crop(frames_dir, root, face, device, progress) if spec.faces else (None, None)
    data, counts, no_face = _write_data(root, table, splits, frames, frames_dir, crops)
    result = ProtocolResult(spec, found, root, data, data / PROTOCOL_MANIFEST, splits,
                            dict(sorted(Counter(origin.values()).items())), counts,
                            faces, left_out + no_face, table.notes + notes)  # fmt: skip
    write_json(data / PREPARED_FILE, {"source_dir": format_dataset(spec), "data_dir": str(data),
                                      "steps": ["protocol"], "faces": faces, "protocol": format_dataset(spec)})  # fmt: skip
    write_json(root / PROTOCOL_FILE, {**result.summary(), "status": "complete"})
    return result


def read_protocol_manifest(data_dir: str | os.PathLike[str]) -> list[dict[str, str]] | None:
    """The protocol manifest of a data folder (``path`` relative to it), or None for a folder the step did not
    write."""
    path = Path(data_dir) / PROTOCOL_MANIFEST
    if not path.is_file():
        return None
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
