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
from PIL import Image
from tqdm.auto import tqdm

from deepfake_lib.core.runs import read_json, write_json
from deepfake_lib.demo.photos import ALL_PHOTOS, blend_perturbed, photo_paths, random_crop

if TYPE_CHECKING:
    from deepfake_lib.demo.videos import VideoDemoSpec

MANIFEST = "demo_manifest.json"
DEMO_VERSION = 2  # 2: videos beside the images


def _default_videos() -> VideoDemoSpec:
    from deepfake_lib.demo.videos import VideoDemoSpec  # imported on first use: videos are optional

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
                    img = blend_perturbed(crop, rng) if label == "fake" else crop
                    Image.fromarray(img).save(folder / f"{label}_{i:04d}.jpg", quality=spec.jpeg_quality)
                    bar.update()
    if spec.videos is not None:
        from deepfake_lib.demo.videos import build_demo_videos

        videos = spec.videos if spec.videos.seed is not None else replace(spec.videos, seed=spec.seed)
        build_demo_videos(out, videos, photos=photos, progress=progress)
    write_json(out / MANIFEST, manifest)
    return out
