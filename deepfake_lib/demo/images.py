"""Built-in demo dataset: crops of photos shipped inside installed packages, and self-blended fakes.

"Fake" images follow the Self-Blended Images idea: a colour- and geometry-perturbed copy of an image is
blended back into it through a soft random mask, leaving the blending boundary and statistics mismatch
that deepfake detectors learn to find. Beside the images go short videos (``demo_video``: a camera moving over
a photo; fakes with a flickering, drifting self-blend). Deterministic for a seed and fully offline. It exercises
the workflow; it is NOT a deepfake benchmark.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from deepfake_lib import CLASS_NAMES
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
    The manifest (``demo_manifest.json``) is the builder's marker and lists the files it wrote: a rebuild removes
    only those, so files a user put beside them survive, and a non-empty folder without the marker is refused,
    with ``force`` too (``FileExistsError``): it is somebody's data.
    """
    spec = spec or DemoSpec()
    out = Path(out_dir)
    manifest = {"demo_version": DEMO_VERSION, **asdict(spec)}
    old = _read_manifest(out)
    if not force and old is not None and {k: v for k, v in old.items() if k != "files"} == manifest:
        return out
    if out.exists() and any(out.iterdir()) and old is None:
        raise FileExistsError(
            f"{out} exists and is not a demo dataset (no {MANIFEST}, the demo builder's marker); refusing to write "
            "into it, with --force too: choose another folder"
        )
    if old is not None:
        _remove_built(out, old)
    out.mkdir(parents=True, exist_ok=True)  # the marker first: an interrupted build is still the builder's,
    write_json(out / MANIFEST, {**manifest, "incomplete": True})  # and matches no spec, so the next run rebuilds
    photos = {name: np.asarray(Image.open(p).convert("RGB")) for name, p in photo_paths().items()}
    written: list[Path] = []
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
                    written.append(folder / f"{label}_{i:04d}.jpg")
                    Image.fromarray(img).save(written[-1], quality=spec.jpeg_quality)
                    bar.update()
    if spec.videos is not None:
        from deepfake_lib.demo.videos import build_demo_videos

        videos = spec.videos if spec.videos.seed is not None else replace(spec.videos, seed=spec.seed)
        written += build_demo_videos(out, videos, photos=photos, progress=progress)
    files = sorted(p.relative_to(out).as_posix() for p in written)
    write_json(out / MANIFEST, {**manifest, "files": files})
    return out


def _read_manifest(out: Path) -> dict[str, Any] | None:
    """The builder's marker in ``out`` (None when absent or not the builder's JSON object)."""
    try:
        found = read_json(out / MANIFEST)
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and "demo_version" in found else None


# what the builder names its files; a manifest written before it listed them is cleaned by these names
_BUILT_NAME = re.compile(r"^(real|fake)_(\d{4}\.jpg|video_\d{3}\.mp4)$")


def _remove_built(out: Path, manifest: dict[str, Any]) -> None:
    """Remove the files an earlier build wrote (its manifest's ``files``; older manifests: the builder's names in
    its split/class folders), then the folders left empty. Nothing else under ``out`` is touched."""
    listed = manifest.get("files")
    if isinstance(listed, list):
        targets = [
            out / f for f in listed if isinstance(f, str) and ".." not in Path(f).parts and not Path(f).is_absolute()
        ]
    else:
        splits = [s for s in (manifest.get("counts") or {}) if isinstance(s, str)] or ["train", "val", "test"]
        targets = [
            f for s in splits for label in CLASS_NAMES if (out / s / label).is_dir()
            for f in (out / s / label).iterdir() if _BUILT_NAME.match(f.name)
        ]  # fmt: skip
    for f in targets:
        if f.is_file() and not f.is_symlink():
            f.unlink()
    for folder in sorted({f.parent for f in targets} | {f.parent.parent for f in targets}, reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when empty
