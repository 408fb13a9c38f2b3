"""File kinds that images, videos and weights all need: extensions, clip folders, Git LFS pointers, skipped files."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator
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


def is_within(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or lies inside it (compared as given: resolve both first to follow links)."""
    return path == folder or folder in path.parents


def folder_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is not a folder to read (``not found``, ``is a file, not a folder``, ``a symlink loop``), or None."""
    p = Path(path)
    try:
        p.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symlink loop (the link leads back to itself)"
        return "not found" if exc.errno in (errno.ENOENT, errno.ENOTDIR) else (exc.strerror or str(exc))
    return None if p.is_dir() else "is a file, not a folder"


def walk_folder(
    folder: str | os.PathLike[str], skipped: list[Skipped], exclude: Iterable[str | os.PathLike[str]] = ()
) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk(folder)`` that stays inside ``folder``: a linked sub-folder is entered only when it leads to a
    place inside ``folder`` that was not visited yet, never into ``exclude`` (an output folder); what is left out
    is added to ``skipped`` with the reason. Clip folders (``*.clip``, samples that prepared data links to) are
    passed on wherever they lead: callers list them, and do not descend into them. Edit the yielded ``dirnames`` in
    place to prune further, as with ``os.walk``."""
    root = Path(os.path.realpath(folder))
    banned = [Path(os.path.realpath(e)) for e in exclude]
    seen: set[str] = set()

    def unreadable(exc: OSError) -> None:  # os.walk would pass over a folder it cannot list without a word
        reason = "permission denied" if isinstance(exc, PermissionError) else (exc.strerror or str(exc))
        skipped.append(Skipped(Path(exc.filename), f"cannot read folder ({reason}): not scanned"))

    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True, onerror=unreadable):
        real = os.path.realpath(dirpath)
        if real in seen:
            skipped.append(Skipped(Path(dirpath), "symlink loop: folder already visited, not descended"))
            dirnames[:] = []
            continue
        seen.add(real)
        keep = []
        for name in sorted(dirnames):
            child = os.path.join(dirpath, name)
            target = Path(os.path.realpath(child))
            if any(is_within(target, b) for b in banned):
                skipped.append(Skipped(Path(child), "lies in the output folder: not scanned"))
            elif os.path.islink(child) and not is_within(target, root) and not name.lower().endswith(CLIP_SUFFIX):
                skipped.append(Skipped(Path(child), f"symlink to a folder outside {folder}: not followed"))
            else:
                keep.append(name)
        dirnames[:] = keep
        yield dirpath, dirnames, filenames
