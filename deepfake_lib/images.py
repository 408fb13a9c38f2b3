"""Robust image loading: any PIL mode to RGB, EXIF orientation, clear errors for broken files."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
LFS_POINTER_PREFIX = b"version https://git-lfs"
# PIL's default bomb limit (~89 Mpx warns, 2x errors). Make the warning an error: refuse, never decode.
MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageLoadError(Exception):
    """An image file that cannot be used; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


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


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode (1, L, LA, P, RGBA, I;16, I, F, CMYK, YCbCr...) to 8-bit RGB."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        arr8 = ((arr - lo) * scale).clip(0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def limit_aspect(img: Image.Image, max_aspect: float = 4.0) -> Image.Image:
    """Centre-crop the long side to at most ``max_aspect`` times the short side.

    Without it a 1 x 5000 strip resized to a short side of 224 would become a 224 x 1,120,000 image.
    """
    w, h = img.size
    short, long = min(w, h), max(w, h)
    limit = max(1, int(short * max_aspect))
    if long <= limit:
        return img
    if w > h:
        left = (w - limit) // 2
        return img.crop((left, 0, left + limit, h))
    top = (h - limit) // 2
    return img.crop((0, top, w, top + limit))


def resize_center_crop(img: Image.Image, size: int, max_aspect: float = 4.0) -> Image.Image:
    """The evaluation geometry without torch: ``limit_aspect``, resize the short side to ``size`` (bilinear,
    antialiased, as torchvision's ``Resize`` does on PIL images) and centre-crop ``size x size``."""
    img = limit_aspect(img, max_aspect)
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    if short != size:
        new_short, new_long = size, int(size * long / short)
        new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
        img = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
    w, h = img.size
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """Load an image file as RGB with EXIF orientation applied (first frame of animations).

    Raises ``ImageLoadError`` naming the file and the reason: missing, empty, Git LFS pointer,
    not an image, truncated/corrupt, or over PIL's decompression-bomb pixel limit.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise ImageLoadError(p, f"cannot read file ({exc.strerror or exc})") from None
    if not p.is_file():
        raise ImageLoadError(p, "not a regular file")
    if size == 0:
        raise ImageLoadError(p, "empty file (0 bytes)")
    if is_lfs_pointer(p):
        raise ImageLoadError(p, lfs_pointer_reason())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as img:
                if img.width * img.height > MAX_IMAGE_PIXELS:
                    raise Image.DecompressionBombError("too many pixels")
                if getattr(img, "n_frames", 1) > 1:
                    img.seek(0)
                img.load()
                img = ImageOps.exif_transpose(img) or img
                rgb = to_rgb(img)
                rgb.load()
                return rgb
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageLoadError(
            p, f"image too large: over the {MAX_IMAGE_PIXELS:,}-pixel decompression-bomb limit, refused"
        ) from None
    except UnidentifiedImageError:
        raise ImageLoadError(p, "not an image, or an image format PIL cannot read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageLoadError(p, f"truncated or corrupt image ({exc})") from None


def check_image(path: str | os.PathLike[str]) -> str | None:
    """Fully decode ``path``; return ``None`` when usable, else the reason it is not."""
    try:
        load_image(path)
    except ImageLoadError as exc:
        return exc.reason
    return None


def list_image_files(folder: Path) -> tuple[list[Path], list[Skipped]]:
    """All image files under ``folder`` (recursive, following symlinks once; loops are reported)."""
    files: list[Path] = []
    skipped: list[Skipped] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            skipped.append(Skipped(Path(dirpath), "symlink loop: folder already visited, not descended"))
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if name.startswith("."):
                continue
            if p.suffix.lower() in IMAGE_EXTENSIONS:
                files.append(p)
            elif not p.exists():
                skipped.append(Skipped(p, "broken symlink"))
    return files, skipped
