"""The cached clip step: a folder with videos -> the same layout with each video cut into clip folders."""

from __future__ import annotations

import csv
import io
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from deepfake_lib.core.files import CLIP_INFO, CLIP_SUFFIX, is_within
from deepfake_lib.core.images import list_samples
from deepfake_lib.core.runs import LinkWriter, atomic_write, check_step_folders, read_json, write_json
from deepfake_lib.data.clips import ClipPrepError, ClipSettings, video_clips

if TYPE_CHECKING:
    from deepfake_lib.data.faces import FaceDetector

MANIFEST_FILE = "clips_manifest.csv"
REPORT_FILE = "clips_report.json"
CONFIG_FILE = "clips_config.json"
MANIFEST_COLUMNS = ("source", "clip", "track", "clip_index", "frames", "start_time", "end_time", "source_size",
                    "source_mtime")  # fmt: skip


@dataclass
class ClipPrepResult:
    """What ``prepare_clips`` found and wrote (``no_clip``/``unreadable``: ``(source, reason)`` pairs)."""

    out_dir: Path
    manifest: Path
    n_videos: int
    n_clips: int
    n_linked: int
    no_clip: list[tuple[str, str]] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    n_processed: int = 0
    skipped_cached: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "videos": self.n_videos,
            "clips": self.n_clips,
            "linked": self.n_linked,
            "no_clip": len(self.no_clip),
            "unreadable": len(self.unreadable),
            "processed": self.n_processed,
            "skipped_cached": self.skipped_cached,
            "manifest": str(self.manifest),
        }


def clip_origins(manifest: str | os.PathLike[str]) -> dict[str, str]:
    """Clip folder -> source video, both relative to their roots, from a clips manifest."""
    with open(manifest, newline="", encoding="utf-8") as fh:
        return {row["clip"]: row["source"] for row in csv.DictReader(fh)}


# --------------------------------------------------------------------------- the cached folder step
def _unlink_removed(out: Path, current: set[str]) -> None:
    """Remove the links in ``out`` to images or clip folders no longer in the source (our own clips are folders,
    not links, and stay)."""
    for dirpath, dirnames, filenames in os.walk(out):
        for name in [*filenames, *dirnames]:
            p = Path(dirpath) / name
            if p.is_symlink() and p.relative_to(out).as_posix() not in current:
                p.unlink()
        # links are the source's; real clip folders are ours and hold only frames
        dirnames[:] = [d for d in dirnames if not (Path(dirpath) / d).is_symlink() and not d.endswith(CLIP_SUFFIX)]


def _remove_clip(out: Path, clip: str) -> None:
    """Remove a clip folder the manifest names, only when it is one of ours: a ``.clip`` folder inside ``out``
    (a manifest edited by hand, or a blank row, never removes anything else)."""
    path = out / clip
    root, target = out.resolve(), path.resolve()
    if not clip.endswith(CLIP_SUFFIX) or path.is_symlink() or target == root or not is_within(target, root):
        return
    shutil.rmtree(path, ignore_errors=True)


def _clip_name(rel: Path, track: int, clip: int) -> str:
    return f"{rel.stem}_{rel.suffix.lstrip('.').lower()}_t{track}_c{clip}.clip"


def _write_clip(folder: Path, frames: list[Image.Image], info: dict[str, Any]) -> None:
    """Write a clip folder via a temporary sibling, then rename: a crash leaves no half-written clip."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    width = max(2, len(str(len(frames) - 1)))
    for i, img in enumerate(frames):
        img.save(tmp / f"{i:0{width}d}.png", format="PNG")
    write_json(tmp / CLIP_INFO, info)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def _write_manifest(out: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(sorted(rows, key=lambda r: r["clip"]))
    atomic_write(out / MANIFEST_FILE, lambda tmp: tmp.write_text(buf.getvalue(), encoding="utf-8"))


def prepare_clips(
    src_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    settings: ClipSettings | None = None,
    device: str = "cpu",
    progress: bool = True,
    detector: FaceDetector | None = None,
) -> ClipPrepResult:
    """Mirror ``src_dir`` into ``out_dir`` with every video cut into clip folders (see the module docstring).

    Videos that cannot be read (corrupt, truncated to nothing, audio-only, Git LFS pointers...) and videos that
    give no clip (no face track, too short) are listed in ``clips_report.json`` with the reason; the rest go on.
    Raises ``ClipPrepError`` (a ``ValueError``) for an output folder made with other settings or inside the source.
    """
    from deepfake_lib.data.faces import video_detector

    settings = settings or ClipSettings()
    src, out = Path(src_dir), Path(out_dir)
    recorded = settings.to_dict()
    check_step_folders(src, out, CONFIG_FILE, recorded, "clips", ClipPrepError)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / CONFIG_FILE).is_file():
        write_json(out / CONFIG_FILE, recorded)
    run = _scan_videos(src, out, recorded)
    det = detector
    if settings.faces is not None and det is None:
        det = video_detector(device, float(settings.faces.get("min_score", 0.9)))
    try:
        _cut_videos(run, settings, det, progress)
    finally:  # also on interruption: what was done is kept for the next run
        all_rows = run.all_rows()
        _write_manifest(out, all_rows)
        write_json(out / REPORT_FILE, run.report(all_rows))
    return ClipPrepResult(
        out_dir=out,
        manifest=out / MANIFEST_FILE,
        n_videos=len(run.videos),
        n_clips=len(all_rows),
        n_linked=run.linked,
        no_clip=[(k, run.no_clip[k]["reason"]) for k in sorted(run.no_clip)],
        unreadable=sorted(run.unreadable.items()),
        n_processed=run.processed,
        skipped_cached=run.cached,
    )


@dataclass
class _ClipRun:
    """The state of one ``prepare_clips`` run: the videos by relative path, their clips' manifest rows, the videos
    that gave no clip or could not be read, and the counts its report gives."""

    src: Path
    out: Path
    recorded: dict[str, Any]
    videos: dict[str, Path]
    rows: dict[str, list[dict[str, Any]]]
    no_clip: dict[str, dict[str, Any]]
    linked: int
    unreadable: dict[str, str] = field(default_factory=dict)
    processed: int = 0
    cached: int = 0

    def all_rows(self) -> list[dict[str, Any]]:
        return [r for rs in self.rows.values() for r in rs]

    def report(self, all_rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "src_dir": str(self.src), "out_dir": str(self.out), "settings": self.recorded,
            "counts": {"videos": len(self.videos), "clips": len(all_rows), "no_clip": len(self.no_clip),
                       "unreadable": len(self.unreadable), "processed": self.processed, "skipped_cached": self.cached},
            "no_clip": [self.no_clip[k] for k in sorted(self.no_clip)],
            "unreadable": [{"source": k, "reason": self.unreadable[k]} for k in sorted(self.unreadable)],
        }  # fmt: skip


def _scan_videos(src: Path, out: Path, recorded: dict[str, Any]) -> _ClipRun:
    """Link images and clip folders through, list the videos, read what an earlier run left and remove the clips
    of videos that are gone."""
    from deepfake_lib.core.video import list_video_files

    items, _ = list_samples(src)  # images and clip folders pass through unchanged
    writer = LinkWriter("link")
    linked = sum(writer(p.resolve(), out / p.relative_to(src)) for p in items)
    _unlink_removed(out, {p.relative_to(src).as_posix() for p in items})
    videos = {p.relative_to(src).as_posix(): p for p in list_video_files(src)}
    old_rows = read_json(out / REPORT_FILE, default={}) or {}
    rows: dict[str, list[dict[str, Any]]] = {}
    if (out / MANIFEST_FILE).is_file():
        with open(out / MANIFEST_FILE, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                rows.setdefault(row["source"], []).append(row)
    no_clip = {e["source"]: e for e in old_rows.get("no_clip", []) if e["source"] in videos}
    for gone in set(rows) - set(videos):
        for row in rows.pop(gone):
            _remove_clip(out, row["clip"])
    return _ClipRun(src, out, recorded, videos, rows, no_clip, linked)


def _is_cached(run: _ClipRun, rel: str, sig: tuple[int, int]) -> bool:
    """True when the video is unchanged since its clips (or its no-clip verdict) were written."""
    done = run.rows.get(rel, [])
    same = all((int(r["source_size"]), int(r["source_mtime"])) == sig for r in done)
    if done and same and all((run.out / r["clip"]).is_dir() for r in done):
        return True
    entry = run.no_clip.get(rel)
    return entry is not None and (entry.get("source_size"), entry.get("source_mtime")) == sig


def _cut_videos(run: _ClipRun, settings: ClipSettings, det: FaceDetector | None, progress: bool) -> None:
    """Cut every new or changed video into clip folders; unchanged ones count as cached."""
    from tqdm.auto import tqdm

    from deepfake_lib.core.video import VideoError

    for rel, path in tqdm(run.videos.items(), desc="video clips", unit="video", disable=not progress):
        st = path.stat()
        sig = (st.st_size, st.st_mtime_ns)
        if _is_cached(run, rel, sig):
            run.cached += 1
            continue
        for row in run.rows.pop(rel, []):
            _remove_clip(run.out, row["clip"])
        run.no_clip.pop(rel, None)
        try:
            result = video_clips(path, settings, det)
        except VideoError as exc:
            run.unreadable[rel] = exc.reason
            continue
        run.processed += 1
        if not result.clips:
            run.no_clip[rel] = {"source": rel, "reason": result.reason, "source_size": sig[0], "source_mtime": sig[1]}
            continue
        run.rows[rel] = [_write_video_clip(run.out, rel, path, sig, frames, meta)
                         for frames, meta in zip(result.clips, result.info, strict=True)]  # fmt: skip


def _write_video_clip(
    out: Path, rel: str, path: Path, sig: tuple[int, int], frames: list[Image.Image], meta: dict[str, Any]
) -> dict[str, Any]:
    """Write one clip folder of video ``rel`` and return its manifest row."""
    folder = out / Path(rel).parent / _clip_name(Path(rel), meta["track"], meta["clip"])
    _write_clip(folder, frames, {"source": rel, "source_path": str(path.resolve()), **meta})
    times = [f["time"] for f in meta["frames"]]
    return {
        "source": rel, "clip": folder.relative_to(out).as_posix(), "track": meta["track"],
        "clip_index": meta["clip"], "frames": len(frames), "start_time": times[0], "end_time": times[-1],
        "source_size": sig[0], "source_mtime": sig[1],
    }  # fmt: skip
