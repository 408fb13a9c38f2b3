"""File kinds that images, videos and weights all need: extensions, clip folders, Git LFS pointers, skipped files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})
LFS_POINTER_PREFIX = b"version https://git-lfs"
CLIP_SUFFIX = ".clip"
CLIP_INFO = "clip.json"


@dataclass(frozen=True)
class Skipped:
    """A file left out of a scan, and why."""

    path: Path
    reason: str


def is_lfs_pointer(path: str | os.PathLike[str]) -> bool:
    """True when the file is a Git LFS pointer (a small text file standing in for the real content)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(LFS_POINTER_PREFIX)) == LFS_POINTER_PREFIX
    except OSError:
        return False


def lfs_pointer_reason(kind: str = "image") -> str:
    """Why a Git LFS pointer cannot be read as a ``kind``, and the command that fetches the real file."""
    return f"Git LFS pointer file, not the {kind} itself: run `git lfs pull` to fetch the real file"


def weights_file_problem(path: Path, kind: str) -> str | None:
    """Why the ``kind`` file (``checkpoint``, ``ONNX``) at ``path`` cannot be read at all: missing, empty, or a
    Git LFS pointer; None when it is worth opening."""
    if not path.is_file():
        return f"{kind} file not found"
    if path.stat().st_size == 0:
        return f"empty {kind} file (0 bytes)"
    if is_lfs_pointer(path):
        return lfs_pointer_reason(f"{kind} file")
    return None


def is_clip_dir(path: str | os.PathLike[str]) -> bool:
    """True for a folder named ``*.clip`` (the frames of one clip)."""
    p = Path(path)
    return p.name.lower().endswith(CLIP_SUFFIX) and p.is_dir()


def is_video_file(path: str | os.PathLike[str]) -> bool:
    """True for a file name with a video extension (the content is not checked)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS
