"""The cached face-crop step: a folder of images (and clip folders) -> square face crops in the same layout."""

from __future__ import annotations

import csv
import io
import os
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from PIL import Image

from deepfake_lib.core.choices import KEEP_CHOICES
from deepfake_lib.core.files import Skipped, is_within
from deepfake_lib.core.images import ImageLoadError, load_image
from deepfake_lib.core.runs import atomic_write, check_step_folders, read_json, write_json
from deepfake_lib.data.faces import DETECTOR_NAME, Face, FaceDetector, crop_face, no_face_reason, square_box

MANIFEST_FILE = "faces_manifest.csv"
REPORT_FILE = "faces_report.json"
CONFIG_FILE = "faces_config.json"
MANIFEST_COLUMNS = (
    "source", "crop", "face_index", "x1", "y1", "x2", "y2", "score",
    "crop_left", "crop_top", "crop_right", "crop_bottom", "source_width", "source_height",
    "source_size", "source_mtime",
)  # fmt: skip
FACE_CHUNK = 16  # sources loaded and detected together
FLUSH_SECONDS = 60.0  # manifest and report are rewritten at least this often during a long run


class FacePrepError(ValueError):
    """Bad input for face preparation (folders, settings); a one-line message."""


# --------------------------------------------------------------------------- cached preparation
@dataclass
class FacePrepResult:
    """What ``prepare_faces`` found and wrote; ``no_face``/``unreadable`` are ``(source, reason)`` pairs with
    ``source`` relative to the source folder."""

    out_dir: Path
    manifest: Path
    report: Path
    n_sources: int
    n_with_face: int
    n_crops: int
    no_face: list[tuple[str, str]] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    skipped_cached: int = 0
    n_processed: int = 0
    n_removed: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "sources": self.n_sources,
            "with_face": self.n_with_face,
            "no_face": len(self.no_face),
            "unreadable": len(self.unreadable),
            "crops": self.n_crops,
            "processed": self.n_processed,
            "skipped_cached": self.skipped_cached,
            "removed": self.n_removed,
            "manifest": str(self.manifest),
            "report": str(self.report),
        }


def _read_manifest(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _write_outputs(out: Path, rows: list[dict[str, Any]], report: dict[str, Any]) -> None:
    """``faces_manifest.csv`` (sorted by source, face index) and ``faces_report.json``, each atomically."""
    rows = sorted(rows, key=lambda r: (r["source"], int(r["face_index"])))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(out / MANIFEST_FILE, lambda tmp: tmp.write_text(buf.getvalue(), encoding="utf-8"))
    write_json(out / REPORT_FILE, report)


def _crop_prefix(row: dict[str, str]) -> str:
    """``a`` from a manifest row whose crop is ``.../a_face0.png``."""
    name = Path(row["crop"]).name
    return name[: -len(f"_face{row['face_index']}.png")]


def _claim_prefix(rel: Path, claimed: dict[tuple[str, str], str]) -> str:
    """A crop-name prefix for source ``rel`` not used by another source in its folder (``a``, ``a_png``, ...)."""
    source = rel.as_posix()
    parent = rel.parent.as_posix().lower()
    base = rel.stem
    candidates = [base, f"{base}_{rel.suffix.lstrip('.')}"]
    candidates += [f"{candidates[1]}_{i}" for i in range(2, 10_000)]
    for prefix in candidates:
        owner = claimed.get((parent, prefix.lower()))
        if owner is None or owner == source:
            claimed[(parent, prefix.lower())] = source
            return prefix
    raise FacePrepError(f"{rel}: no free crop file name")  # pragma: no cover - 10,000 name clashes


def _remove_crops(out: Path, rows: list[dict[str, str]]) -> None:
    root = out.resolve()
    for row in rows:
        path = (out / row["crop"]).resolve()
        if is_within(path, root) and path != root:
            path.unlink(missing_ok=True)


def prepare_faces(
    src_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    margin: float = 1.3,
    size: int | None = 224,
    keep: str = "largest",
    min_score: float = 0.9,
    device: str = "cpu",
    progress: bool = True,
    detector: FaceDetector | None = None,
) -> FacePrepResult:
    """Detect faces in every image under ``src_dir`` (recursive) and write square crops as PNG into ``out_dir``.

    The folder layout is kept (``src/train/real/a.jpg`` -> ``out/train/real/a_face0.png``, ``a_face1.png``... with
    ``keep="all"``; ``keep="largest"`` keeps only the largest face). Crops follow ``crop_face(margin, size)``;
    ``size=None`` keeps the native resolution. Clip folders (cut from videos along face tracks by
    ``deepfake_lib.data.clips``) are linked through unchanged. Images without a face and unreadable files (empty, corrupt, Git LFS
    pointers...) are listed in ``faces_report.json`` with the reason, never dropped silently.

    Cached: a re-run with the same settings skips sources already done (same size and mtime), processes new or
    changed ones and forgets deleted ones (their crops are removed); unreadable files are retried. Raises
    ``FacePrepError`` (a ``ValueError``) when ``out_dir`` was made with other settings, is inside ``src_dir``,
    or is a non-empty folder of something else. ``detector``: reuse a ``FaceDetector`` (its ``min_score`` must
    equal ``min_score``; ``device`` is then ignored).
    """
    src, out = Path(src_dir), Path(out_dir)
    det, settings = _checked_settings(margin, size, keep, min_score, device, detector)
    check_step_folders(src, out, CONFIG_FILE, settings, "face crops", FacePrepError)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / CONFIG_FILE).is_file():
        write_json(out / CONFIG_FILE, settings)
    run = _scan_sources(src, out, settings)
    todo = _sources_to_process(run, det.search)
    try:
        _crop_sources(run, todo, det, keep, margin, size, progress)
    finally:  # also on interruption: what was done so far is kept for the next run
        final = run.report()
        _write_outputs(out, run.rows(), final)
    return FacePrepResult(
        out_dir=out,
        manifest=out / MANIFEST_FILE,
        report=out / REPORT_FILE,
        n_sources=final["counts"]["sources"],
        n_with_face=final["counts"]["with_face"],
        n_crops=final["counts"]["crops"],
        no_face=[(e["source"], e["reason"]) for e in final["no_face"]],
        unreadable=[(e["source"], e["reason"]) for e in final["unreadable"]],
        skipped_cached=run.cached,
        n_processed=run.processed,
        n_removed=len(run.removed),
    )


def _checked_settings(
    margin: float, size: int | None, keep: str, min_score: float, device: str, detector: FaceDetector | None
) -> tuple[FaceDetector, dict[str, Any]]:
    """The detector to use and the settings recorded in ``faces_config.json``; ``FacePrepError`` when invalid."""
    if keep not in KEEP_CHOICES:
        raise FacePrepError(f"keep must be one of {', '.join(KEEP_CHOICES)}, got {keep!r}")
    if not margin > 0:
        raise FacePrepError(f"margin must be > 0, got {margin}")
    if size is not None and size < 1:
        raise FacePrepError(f"size must be >= 1 or None (native), got {size}")
    det = detector if detector is not None else FaceDetector(device, min_score)
    if det.min_score != float(min_score):
        raise FacePrepError(f"the detector's min_score {det.min_score} differs from min_score {min_score}")
    settings = {
        "margin": float(margin),
        "size": None if size is None else int(size),
        "keep": keep,
        "min_score": float(min_score),
        "detector": DETECTOR_NAME,
        "min_face_size": det.min_face_size,
        "format": "png",
    }
    return det, settings


@dataclass
class _FaceRun:
    """The state of one ``prepare_faces`` run: sources by relative path, their crops' manifest rows, the sources
    without a face or unreadable, and the counts its report gives."""

    src: Path
    out: Path
    settings: dict[str, Any]
    current: dict[str, Path]
    n_skipped: int
    rows_by_source: dict[str, list[dict[str, Any]]]
    no_face: dict[str, dict[str, Any]]
    unreadable: dict[str, str]
    removed: list[str]
    cached: int = 0
    processed: int = 0

    def rows(self) -> list[dict[str, Any]]:
        return [r for rows in self.rows_by_source.values() for r in rows]

    def report(self) -> dict[str, Any]:
        counts = {
            "sources": len(self.current) + self.n_skipped,
            "with_face": len(self.rows_by_source),
            "no_face": len(self.no_face),
            "unreadable": len(self.unreadable),
            "crops": sum(len(r) for r in self.rows_by_source.values()),
            "processed": self.processed,
            "skipped_cached": self.cached,
            "removed": len(self.removed),
        }
        return {
            "src_dir": str(self.src),
            "out_dir": str(self.out),
            "settings": self.settings,
            "detector_version": _detector_version(),
            "counts": counts,
            "no_face": [self.no_face[k] for k in sorted(self.no_face)],
            "unreadable": [{"source": k, "reason": self.unreadable[k]} for k in sorted(self.unreadable)],
        }


def _scan_sources(src: Path, out: Path, settings: dict[str, Any]) -> _FaceRun:
    """List the sources, link clip folders through, read what an earlier run left, and forget deleted sources
    (their crops are removed)."""
    from deepfake_lib.core.images import list_image_files

    old_report = read_json(out / REPORT_FILE, default={}) or {}
    files, skipped = list_image_files(src)
    skipped += _raw_videos(src)
    _link_clips(src, out)
    rows_by_source: dict[str, list[dict[str, Any]]] = {}
    for row in _read_manifest(out / MANIFEST_FILE):
        rows_by_source.setdefault(row["source"], []).append(row)
    no_face: dict[str, dict[str, Any]] = {e["source"]: e for e in old_report.get("no_face", [])}
    unreadable = {_rel(s.path, src): s.reason for s in skipped}
    current = {_rel(p, src): p for p in files}
    removed = [s for s in rows_by_source if s not in current] + [s for s in no_face if s not in current]
    for source in removed:
        _remove_crops(out, rows_by_source.pop(source, []))
        no_face.pop(source, None)
    return _FaceRun(src, out, settings, current, len(skipped), rows_by_source, no_face, unreadable, removed)


def _sources_to_process(run: _FaceRun, search: str) -> list[tuple[str, Path, tuple[int, int]]]:
    """The new or changed sources as ``(relative path, path, (size, mtime_ns))``; unchanged ones count as cached,
    and a changed one's old crops are removed. A source without a face is looked at again when the detector's
    ``search`` differs from the one that found none (crops of found faces are kept: a detector's later searches
    only look at images its first search found no face in)."""
    todo: list[tuple[str, Path, tuple[int, int]]] = []
    for rel, path in run.current.items():
        try:
            st = path.stat()
        except OSError as exc:
            run.unreadable[rel] = f"cannot read file ({exc.strerror or exc})"
            continue
        sig = (st.st_size, st.st_mtime_ns)
        rows = run.rows_by_source.get(rel, [])
        if rows and all((int(r["source_size"]), int(r["source_mtime"])) == sig for r in rows):
            run.cached += 1
            continue
        entry = run.no_face.get(rel) or {}
        if (entry.get("source_size"), entry.get("source_mtime"), entry.get("search")) == (*sig, search):
            run.cached += 1
            continue
        _remove_crops(run.out, run.rows_by_source.pop(rel, []))
        run.no_face.pop(rel, None)
        todo.append((rel, path, sig))
    return todo


def _crop_sources(
    run: _FaceRun,
    todo: list[tuple[str, Path, tuple[int, int]]],
    det: FaceDetector,
    keep: str,
    margin: float,
    size: int | None,
    progress: bool,
) -> None:
    """Detect faces in ``todo`` in chunks and write their crops; manifest and report are flushed now and then."""
    from tqdm.auto import tqdm

    claimed: dict[tuple[str, str], str] = {}
    for source, rows in run.rows_by_source.items():
        parent = Path(source).parent.as_posix().lower()
        for row in rows:
            claimed[(parent, _crop_prefix(row).lower())] = source
    reason = no_face_reason(det.min_score)
    last_flush = time.monotonic()
    with tqdm(total=len(todo), desc="faces", unit="img", disable=not progress) as bar:
        for start in range(0, len(todo), FACE_CHUNK):
            chunk = todo[start : start + FACE_CHUNK]
            loaded: list[tuple[str, Path, tuple[int, int], Image.Image]] = []
            for rel, path, sig in chunk:
                try:
                    loaded.append((rel, path, sig, load_image(path)))
                except ImageLoadError as exc:
                    run.unreadable[rel] = exc.reason
            found = det.detect_batch([img for *_, img in loaded])
            for (rel, _path, sig, img), faces in zip(loaded, found, strict=True):
                if keep == "largest":
                    faces = faces[:1]
                if not faces:
                    run.no_face[rel] = {"source": rel, "reason": reason, "source_size": sig[0], "source_mtime": sig[1],
                                        "search": det.search}  # fmt: skip
                else:
                    run.rows_by_source[rel] = _write_crops(img, faces, Path(rel), run.out, claimed, sig, margin, size)
                run.processed += 1
            bar.update(len(chunk))
            if time.monotonic() - last_flush > FLUSH_SECONDS:
                _write_outputs(run.out, run.rows(), run.report())
                last_flush = time.monotonic()


def _raw_videos(src: Path) -> list[Skipped]:
    """Video files under ``src``, listed as left out with the way in: this step crops images; videos become face
    clips in ``deepfake_lib.data.clips`` (``prepare_data`` runs it first)."""
    from deepfake_lib.core.images import VIDEO_HINT, list_samples

    return [s for s in list_samples(src)[1] if s.reason == VIDEO_HINT]


def _link_clips(src: Path, out: Path) -> int:
    """Link the clip folders under ``src`` (already face crops: ``deepfake_lib.data.clips`` cut them along face tracks)
    into ``out`` at the same place; returns how many were new."""
    from deepfake_lib.core.files import is_clip_dir
    from deepfake_lib.core.images import list_samples
    from deepfake_lib.core.runs import LinkWriter

    writer = LinkWriter("link")
    return sum(writer(p.resolve(), out / p.relative_to(src)) for p in list_samples(src)[0] if is_clip_dir(p))


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _detector_version() -> str:
    try:
        return metadata.version("facenet-pytorch")
    except metadata.PackageNotFoundError:  # pragma: no cover - it is a dependency
        return "unknown"


def _write_crops(
    image: Image.Image,
    faces: list[Face],
    rel: Path,
    out: Path,
    claimed: dict[tuple[str, str], str],
    sig: tuple[int, int],
    margin: float,
    size: int | None,
) -> list[dict[str, Any]]:
    """Save each face's crop as ``out/<rel folder>/<prefix>_face<i>.png``; return the manifest rows."""
    folder = out / rel.parent
    folder.mkdir(parents=True, exist_ok=True)
    prefix = _claim_prefix(rel, claimed)
    rows = []
    for i, face in enumerate(faces):
        box = square_box(face.box, margin, image.width, image.height)
        target = folder / f"{prefix}_face{i}.png"
        # Written in place (not atomically): a crop only counts once its manifest row is written, so a crop
        # left half-written by a crash belongs to no row and is rewritten by the next run.
        crop_face(image, face, margin, size).save(target, format="PNG")
        rows.append(
            {
                "source": rel.as_posix(),
                "crop": target.relative_to(out).as_posix(),
                "face_index": i,
                **{k: f"{v:.2f}" for k, v in zip(("x1", "y1", "x2", "y2"), face.box, strict=True)},
                "score": f"{face.score:.6f}",
                **dict(zip(("crop_left", "crop_top", "crop_right", "crop_bottom"), box, strict=True)),
                "source_width": image.width,
                "source_height": image.height,
                "source_size": sig[0],
                "source_mtime": sig[1],
            }
        )
    return rows
