"""Robust image loading: any PIL mode to RGB, EXIF orientation, clear errors for broken files; clip folders.

A clip folder (``<name>.clip/``, made from a video by ``deepfake_lib.data.clips``) holds the T frames of one clip as
``00.png, 01.png, ...`` plus ``clip.json``; the data layer treats it as one sample of length T, and views that
show one picture per sample get its middle frame from ``load_image``.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from deepfake_lib.core.files import (
    CLIP_SUFFIX,
    IMAGE_EXTENSIONS,
    Skipped,
    is_clip_dir,
    is_lfs_pointer,
    is_video_file,
    lfs_pointer_reason,
    walk_folder,
)

# PIL's default bomb limit (~89 Mpx warns, 2x errors). Make the warning an error: refuse, never decode.
MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
VIDEO_WAY_IN = "notebook 01, or python -m deepfake_lib.cli.prepare DATA_DIR --out ROOT"
VIDEO_HINT = f"a video file: cut it into clips first ({VIDEO_WAY_IN})"
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageLoadError(Exception):
    """An image file that cannot be used; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


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
    """Load an image file as RGB with EXIF orientation applied (first frame of animations); for a clip folder,
    its middle frame.

    Raises ``ImageLoadError`` naming the file and the reason: missing, empty, Git LFS pointer,
    not an image, truncated/corrupt, or over PIL's decompression-bomb pixel limit.
    """
    p = Path(path)
    if is_clip_dir(p):
        frames = clip_frame_files(p)
        if not frames:
            raise ImageLoadError(p, "clip folder without frames")
        return load_image(frames[len(frames) // 2])
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
    except PermissionError:
        raise ImageLoadError(p, "cannot read file (permission denied)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageLoadError(p, f"truncated or corrupt image ({exc})") from None


def check_image(path: str | os.PathLike[str]) -> str | None:
    """Fully decode ``path`` (every frame of a clip folder); return ``None`` when usable, else the reason it is
    not."""
    try:
        load_clip(path) if is_clip_dir(path) else load_image(path)
    except ImageLoadError as exc:
        return exc.reason
    return None


def list_image_files(folder: Path, exclude: Iterable[Path] = ()) -> tuple[list[Path], list[Skipped]]:
    """All image files under ``folder`` (recursive; links are followed only inside ``folder``, never into
    ``exclude``, and loops are reported, see ``files.walk_folder``); clip folders are not entered (see
    ``list_samples``)."""
    files, _, _, skipped = _walk(folder, exclude)
    return files, skipped


def list_samples(folder: Path, videos: bool = False) -> tuple[list[Path], list[Skipped]]:
    """The samples under ``folder``: image files and clip folders, sorted by path. Video files are included
    with ``videos=True`` (a step that handles them whole, like splitting), else listed as skipped with a hint
    to cut them into clips."""
    files, clips, found_videos, skipped = _walk(folder)
    if videos:
        return sorted([*files, *clips, *found_videos]), skipped
    return sorted([*files, *clips]), skipped + [Skipped(v, VIDEO_HINT) for v in found_videos]


def _walk(folder: Path, exclude: Iterable[Path] = ()) -> tuple[list[Path], list[Path], list[Path], list[Skipped]]:
    """Images, clip folders, video files and skipped entries under ``folder``."""
    files: list[Path] = []
    clips: list[Path] = []
    videos: list[Path] = []
    skipped: list[Skipped] = []
    for dirpath, dirnames, filenames in walk_folder(folder, skipped, exclude):
        clips += [Path(dirpath) / d for d in dirnames if d.lower().endswith(CLIP_SUFFIX) and not d.startswith(".")]
        dirnames[:] = [d for d in dirnames if not d.lower().endswith(CLIP_SUFFIX)]
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if name.startswith("."):
                continue
            if not p.exists():
                skipped.append(Skipped(p, "broken symlink"))
            elif p.suffix.lower() in IMAGE_EXTENSIONS:
                files.append(p)
            elif is_video_file(p):
                videos.append(p)
    return files, clips, videos, skipped


def clip_frame_files(path: str | os.PathLike[str]) -> list[Path]:
    """The frame files of a clip folder in time order (by name, numbers compared as numbers: 2.png before 10.png)."""
    p = Path(path)
    frames = [c for c in p.iterdir() if c.suffix.lower() in IMAGE_EXTENSIONS and not c.name.startswith(".")]
    return sorted(frames, key=lambda c: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", c.name)])


def sample_length(path: str | os.PathLike[str]) -> int:
    """Frames in a sample: 1 for an image file, the number of frame files for a clip folder."""
    return len(clip_frame_files(path)) if is_clip_dir(path) else 1


def load_clip(path: str | os.PathLike[str]) -> list[Image.Image]:
    """The frames of a clip folder as RGB images of one size; ``ImageLoadError`` naming the folder otherwise."""
    p = Path(path)
    try:
        files = clip_frame_files(p)
    except OSError as exc:
        raise ImageLoadError(p, f"cannot read clip folder ({exc.strerror or exc})") from None
    if not files:
        raise ImageLoadError(p, "clip folder without frames")
    frames = []
    for f in files:
        try:
            frames.append(load_image(f))
        except ImageLoadError as exc:
            raise ImageLoadError(p, f"frame {f.name}: {exc.reason}") from None
    sizes = {im.size for im in frames}
    if len(sizes) > 1:
        raise ImageLoadError(p, f"frames of different sizes {sorted(sizes)}; a clip's frames must match")
    return frames
