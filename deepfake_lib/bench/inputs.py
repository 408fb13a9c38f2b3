"""The benchmark's synthetic inputs: photo-like JPEG folders, demo videos, and the camera-footage sizes of rows (v)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

FOOTAGE = {480: (854, 480), 720: (1280, 720), 1080: (1920, 1080)}  # rows (v-480p) ... (v-1080p)


def write_jpegs(folder: Path, n: int, size: int, seed: int = 0) -> list[Path]:
    """``n`` random photo-like JPEGs (``size`` px plus a margin, so the resize is real work)."""
    rng = np.random.default_rng(seed)
    side = int(size * 1.15)
    base = rng.integers(0, 256, (side // 8, side // 8, 3), dtype=np.uint8)
    paths = []
    for i in range(n):
        img = Image.fromarray(np.roll(base, i, axis=0)).resize((side, side), Image.Resampling.BICUBIC)
        noise = rng.integers(-12, 13, (side, side, 3))
        img = Image.fromarray(np.clip(np.asarray(img, dtype=np.int16) + noise, 0, 255).astype(np.uint8))
        path = folder / f"img_{i:04d}.jpg"
        img.save(path, quality=90)
        paths.append(path)
    return paths


def write_videos(folder: Path, n: int, size: int = 256, n_frames: int = 48, seed: int = 0) -> list[Path]:
    """``n`` mp4 videos of a camera moving over the astronaut photo's face (``demo_video.real_video``)."""
    from deepfake_lib.core.video import write_video
    from deepfake_lib.demo.photos import photo_paths
    from deepfake_lib.demo.videos import real_video

    photo = np.asarray(Image.open(photo_paths()["astronaut"]).convert("RGB"))
    rng = np.random.default_rng(seed)
    return [write_video(folder / f"video_{i}.mp4", real_video(photo, n_frames, size, rng), fps=24.0) for i in range(n)]
