"""Videos -> clip folders of T frames (face tracks or whole frames): the cached preparation step for video data.

``prepare_clips(SRC, OUT)`` mirrors ``SRC``: images (and clip folders already there) are linked unchanged, and each
video becomes clip folders ``<stem>_<ext>_t<track>_c<clip>.clip/`` of T square frames (``00.png ...``) with a
``clip.json`` (source video, track, frame numbers, times, boxes). Frames are sampled uniformly over the video
(``stride=None``) or every k-th frame; with face settings, faces are detected on the sampled frames (MTCNN),
linked into tracks within each clip window (one per person, longest first: ``deepfake_lib.data.tracks``) and cropped
along the track, so a clip follows one face through its T frames; without face settings the frames
are resized and centre-cropped like the evaluation transform. ``clips_manifest.csv`` lists every clip with its
source, ``clips_report.json`` the videos that gave no clip and why. A re-run reuses unchanged videos.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from deepfake_lib.core.files import CLIP_INFO, CLIP_SUFFIX
from deepfake_lib.core.images import list_samples, resize_center_crop
from deepfake_lib.core.runs import LinkWriter, atomic_write, check_step_folders, read_json, write_json

if TYPE_CHECKING:
    from deepfake_lib.core.video import VideoFrame, VideoInfo
    from deepfake_lib.data.faces import FaceDetector

MANIFEST_FILE = "clips_manifest.csv"
REPORT_FILE = "clips_report.json"
CONFIG_FILE = "clips_config.json"
MANIFEST_COLUMNS = ("source", "clip", "track", "clip_index", "frames", "start_time", "end_time", "source_size",
                    "source_mtime")  # fmt: skip
FORMAT_VERSION = 1


class ClipPrepError(ValueError):
    """Bad input for clip preparation (folders, settings); a one-line message."""


@dataclass(frozen=True)
class ClipSettings:
    """How videos become clips.

    ``frames``: T, frames per clip. ``clips``: at most this many clips per track, spread evenly over the video.
    ``stride``: None samples ``frames * clips`` frames uniformly over the whole video (clips cover its length);
    k takes every k-th frame for each clip (a clip spans ``(frames - 1) * k + 1`` frames of the file).
    ``size``: side of the square frames. ``faces``: None for whole frames, else ``{"margin", "keep",
    "min_score"}`` (keep "largest": the main track only; "all": every track long enough for a clip).
    """

    frames: int = 8
    clips: int = 2
    stride: int | None = None
    size: int = 224
    faces: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.frames < 1 or self.clips < 1 or self.size < 8 or (self.stride is not None and self.stride < 1):
            raise ClipPrepError(f"invalid clip settings {self}: frames, clips, stride >= 1 and size >= 8")
        if self.faces is not None and self.faces.get("keep", "largest") not in ("largest", "all"):
            raise ClipPrepError(f"faces keep must be 'largest' or 'all', got {self.faces.get('keep')!r}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "format": FORMAT_VERSION}

    def frame_indices(self, n_frames: int) -> list[list[int]]:
        """Frame numbers of each clip window for a video of ``n_frames`` (uniform or strided), before tracking."""
        from deepfake_lib.core.video import sample_indices

        t = self.frames
        if self.stride is None:  # consecutive windows; a short video's windows overlap so its end is seen too
            picked = sample_indices(n_frames, num=t * self.clips)
            if len(picked) < t:
                return []
            n = min(self.clips, len(picked) - t + 1)
            starts = sorted({round((len(picked) - t) * i / max(1, n - 1)) for i in range(n)})
            return [picked[s : s + t] for s in starts]
        span = (t - 1) * self.stride + 1
        if n_frames < span:
            return []
        last = n_frames - span
        starts = sorted({round(last * i / max(1, self.clips - 1)) for i in range(self.clips)})
        return [[s + j * self.stride for j in range(t)] for s in starts]


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


def has_videos(folder: str | os.PathLike[str]) -> bool:
    """True when any video file lies under ``folder``."""
    from deepfake_lib.core.video import list_video_files

    return Path(folder).is_dir() and bool(list_video_files(Path(folder)))


def clip_origins(manifest: str | os.PathLike[str]) -> dict[str, str]:
    """Clip folder -> source video, both relative to their roots, from a clips manifest."""
    with open(manifest, newline="", encoding="utf-8") as fh:
        return {row["clip"]: row["source"] for row in csv.DictReader(fh)}


def read_clip_info(clip_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A clip folder's ``clip.json`` (source video, track, frames with index/time/box), or ``{}``."""
    return read_json(Path(clip_dir) / CLIP_INFO, default={}) or {}


# --------------------------------------------------------------------------- one video
@dataclass
class VideoClips:
    """The clips of one video: ``clips[i]`` = T square frames, ``info[i]`` = their ``clip.json`` content."""

    clips: list[list[Image.Image]]
    info: list[dict[str, Any]]
    reason: str = ""  # why there is no clip (no face, too short)
    video: VideoInfo | None = None  # the file's frame count, rate and size


def video_clips(
    path: str | os.PathLike[str], settings: ClipSettings, detector: FaceDetector | None = None
) -> VideoClips:
    """Read the frames ``settings`` asks for from one video and cut them into clips (face tracks or whole frames).

    Raises ``video.VideoError`` for a file that cannot be read; a video with no usable face track, or shorter
    than one clip, gives no clips and a ``reason``.
    """
    from deepfake_lib.core.video import probe_video, read_frames

    info = probe_video(path)
    windows = settings.frame_indices(info.frames)
    if not windows:
        return VideoClips([], [], f"too short: {info.frames} frame(s), a clip needs {settings.frames}", info)
    wanted = sorted({i for w in windows for i in w})
    frames = {f.index: f for f in read_frames(path, indices=wanted, info=info)}
    windows = [[i for i in w if i in frames] for w in windows]
    windows = [w for w in windows if len(w) == settings.frames]
    if not windows:
        reason = f"truncated: too few frames could be decoded for a clip of {settings.frames}"
        return VideoClips([], [], reason, info)
    if settings.faces is None:
        clips = [[resize_center_crop(frames[i].image, settings.size) for i in w] for w in windows]
        meta = [_clip_meta(info.fps, [frames[i] for i in w], 0, k, None) for k, w in enumerate(windows)]
        return VideoClips(clips, meta, video=info)
    cut = _face_clips(frames, windows, settings, info.fps, detector)
    cut.video = info
    return cut


def _face_clips(
    frames: dict[int, VideoFrame],
    windows: list[list[int]],
    settings: ClipSettings,
    fps: float,
    detector: FaceDetector | None,
) -> VideoClips:
    """Detect faces on every sampled frame, link them into tracks over each window, crop each track."""
    from deepfake_lib.data.faces import FaceDetector, no_face_reason
    from deepfake_lib.data.tracks import link_tracks, track_crops

    face = settings.faces or {}
    det = detector or FaceDetector(min_score=float(face.get("min_score", 0.9)))
    clips: list[list[Image.Image]] = []
    meta: list[dict[str, Any]] = []
    min_detections = max(1, (settings.frames + 1) // 2)
    for k, window in enumerate(windows):
        images = [frames[i].image for i in window]
        tracks = [t for t in link_tracks(det.detect_batch(images)) if t.length >= min_detections]
        if face.get("keep", "largest") == "largest":
            tracks = tracks[:1]
        for track in tracks:
            crops = track_crops(images, track, margin=float(face.get("margin", 1.3)), size=settings.size, smooth=3)
            boxes = track.boxes(len(images), smooth=3)
            clips.append(crops)
            meta.append(_clip_meta(fps, [frames[i] for i in window], track.id, k, boxes))
    if not clips:
        return VideoClips([], [], f"{no_face_reason(det.min_score)} in at least {min_detections} of {settings.frames} "
                                  "frames of any clip window")  # fmt: skip
    return VideoClips(clips, meta)


def _clip_meta(
    fps: float, frames: list[VideoFrame], track: int, clip: int, boxes: list[tuple[float, ...]] | None
) -> dict[str, Any]:
    return {
        "track": track,
        "clip": clip,
        "fps": fps,
        "frames": [
            {"index": f.index, "time": round(f.time, 4), "box": None if boxes is None else [round(v, 1) for v in b]}
            for f, b in zip(frames, boxes or [None] * len(frames), strict=True)
        ],
    }


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
    from tqdm.auto import tqdm

    from deepfake_lib.core.video import VideoError, list_video_files
    from deepfake_lib.data.faces import FaceDetector

    settings = settings or ClipSettings()
    src, out = Path(src_dir), Path(out_dir)
    recorded = settings.to_dict()
    check_step_folders(src, out, CONFIG_FILE, recorded, "clips", ClipPrepError)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / CONFIG_FILE).is_file():
        write_json(out / CONFIG_FILE, recorded)

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
    unreadable: dict[str, str] = {}
    for gone in set(rows) - set(videos):
        for row in rows.pop(gone):
            shutil.rmtree(out / row["clip"], ignore_errors=True)

    det = detector
    if settings.faces is not None and det is None:
        det = FaceDetector(device, float(settings.faces.get("min_score", 0.9)))
    processed = cached = 0
    try:
        for rel, path in tqdm(videos.items(), desc="video clips", unit="video", disable=not progress):
            st = path.stat()
            sig = (st.st_size, st.st_mtime_ns)
            done = rows.get(rel, [])
            same = all((int(r["source_size"]), int(r["source_mtime"])) == sig for r in done)
            if done and same and all((out / r["clip"]).is_dir() for r in done):
                cached += 1
                continue
            entry = no_clip.get(rel)
            if entry is not None and (entry.get("source_size"), entry.get("source_mtime")) == sig:
                cached += 1
                continue
            for row in rows.pop(rel, []):
                shutil.rmtree(out / row["clip"], ignore_errors=True)
            no_clip.pop(rel, None)
            try:
                result = video_clips(path, settings, det)
            except VideoError as exc:
                unreadable[rel] = exc.reason
                continue
            processed += 1
            if not result.clips:
                no_clip[rel] = {"source": rel, "reason": result.reason, "source_size": sig[0], "source_mtime": sig[1]}
                continue
            new_rows = []
            for frames, meta in zip(result.clips, result.info, strict=True):
                folder = out / Path(rel).parent / _clip_name(Path(rel), meta["track"], meta["clip"])
                _write_clip(folder, frames, {"source": rel, "source_path": str(path.resolve()), **meta})
                times = [f["time"] for f in meta["frames"]]
                new_rows.append({
                    "source": rel, "clip": folder.relative_to(out).as_posix(), "track": meta["track"],
                    "clip_index": meta["clip"], "frames": len(frames), "start_time": times[0], "end_time": times[-1],
                    "source_size": sig[0], "source_mtime": sig[1],
                })  # fmt: skip
            rows[rel] = new_rows
    finally:  # also on interruption: what was done is kept for the next run
        all_rows = [r for rs in rows.values() for r in rs]
        _write_manifest(out, all_rows)
        write_json(out / REPORT_FILE, {
            "src_dir": str(src), "out_dir": str(out), "settings": recorded,
            "counts": {"videos": len(videos), "clips": len(all_rows), "no_clip": len(no_clip),
                       "unreadable": len(unreadable), "processed": processed, "skipped_cached": cached},
            "no_clip": [no_clip[k] for k in sorted(no_clip)],
            "unreadable": [{"source": k, "reason": unreadable[k]} for k in sorted(unreadable)],
        })  # fmt: skip
    return ClipPrepResult(
        out_dir=out,
        manifest=out / MANIFEST_FILE,
        n_videos=len(videos),
        n_clips=len(all_rows),
        n_linked=linked,
        no_clip=[(k, no_clip[k]["reason"]) for k in sorted(no_clip)],
        unreadable=sorted(unreadable.items()),
        n_processed=processed,
        skipped_cached=cached,
    )
