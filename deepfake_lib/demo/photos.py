"""Photos shipped inside installed packages, random crops of them, and the demo's blended fakes (numpy in, numpy out)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageFilter

if TYPE_CHECKING:
    pass


ALL_PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right",
    "hubble_deep_field", "ihc", "retina", "china", "flower",
)  # fmt: skip


def photo_paths() -> dict[str, Path]:
    """Colour sample photos bundled with scikit-image and scikit-learn (no download)."""
    import skimage
    import sklearn.datasets

    sk = Path(skimage.__file__).parent / "data"
    sl = Path(sklearn.datasets.__file__).parent / "images"
    paths = {
        "astronaut": sk / "astronaut.png",
        "chelsea": sk / "chelsea.png",
        "coffee": sk / "coffee.png",
        "rocket": sk / "rocket.jpg",
        "motorcycle_left": sk / "motorcycle_left.png",
        "motorcycle_right": sk / "motorcycle_right.png",
        "hubble_deep_field": sk / "hubble_deep_field.jpg",
        "ihc": sk / "ihc.png",
        "retina": sk / "retina.jpg",
        "china": sl / "china.jpg",
        "flower": sl / "flower.jpg",
    }
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"demo source photos not found (reinstall scikit-image/scikit-learn): {missing}")
    return paths


def random_crop(photo: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random square crop (25-70% of the short side), resized to ``size``: ``[H, W, 3]`` uint8."""
    h, w = photo.shape[:2]
    side = int(min(h, w) * rng.uniform(0.25, 0.7))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = Image.fromarray(photo[y : y + side, x : x + side])
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(crop.resize((size, size), Image.Resampling.BICUBIC))


def blend_mask(size: int, rng: np.random.Generator, centre: tuple[float, float] | None = None) -> np.ndarray:
    """A soft blob mask in [0, 1], ``[H, W]``: a union of random ellipses, blurred; ``centre``: ``(y, x)`` as
    fractions of the side (default: random in 0.3-0.7)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    mask = np.zeros((size, size), dtype=np.float32)
    cy, cx = rng.uniform(0.3, 0.7, size=2) if centre is None else centre
    for _ in range(int(rng.integers(1, 4))):
        ey, ex = cy + rng.normal(0, 0.08), cx + rng.normal(0, 0.08)
        ry, rx = rng.uniform(0.15, 0.35, size=2)
        theta = rng.uniform(0, np.pi)
        dy, dx = yy - ey, xx - ex
        u = dx * np.cos(theta) + dy * np.sin(theta)
        v = -dx * np.sin(theta) + dy * np.cos(theta)
        mask = np.maximum(mask, ((u / rx) ** 2 + (v / ry) ** 2 <= 1.0).astype(np.float32))
    blurred = Image.fromarray((mask * 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(radius=float(rng.uniform(1.5, 6.0)) * size / 128)
    )
    return np.asarray(blurred, dtype=np.float32) / 255.0


def perturb(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour (channel gains, brightness, contrast) and geometry (scale, shift) perturbation of ``[H, W, 3]``."""
    size = img.shape[0]
    out = img.astype(np.float32)
    out = out * rng.uniform(0.85, 1.15, size=3) + rng.uniform(-20, 20)
    mean = out.mean()
    out = (out - mean) * rng.uniform(0.8, 1.2) + mean
    pil = Image.fromarray(out.clip(0, 255).astype(np.uint8))
    scale = rng.uniform(0.93, 1.07)
    new = max(8, int(round(size * scale)))
    pil = pil.resize((new, new), Image.Resampling.BILINEAR)
    pil = pil.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.8, 2.0)) * size / 128))
    canvas = Image.fromarray(img)
    shift = rng.integers(-3, 4, size=2)
    canvas.paste(pil, (int((size - new) // 2 + shift[0]), int((size - new) // 2 + shift[1])))
    return np.asarray(canvas, dtype=np.float32)


def blend_perturbed(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The demo's fake of ``img`` (``[H, W, 3]`` uint8 -> same): a perturbed copy of itself blended in through a
    soft random blob (``data.blend.self_blend`` is the face-shaped version used for training)."""
    source = perturb(img, rng)
    mask = blend_mask(img.shape[0], rng)[..., None] * rng.choice([0.5, 0.75, 1.0, 1.0])
    out = source * mask + img.astype(np.float32) * (1.0 - mask)
    return out.round().clip(0, 255).astype(np.uint8)
