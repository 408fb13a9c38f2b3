"""Video files: find them, probe them, read sampled frames with their timestamps (PyAV with keyframe seeks, or
OpenCV's FFMPEG decoder in order), and write them. Errors name the file and the reason (missing, empty, Git LFS
pointer, not a video, undecodable)."""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import numbers
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from deepfake_lib.core.files import (
    CLIP_SUFFIX,
    VIDEO_EXTENSIONS,
    Skipped,
    is_lfs_pointer,
    is_video_file,
    lfs_pointer_reason,
    walk_folder,
)
from deepfake_lib.core.runs import atomic_write

VIDEO_READERS = ("auto", "pyav", "opencv")  # see iter_frames
DEFAULT_FPS = 25.0  # assumed when the container reports no usable frame rate
NO_STREAM = "no video stream that OpenCV/FFMPEG can decode (corrupt, audio-only or unsupported codec)"

log = logging.getLogger(__name__)


class VideoError(Exception):
    """A video file that cannot be used; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe_video`` found. ``fps_assumed``: the container gave no usable frame rate, ``DEFAULT_FPS`` used."""

    path: Path
    frames: int
    fps: float
    width: int
    height: int
    fps_assumed: bool = False

    @property
    def duration(self) -> float:
        """Length in seconds (``frames / fps``)."""
        return self.frames / self.fps


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame: ``index`` (frame number in the file), ``time`` (seconds, ``index / fps``), RGB ``image``."""

    index: int
    time: float
    image: Image.Image


@contextlib.contextmanager
def _quiet_decoder() -> Iterator[None]:
    """Silence FFMPEG's and OpenCV's own messages on file descriptor 2 while a file is opened ("moov atom not
    found" and the like, for a file that then gets a clear ``VideoError``); ``DEEPFAKE_VIDEO_DEBUG=1`` keeps them."""
    if os.environ.get("DEEPFAKE_VIDEO_DEBUG") == "1":
        yield
        return
    import cv2

    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (some notebook frontends): nothing to silence
        saved = None
    try:
        if saved is not None:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        yield
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
        cv2.utils.logging.setLogLevel(level)


def _quietly(call: Any) -> Any:
    """``call()`` with the decoder's own messages silenced (``_quiet_decoder``): a corrupt packet's "invalid len"
    must not reach the user's terminal, only the clear error that follows."""
    with _quiet_decoder():
        return call()


def _open(p: Path) -> Any:
    """An opened ``cv2.VideoCapture`` on ``p`` (FFMPEG backend when present); ``VideoError`` when it will not open."""
    import cv2

    backend = cv2.CAP_FFMPEG if cv2.videoio_registry.hasBackend(cv2.CAP_FFMPEG) else cv2.CAP_ANY
    try:
        with _quiet_decoder():
            cap = cv2.VideoCapture(str(p), backend)
    except cv2.error as exc:
        raise VideoError(p, f"{NO_STREAM}: {exc}") from None
    if not cap.isOpened():
        cap.release()
        raise VideoError(p, NO_STREAM)
    return cap


def _to_rgb(frame: np.ndarray) -> Image.Image:
    """OpenCV's BGR ``[H, W, 3]`` (or gray ``[H, W]``, BGRA ``[H, W, 4]``) uint8 frame as a PIL RGB image."""
    if frame.ndim == 2:
        return Image.fromarray(frame).convert("RGB")
    return Image.fromarray(np.ascontiguousarray(frame[..., 2::-1]))


def _prop(cap: Any, prop: int) -> float:
    value = float(cap.get(prop))
    return value if math.isfinite(value) else 0.0


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Frame count, frame rate and size of a video. Raises ``VideoError`` naming the file and the reason.

    A container that reports no frame count or size is read through once (``grab``) to count; no usable frame rate
    means ``DEFAULT_FPS`` (logged, ``fps_assumed``). The frame count may still be over-reported (truncated files):
    ``read_frames`` copes.
    """
    import cv2

    p = Path(path)
    if not p.exists():
        raise VideoError(p, "file not found (broken symlink)" if p.is_symlink() else "file not found")
    if not p.is_file():
        raise VideoError(p, "not a regular file")
    if not is_video_file(p):
        supported = ", ".join(sorted(VIDEO_EXTENSIONS))
        raise VideoError(p, f"not a video file (extension {p.suffix or '(none)'}); supported: {supported}")
    if p.stat().st_size == 0:
        raise VideoError(p, "empty file (0 bytes)")
    if not os.access(p, os.R_OK):
        raise VideoError(p, "permission denied: cannot read the file")
    if is_lfs_pointer(p):
        raise VideoError(p, lfs_pointer_reason("video"))
    cap = _open(p)
    try:
        frames = int(_prop(cap, cv2.CAP_PROP_FRAME_COUNT))
        fps = _prop(cap, cv2.CAP_PROP_FPS)
        width, height = int(_prop(cap, cv2.CAP_PROP_FRAME_WIDTH)), int(_prop(cap, cv2.CAP_PROP_FRAME_HEIGHT))
        if frames <= 0 or width <= 0 or height <= 0:
            ok, first = _quietly(cap.read)
            if not ok or first is None:
                raise VideoError(p, "no frames" if frames <= 0 else NO_STREAM)
            height, width = first.shape[:2]
            if frames <= 0:  # count by grabbing: slow for long videos, but only when the container says nothing
                frames = 1
                while _quietly(cap.grab):
                    frames += 1
    finally:
        cap.release()
    fps_assumed = not 0 < fps <= 1000
    if fps_assumed:
        log.warning("%s: no usable frame rate (%s); assuming %s fps", p, fps, DEFAULT_FPS)
        fps = DEFAULT_FPS
    return VideoInfo(p, frames, fps, width, height, fps_assumed)


def _positive(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def sample_indices(
    n_frames: int, num: int | None = None, every: int | None = None, max_frames: int | None = None
) -> list[int]:
    """Sorted unique frame indices in ``[0, n_frames)``: give exactly one of ``num`` (that many frames spread
    uniformly, the centre of each of ``num`` equal segments; all frames when the video is shorter) or ``every``
    (frames 0, k, 2k, ...). ``max_frames`` caps the count (for ``num``: spread ``min(num, max_frames)``)."""
    if (num is None) == (every is None):
        raise ValueError("give exactly one of num (frames spread uniformly) or every (every k-th frame)")
    for name, value in (("num", num), ("every", every), ("max_frames", max_frames)):
        _positive(name, value)
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, got {n_frames}")
    if every is not None:
        indices = list(range(0, n_frames, every))
        return indices if max_frames is None else indices[:max_frames]
    assert num is not None
    count = int(min(num, max_frames or num))
    if count >= n_frames:
        return list(range(n_frames))
    return [int((i + 0.5) * n_frames / count) for i in range(count)]


def iter_frames(
    path: str | os.PathLike[str],
    num: int | None = None,
    every: int | None = None,
    max_frames: int | None = None,
    indices: Iterable[int] | None = None,
    info: VideoInfo | None = None,
    reader: str | None = None,
) -> Iterator[VideoFrame]:
    """Yield the frames ``sample_indices`` picks, in order (only those are kept in memory). ``indices`` instead of
    ``num``/``every``: those frame numbers. ``time = index / fps``. A file that ends early yields what it has with
    a logged warning; ``VideoError`` when no wanted frame decodes. ``info``: this file's ``probe_video`` when the
    caller has it (the file is not probed again).

    ``reader`` (default: ``$DEEPFAKE_VIDEO_READER``, else ``"auto"``): ``"pyav"`` seeks to keyframes where that
    decodes fewer frames (``video_seek``; the frames are the ones sequential decoding gives, and anything PyAV
    cannot place is read in order instead), ``"opencv"`` reads the file once from the start (``grab`` every frame,
    ``retrieve`` the wanted ones), ``"auto"`` is ``"pyav"`` when PyAV is installed.
    """
    if indices is not None:
        if num is not None or every is not None:
            raise ValueError("give indices, or one of num / every, not both")
        _positive("max_frames", max_frames)
        wanted = sorted({int(i) for i in indices})[:max_frames]
        if wanted and wanted[0] < 0:
            raise ValueError(f"frame indices must be >= 0, got {wanted[0]}")
    reader = resolve_reader(reader)
    info = info or probe_video(path)
    if indices is None:
        wanted = sample_indices(info.frames, num=num, every=every, max_frames=max_frames)
    if not wanted:
        return
    done: set[int] = set()
    if reader == "pyav":
        from deepfake_lib.core.video_seek import SeekError, read_sampled

        try:
            for index, rgb in read_sampled(info.path, wanted):
                done.add(index)
                yield VideoFrame(index, index / info.fps, Image.fromarray(rgb))
        except SeekError as exc:
            log.info("%s: %s; decoding the remaining frames in order", info.path, exc)
        if len(done) == len(wanted):
            return
    yield from _read_in_order(info, wanted, done)


def resolve_reader(reader: str | None) -> str:
    """``"pyav"`` or ``"opencv"`` for a ``reader`` of ``VIDEO_READERS`` (None: ``$DEEPFAKE_VIDEO_READER`` or
    ``"auto"``); ``ValueError`` for another name or ``"pyav"`` without PyAV installed."""
    from deepfake_lib.core.video_seek import pyav_available

    name = reader or os.environ.get("DEEPFAKE_VIDEO_READER") or "auto"
    if name not in VIDEO_READERS:
        raise ValueError(f"video reader must be one of {', '.join(VIDEO_READERS)}, got {name!r}")
    if name == "auto":
        return "pyav" if pyav_available() else "opencv"
    if name == "pyav" and not pyav_available():
        raise ValueError("video reader 'pyav' needs PyAV: pip install av")
    return name


def _read_in_order(info: VideoInfo, wanted: list[int], done: set[int]) -> Iterator[VideoFrame]:
    """OpenCV's sequential reader: the ``wanted`` frames not in ``done``, reading the file once from the start;
    the warnings and errors of ``iter_frames`` count ``done`` as read."""
    todo = [w for w in wanted if w not in done]
    cap = _open(info.path)
    got, index = len(done), 0
    target = iter(todo)
    next_index = next(target)
    try:
        while _quietly(cap.grab):
            if index == next_index:
                ok, frame = _quietly(cap.retrieve)
                if not ok or frame is None:
                    break
                got += 1
                yield VideoFrame(index, index / info.fps, _to_rgb(frame))
                next_index = next(target, -1)
                if next_index < 0:
                    return
            index += 1
    finally:
        cap.release()
    if got == 0 and index == 0:
        raise VideoError(info.path, "truncated or corrupt: no frame could be decoded")
    if got == 0:
        reason = f"truncated: the file ends after {index} of the {info.frames} frames it reports"
        raise VideoError(info.path, f"{reason}, before the first sampled frame ({wanted[0]})")
    msg = "%s: video ended early (truncated, or its container over-reports %d frames): got %d of %d sampled frames"
    log.warning(msg, info.path, info.frames, got, len(wanted))


def read_frames(
    path: str | os.PathLike[str],
    num: int | None = None,
    every: int | None = None,
    max_frames: int | None = None,
    indices: Iterable[int] | None = None,
    info: VideoInfo | None = None,
    reader: str | None = None,
) -> list[VideoFrame]:
    """The sampled frames of a video as a list (see ``iter_frames``, ``sample_indices``)."""
    return list(iter_frames(path, num=num, every=every, max_frames=max_frames, indices=indices, info=info,
                            reader=reader))  # fmt: skip


def check_video(path: str | os.PathLike[str]) -> str | None:
    """``None`` when ``path`` probes and its first frame decodes, else the reason it cannot be used."""
    try:
        read_frames(path, every=1, max_frames=1)
    except VideoError as exc:
        return exc.reason
    return None


def list_video_files(folder: Path, exclude: Iterable[Path] = ()) -> list[Path]:
    """Sorted video files under ``folder`` (recursive; links followed only inside ``folder`` and never into
    ``exclude``, see ``files.walk_folder``; names starting with "." skipped)."""
    files: list[Path] = []
    for dirpath, dirnames, filenames in walk_folder(folder, [], exclude):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and not d.lower().endswith(CLIP_SUFFIX)]
        files.extend(Path(dirpath) / n for n in filenames if not n.startswith(".") and is_video_file(n))
    return sorted(files)


def scan_videos(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[VideoInfo], list[Skipped]]:
    """Probe each video; returns the good ones and, for the others, ``Skipped(path, reason)`` (never stops early)."""
    good: list[VideoInfo] = []
    bad: list[Skipped] = []
    for path in paths:
        try:
            good.append(probe_video(path))
        except VideoError as exc:
            bad.append(Skipped(exc.path, exc.reason))
    return good, bad


def write_video(path: str | os.PathLike[str], frames: Iterable[np.ndarray], fps: float = 10.0) -> Path:
    """Write RGB frames ``[H, W, 3]`` uint8 (all one size; a list, or any iterable consumed one frame at a time) as
    an MPEG-4 video (``.mp4``; ``.avi`` gets MJPG), atomically. Returns ``path``."""
    import cv2

    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError("write_video: no frames")
    h, w = first.shape[:2]
    path = Path(path)
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))

    def write(tmp: Path) -> None:
        writer = cv2.VideoWriter(str(tmp), fourcc, float(fps), (w, h))
        if not writer.isOpened():
            raise OSError(f"OpenCV cannot write {path.suffix} video to {tmp}")
        try:
            for frame in itertools.chain([first], frames):
                if frame.shape[:2] != (h, w):
                    raise ValueError(f"write_video: frame of shape {frame.shape} in a {h}x{w} video")
                writer.write(cv2.cvtColor(np.ascontiguousarray(frame, dtype=np.uint8), cv2.COLOR_RGB2BGR))
        finally:
            writer.release()

    atomic_write(path, write, suffix=path.suffix)
    return path
