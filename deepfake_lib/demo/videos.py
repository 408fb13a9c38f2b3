"""Demo videos: a "camera" moving smoothly over a bundled photo, and self-blended fakes that flicker and drift.

Real videos pan and zoom a square window over a photo along a smooth random path (for skimage's astronaut the
window always holds the face, so a face detector can track it). Fake videos take the same kind of clip and blend
a perturbed copy of each frame back into it through a soft mask, like the demo's image fakes, but with the
temporal inconsistency that frame-by-frame detectors miss: the blend strength flickers from frame to frame and
the mask changes shape and drifts over time. Deterministic for a seed and fully offline; NOT a benchmark.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from deepfake_lib.core.video import write_video
from deepfake_lib.demo.photos import blend_mask, perturb, photo_paths

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in photo pixels

# The face of skimage's 512x512 astronaut, and the face with hair and margin that every camera window holds.
ASTRONAUT_FACE_BOX: Box = (165.0, 60.0, 270.0, 200.0)
ASTRONAUT_KEEP_BOX: Box = (155.0, 25.0, 280.0, 215.0)
VIDEO_STREAM = 0x5649  # rng stream tag: demo videos never share random numbers with the demo images


@dataclass(frozen=True)
class VideoDemoSpec:
    """How many videos per split and class, frames per video, frame rate, frame side in pixels, and the seed
    (``None``: the image demo's seed inside ``build_demo_dataset``, 0 when built alone)."""

    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {
            "train": {"real": 8, "fake": 8},
            "val": {"real": 4, "fake": 4},
            "test": {"real": 4, "fake": 4},
        }
    )
    n_frames: int = 24
    fps: float = 8.0
    size: int = 128
    seed: int | None = None


@functools.cache
def _astronaut() -> np.ndarray | None:
    try:
        return np.asarray(Image.open(photo_paths()["astronaut"]).convert("RGB"))
    except FileNotFoundError:
        return None


def _keep_box(photo: np.ndarray, keep: Box | Literal["auto"] | None) -> Box | None:
    """``keep``, or for ``"auto"`` ``ASTRONAUT_KEEP_BOX`` when ``photo`` is skimage's astronaut, else none."""
    if keep != "auto":
        return keep
    if photo.shape != (512, 512, 3):
        return None
    astronaut = _astronaut()
    return ASTRONAUT_KEEP_BOX if astronaut is not None and np.array_equal(photo, astronaut) else None


def _wave(n: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth signal in [-1, 1], ``[n]``: two sinusoids with periods of 20-80 frames and random phases."""
    t = np.arange(n, dtype=np.float64)
    freq = rng.uniform(1 / 80, 1 / 20, size=(2, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(2, 1))
    weight = rng.uniform(0.3, 1.0, size=(2, 1))
    return (weight / weight.sum() * np.sin(2 * np.pi * freq * t + phase)).sum(axis=0)


def camera_path(
    height: int, width: int, n_frames: int, rng: np.random.Generator, keep: Box | None = None
) -> np.ndarray:
    """Square windows ``[n_frames, 4]`` (x1, y1, x2, y2, float photo pixels) along a smooth random path inside a
    ``height x width`` photo: the centre wanders by 5-10% of the side, the side zooms by 4-10%. Every window
    contains ``keep`` when given (then the side is 1.3-1.8x the box's longer side)."""
    short = float(min(height, width))
    if keep is not None:
        need = max(keep[2] - keep[0], keep[3] - keep[1])
        side_lo, side0 = min(short, 1.15 * need), min(short, need * rng.uniform(1.3, 1.8))
    else:
        side_lo, side0 = 0.2 * short, short * rng.uniform(0.3, 0.6)
    side = np.clip(side0 * (1 + rng.uniform(0.04, 0.1) * _wave(n_frames, rng)), side_lo, short)

    def centre_range(half: np.ndarray, extent: int, k: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray]:
        """Where a window's centre may be along one axis: inside the photo, and around ``k`` (x1, x2) if given."""
        lo, hi = half, extent - half
        if k is not None:
            lo, hi = np.maximum(lo, k[1] - half), np.minimum(hi, k[0] + half)
        return lo, np.maximum(lo, hi)

    axes = [(width, None), (height, None)] if keep is None else [(width, keep[0::2]), (height, keep[1::2])]
    centres = []
    for extent, k in axes:
        lo0, hi0 = centre_range(np.asarray(side0 / 2), extent, k)
        start = lo0 + rng.uniform(0.25, 0.75) * (hi0 - lo0)
        lo, hi = centre_range(side / 2, extent, k)
        centres.append(np.clip(start + side0 * rng.uniform(0.05, 0.1) * _wave(n_frames, rng), lo, hi))
    cx, cy = centres
    boxes = np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1)
    return np.clip(boxes, 0.0, [width, height, width, height])  # rounding never leaves the photo


def render_path(photo: np.ndarray, boxes: np.ndarray, size: int) -> list[np.ndarray]:
    """The windows ``boxes`` ``[T, 4]`` of ``photo`` ``[H, W, 3]`` uint8, each resized (antialiased, sub-pixel) to
    ``[size, size, 3]`` uint8."""
    pil = Image.fromarray(photo)
    return [
        np.asarray(pil.resize((size, size), Image.Resampling.BICUBIC, box=tuple(float(v) for v in b))) for b in boxes
    ]


def real_video(
    photo: np.ndarray, n_frames: int, size: int, rng: np.random.Generator, keep: Box | Literal["auto"] | None = "auto"
) -> list[np.ndarray]:
    """A camera moving smoothly over ``photo`` ``[H, W, 3]`` uint8: ``[n_frames]`` of ``[size, size, 3]`` uint8.

    ``keep``: a box (x1, y1, x2, y2) every window contains; ``"auto"``: the face (``ASTRONAUT_KEEP_BOX``) for
    skimage's astronaut, else none."""
    boxes = camera_path(photo.shape[0], photo.shape[1], n_frames, rng, _keep_box(photo, keep))
    return render_path(photo, boxes, size)


def drifting_masks(size: int, n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Soft blend masks ``[n_frames, size, size]`` float32 in [0, 1] that change shape and drift: a fresh
    ``blend_mask`` (around a slowly wandering centre) every 6-10 frames, linearly interpolated between, and
    shifted along a random walk of about 0.6 px (at 128 px) per frame."""
    every = int(rng.integers(6, 11))
    centre = rng.uniform(0.3, 0.7, size=2)
    keys = []
    for _ in range((n_frames - 1) // every + 2):
        keys.append(blend_mask(size, rng, centre=(float(centre[0]), float(centre[1]))))
        centre = np.clip(centre + rng.normal(0, 0.03, size=2), 0.25, 0.75)
    offsets = np.cumsum(rng.normal(0, 0.6 * size / 128, size=(n_frames, 2)), axis=0)
    masks = np.empty((n_frames, size, size), dtype=np.float32)
    for t in range(n_frames):
        k, w = divmod(t, every)
        mix = keys[k] * (1 - w / every) + keys[k + 1] * (w / every)
        dx, dy = offsets[t]
        shifted = Image.fromarray(mix.astype(np.float32)).transform(
            (size, size), Image.Transform.AFFINE, (1, 0, -float(dx), 0, 1, -float(dy)), Image.Resampling.BILINEAR
        )
        masks[t] = np.clip(np.asarray(shifted, dtype=np.float32), 0.0, 1.0)
    return masks


def fake_video_pair(
    photo: np.ndarray, n_frames: int, size: int, rng: np.random.Generator, keep: Box | Literal["auto"] | None = "auto"
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``(fake, clean)``: ``fake_video``'s frames and the camera frames it blended into, each ``[n_frames]`` of
    ``[size, size, 3]`` uint8."""
    clean = real_video(photo, n_frames, size, rng, keep)
    perturb_seed = int(rng.integers(2**63))  # the same colour/geometry perturbation in every frame
    strength = float(rng.choice([0.5, 0.75, 1.0, 1.0]))  # as the image fakes
    alphas = strength * (1 - rng.uniform(0.3, 0.6) * rng.random(n_frames))  # flicker: independent per frame
    masks = drifting_masks(size, n_frames, rng)
    fake = []
    for frame, mask, alpha in zip(clean, masks, alphas, strict=True):
        source = perturb(frame, np.random.default_rng(perturb_seed))
        m = mask[..., None] * alpha
        fake.append((source * m + frame.astype(np.float32) * (1 - m)).round().clip(0, 255).astype(np.uint8))
    return fake, clean


def fake_video(
    photo: np.ndarray, n_frames: int, size: int, rng: np.random.Generator, keep: Box | Literal["auto"] | None = "auto"
) -> list[np.ndarray]:
    """A self-blended fake video: ``[n_frames]`` of ``[size, size, 3]`` uint8.

    The camera moves as in ``real_video``; into each frame a ``perturb``ed copy of it (one colour/geometry
    perturbation for the whole clip) is blended through a soft mask, as in the demo's image fakes and no
    stronger in any one frame. The artefact is temporal: the blend strength flickers independently from frame
    to frame (between 40% and 100% of the clip's strength), and the mask re-forms every 6-10 frames
    (interpolated between key masks) and drifts against the content by sub-pixel steps. Each frame on its own
    looks like an ordinary self-blended image; only the frame-to-frame changes give the video away.
    """
    return fake_video_pair(photo, n_frames, size, rng, keep)[0]


def video_photo_order(names: list[str], n: int) -> list[str]:
    """Which photo each of ``n`` videos films: the astronaut every other video (first), the others cycled."""
    others = [name for name in names if name != "astronaut"]
    if "astronaut" not in names or not others:
        return [names[i % len(names)] for i in range(n)]
    return ["astronaut" if i % 2 == 0 else others[(i // 2) % len(others)] for i in range(n)]


def build_demo_videos(
    out_dir: str | os.PathLike[str],
    spec: VideoDemoSpec | None = None,
    photos: dict[str, np.ndarray] | None = None,
    progress: bool = True,
) -> list[Path]:
    """Write ``out_dir/<split>/<label>/<label>_video_<i:03d>.mp4`` (``photos``: name -> ``[H, W, 3]`` uint8,
    default the bundled ones) and return the paths written; deterministic for ``spec.seed``."""
    spec = spec or VideoDemoSpec()
    out = Path(out_dir)
    seed = 0 if spec.seed is None else spec.seed
    if photos is None:
        photos = {name: np.asarray(Image.open(p).convert("RGB")) for name, p in photo_paths().items()}
    names = list(photos)
    written: list[Path] = []
    total = sum(sum(c.values()) for c in spec.counts.values())
    with tqdm(total=total, desc="building demo videos", disable=not progress) as bar:
        for split_index, (split, counts) in enumerate(spec.counts.items()):
            for label_index, (label, n) in enumerate(counts.items()):
                folder = out / split / label
                folder.mkdir(parents=True, exist_ok=True)
                rng = np.random.default_rng([seed, split_index, label_index, VIDEO_STREAM])
                make = fake_video if label == "fake" else real_video
                for i, name in enumerate(video_photo_order(names, n)):
                    keep = ASTRONAUT_KEEP_BOX if name == "astronaut" and photos[name].shape[:2] == (512, 512) else None
                    frames = make(photos[name], spec.n_frames, spec.size, rng, keep)
                    written.append(write_video(folder / f"{label}_video_{i:03d}.mp4", frames, spec.fps))
                    bar.update()
    return written
