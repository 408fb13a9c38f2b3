"""A corpus of broken, odd and hostile image files, with what the workbench must make of each."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a2146\nsize 48213\n"


def _png_with_declared_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width x height`` pixels (a decompression bomb's calling card)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")
    )


def _photo(size: tuple[int, int] = (48, 32), seed: int = 0) -> Image.Image:
    arr = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(arr)


# unusable file -> a fragment of the reason it must be reported with
BAD_FILES = {
    "zero_bytes.jpg": "empty file",
    "truncated.jpg": "truncated or corrupt",
    "random_bytes.png": "not an image",
    "a_text_file.jpg": "not an image",
    "lfs_pointer.jpg": "git lfs pull",
    "bomb.png": "decompression-bomb",
}


def write_bad(folder: Path) -> dict[str, str]:
    """Unusable files -> a fragment of the reason each must be reported with."""
    folder.mkdir(parents=True, exist_ok=True)
    good = io.BytesIO()
    _photo((64, 64)).save(good, format="JPEG", quality=90)
    (folder / "zero_bytes.jpg").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    (folder / "random_bytes.png").write_bytes(np.random.default_rng(1).bytes(512))
    (folder / "a_text_file.jpg").write_text("this is not an image\n")
    (folder / "lfs_pointer.jpg").write_text(LFS_POINTER)
    (folder / "bomb.png").write_bytes(_png_with_declared_size(60_000, 60_000))
    return dict(BAD_FILES)


def write_odd_but_good(folder: Path) -> list[str]:
    """Files that look odd but must load (as RGB, orientation applied, first frame)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for mode in ("1", "L", "LA", "P", "RGBA", "I;16"):
        name = f"mode_{mode.replace(';', '_')}.png"
        _photo().convert("L" if mode == "I;16" else "RGB").convert(mode).save(folder / name)
        names.append(name)
    _photo().convert("CMYK").save(folder / "mode_CMYK.jpg")
    _photo((1, 1)).save(folder / "one_pixel.png")
    _photo((3, 400)).save(folder / "very_thin.png")
    exif = Image.Exif()
    exif[0x0112] = 8  # rotated 90 degrees on display
    _photo((40, 20)).save(folder / "exif_rotated.jpg", exif=exif)
    frames = [_photo(seed=i) for i in range(3)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:])
    frames[0].save(folder / "animated.webp", save_all=True, append_images=frames[1:])
    _photo().save(folder / "fälschung bild ü 図.png")
    names += ["mode_CMYK.jpg", "one_pixel.png", "very_thin.png", "exif_rotated.jpg", "animated.gif", "animated.webp"]
    names.append("fälschung bild ü 図.png")
    return names


def add_symlink_loop(folder: Path) -> None:
    os.symlink(folder, folder / "loop")
