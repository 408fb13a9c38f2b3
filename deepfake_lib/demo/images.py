"""Built-in demo dataset: crops of photos shipped inside installed packages, and self-blended fakes.

"Fake" images follow the Self-Blended Images idea: a colour- and geometry-perturbed copy of an image is
blended back into it through a soft random mask, leaving the blending boundary and statistics mismatch
that deepfake detectors learn to find. Beside the images go short videos (``demo_video``: a camera moving over
a photo; fakes with a flickering, drifting self-blend). Deterministic for a seed and fully offline. It exercises
the workflow; it is NOT a deepfake benchmark.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageFilter
from tqdm.auto import tqdm

from deepfake_lib.core.runs import read_json, write_json

if TYPE_CHECKING:
    from deepfake_lib.demo.videos import VideoDemoSpec

MANIFEST = "demo_manifest.json"
DEMO_VERSION = 2  # 2: videos beside the images

ALL_PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right",
    "hubble_deep_field", "ihc", "retina", "china", "flower",
)  # fmt: skip


def _default_videos() -> VideoDemoSpec:
    from deepfake_lib.demo.videos import VideoDemoSpec  # demo_video imports this module

    return VideoDemoSpec()


@dataclass(frozen=True)
class DemoSpec:
    """How many images per split and class (about 3 real : 1 fake), their size, and the seed; ``videos``: the
    demo videos written beside them (``None``: no videos)."""

    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {
            "train": {"real": 150, "fake": 50},
            "val": {"real": 45, "fake": 15},
            "test": {"real": 45, "fake": 15},
        }
    )
    size: int = 128
    seed: int = 0
    jpeg_quality: int = 92
    videos: VideoDemoSpec | None = field(default_factory=_default_videos)


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


def self_blend(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A self-blended pseudo-fake of ``img`` (``[H, W, 3]`` uint8 -> same)."""
    source = perturb(img, rng)
    mask = blend_mask(img.shape[0], rng)[..., None] * rng.choice([0.5, 0.75, 1.0, 1.0])
    out = source * mask + img.astype(np.float32) * (1.0 - mask)
    return out.round().clip(0, 255).astype(np.uint8)


def build_demo_dataset(
    out_dir: str | os.PathLike[str], spec: DemoSpec | None = None, force: bool = False, progress: bool = True
) -> Path:
    """Write the demo dataset to ``out_dir/{train,val,test}/{real,fake}/*.jpg`` (and ``*.mp4`` videos, see
    ``spec.videos``) and return ``out_dir``.

    Skips the work when a matching manifest is already there (unless ``force``); ``progress``: progress bars.
    """
    spec = spec or DemoSpec()
    out = Path(out_dir)
    manifest = {"demo_version": DEMO_VERSION, **asdict(spec)}
    if not force and read_json(out / MANIFEST) == manifest:
        return out
    if out.exists() and any(out.iterdir()) and read_json(out / MANIFEST) is None and not force:
        raise FileExistsError(f"{out} exists and is not a demo dataset; refusing to overwrite it")
    for split in {**spec.counts, **(spec.videos.counts if spec.videos else {})}:
        shutil.rmtree(out / split, ignore_errors=True)
    photos = {name: np.asarray(Image.open(p).convert("RGB")) for name, p in photo_paths().items()}
    total = sum(sum(c.values()) for c in spec.counts.values())
    with tqdm(total=total, desc="building demo data", disable=not progress) as bar:
        for split_index, (split, counts) in enumerate(spec.counts.items()):
            names = ALL_PHOTOS
            for label_index, (label, n) in enumerate(counts.items()):
                folder = out / split / label
                folder.mkdir(parents=True, exist_ok=True)
                rng = np.random.default_rng([spec.seed, split_index, label_index])
                for i in range(n):
                    crop = random_crop(photos[names[i % len(names)]], spec.size, rng)
                    img = self_blend(crop, rng) if label == "fake" else crop
                    Image.fromarray(img).save(folder / f"{label}_{i:04d}.jpg", quality=spec.jpeg_quality)
                    bar.update()
    if spec.videos is not None:
        from deepfake_lib.demo.videos import build_demo_videos

        videos = spec.videos if spec.videos.seed is not None else replace(spec.videos, seed=spec.seed)
        build_demo_videos(out, videos, photos=photos, progress=progress)
    write_json(out / MANIFEST, manifest)
    return out


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Build the offline demo dataset.")
    parser.add_argument("--out", default="data/demo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--no-videos", action="store_true", help="images only, no demo videos")
    args = parser.parse_args()
    spec = DemoSpec(seed=args.seed, videos=None) if args.no_videos else DemoSpec(seed=args.seed)
    path = build_demo_dataset(args.out, spec, force=args.force)
    print(f"demo data in {path}")


if __name__ == "__main__":
    main()
