"""Self-blended pseudo-fakes: a real face blended with an altered copy of itself through a face-shaped mask.

The idea of Self-Blended Images (Shiohara and Yamasaki, CVPR 2022): a detector that learns to see blending
boundaries and the statistical mismatch between a pasted region and its surroundings, rather than the quirks of
one generator, transfers better to forgeries it never saw. ``self_blend`` makes one such pseudo-fake:

1. **source and target**: two versions of the same face. One of them (at random) gets a colour change (channel
   shifts, saturation and hue, brightness and contrast) and a sharpness change (down-and-up resampling, blur or
   sharpening); the source is also scaled and shifted by a few percent.
2. **mask**: an oval over a face region (whole face, eyes to mouth, eyes, or nose and mouth) laid out from the
   face's five landmarks (eyes, nose tip, mouth corners; MTCNN's points), its outline deformed at random,
   eroded, blurred and multiplied by a random blend ratio.
3. **blend**: ``fake = mask * source + (1 - mask) * target``, so the fake differs from the target only where
   the mask is above zero.

Everything is numpy / PIL / OpenCV on one image; all randomness comes from the ``numpy.random.Generator`` given,
so a seed fixes the pseudo-fake.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
# The mean MTCNN landmarks of square face crops at margin 1.3 (the face step's default), as fractions of the
# crop's width and height, made left-right symmetric: measured on 64 crops of real_and_fake_face. Used for an
# image where no face is found (the crop is then assumed centred on a face).
TEMPLATE = np.array([[0.36, 0.44], [0.64, 0.44], [0.50, 0.60], [0.38, 0.75], [0.62, 0.75]], dtype=np.float64)
BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)
# region: (probability, centre along the eyes->mouth axis in eye-mouth distances, half-height range in eye-mouth
# distances, half-width range in eye distances)
REGIONS: dict[str, tuple[float, float, tuple[float, float], tuple[float, float]]] = {
    "face": (0.4, 0.45, (1.05, 1.35), (0.95, 1.20)),
    "inner": (0.3, 0.50, (0.75, 0.95), (0.75, 0.95)),
    "eyes": (0.15, 0.15, (0.45, 0.60), (0.85, 1.05)),
    "mouth": (0.15, 0.85, (0.45, 0.60), (0.70, 0.90)),
}


@dataclass(frozen=True)
class PseudoFake:
    """One self-blended image and how it was made.

    ``image``: the pseudo-fake ``[H, W, 3]`` uint8; ``target``: the version of the real face it was blended into
    (``[H, W, 3]`` uint8; the input itself when the alteration went to the source), which ``image`` equals
    wherever ``mask`` is 0; ``mask``: ``[H, W]`` float32 in [0, 1], the source's weight; ``region``: which face
    region the mask covers; ``ratio``: the blend ratio (the mask's maximum); ``altered``: "source" or "target".
    """

    image: np.ndarray
    target: np.ndarray
    mask: np.ndarray
    region: str
    ratio: float
    altered: str


def as_rgb_array(image: Any) -> np.ndarray:
    """A PIL image of any mode or an array ``[H, W]``, ``[H, W, 1]``, ``[H, W, 3]`` or ``[H, W, 4]`` ->
    ``[H, W, 3]`` uint8 (grey repeated, alpha dropped)."""
    if isinstance(image, Image.Image):
        from deepfake_lib.core.images import to_rgb

        return np.asarray(to_rgb(image), dtype=np.uint8)
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or min(arr.shape[:2]) < 1:
        raise ValueError(f"expected an image [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr[..., :3])


def template_landmarks(width: int, height: int, fractions: np.ndarray | None = None) -> np.ndarray:
    """Five landmarks ``[5, 2]`` (x, y pixels) for a centred face crop of ``width x height`` (``TEMPLATE``, or
    the ``fractions`` given)."""
    f = TEMPLATE if fractions is None else np.asarray(fractions, dtype=np.float64)
    return f * np.array([width, height], dtype=np.float64)


def face_axes(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """From five landmarks ``[5, 2]``: the eyes' midpoint, the unit vector down the face (eyes -> mouth), the unit
    vector across it, the eye-to-mouth distance and the eye distance (each at least 1 pixel)."""
    p = np.asarray(points, dtype=np.float64).reshape(5, 2)
    eyes, mouth = (p[0] + p[1]) / 2, (p[3] + p[4]) / 2
    down = mouth - eyes
    eye_mouth = float(np.hypot(*down))
    eye_dist = float(np.hypot(*(p[1] - p[0])))
    down = down / eye_mouth if eye_mouth >= 1e-6 else np.array([0.0, 1.0])
    across = np.array([-down[1], down[0]])  # image x for an upright face (y grows downwards)
    return eyes, down, across, max(eye_mouth, 1.0), max(eye_dist, 1.0)


def face_size(points: np.ndarray) -> float:
    """The scale of a face in pixels: the larger of its eye-to-mouth and eye distances."""
    _, _, _, eye_mouth, eye_dist = face_axes(points)
    return max(eye_mouth, eye_dist)


def hull_mask(
    points: np.ndarray, shape: tuple[int, int], rng: np.random.Generator, region: str | None = None
) -> tuple[np.ndarray, str]:
    """A binary mask ``[H, W]`` float32 (1 inside) over one face region, and the region's name.

    The region (``REGIONS``; drawn at random unless given) is an oval on the face's own axes, so it follows a
    tilted face. Its outline is deformed by a few random low-frequency waves (up to about 20% of its radius), so
    no two masks have the same shape. Never empty: a face smaller than a pixel still gets one pixel.
    """
    names = list(REGIONS)
    if region is None:
        probs = np.array([REGIONS[n][0] for n in names])
        region = names[int(rng.choice(len(names), p=probs / probs.sum()))]
    elif region not in REGIONS:
        raise ValueError(f"region must be one of {', '.join(names)}, got {region!r}")
    _, centre_at, half_h, half_w = REGIONS[region]
    eyes, down, across, eye_mouth, eye_dist = face_axes(points)
    centre = eyes + down * eye_mouth * centre_at
    ry = eye_mouth * rng.uniform(*half_h)
    rx = eye_dist * rng.uniform(*half_w)
    theta = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    radius = np.ones_like(theta)
    for k in (2, 3, 4):
        radius += rng.uniform(-0.07, 0.07) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    xs = centre[0] + radius * (rx * np.cos(theta) * across[0] + ry * np.sin(theta) * down[0])
    ys = centre[1] + radius * (rx * np.cos(theta) * across[1] + ry * np.sin(theta) * down[1])
    h, w = shape
    canvas = Image.new("L", (w, h), 0)
    ImageDraw.Draw(canvas).polygon([(float(x), float(y)) for x, y in zip(xs, ys, strict=True)], fill=255)
    mask = np.asarray(canvas, dtype=np.float32) / 255.0
    if not mask.any():
        cy, cx = int(np.clip(round(centre[1]), 0, h - 1)), int(np.clip(round(centre[0]), 0, w - 1))
        mask[cy, cx] = 1.0
    return mask, region


def soften_mask(mask: np.ndarray, size: float, rng: np.random.Generator) -> np.ndarray:
    """Erode a binary mask ``[H, W]`` by up to 8% of the face ``size`` (pixels), then blur it (sigma 2-12% of the
    face, at least half a pixel) and scale its maximum to 1: ``[H, W]`` float32 in [0, 1]."""
    inside = (mask > 0.5).astype(np.uint8)
    erode = rng.uniform(0.0, 0.08) * size
    if erode >= 1.0:
        eroded = (cv2.distanceTransform(inside, cv2.DIST_L2, 5) > erode).astype(np.uint8)
        inside = eroded if eroded.any() else inside
    sigma = max(0.5, rng.uniform(0.02, 0.12) * size)
    soft = cv2.GaussianBlur(inside.astype(np.float32), (0, 0), sigmaX=sigma, borderType=cv2.BORDER_CONSTANT)
    soft[soft < 1e-3] = 0.0  # a clean edge: outside the blur's reach the fake equals the target exactly
    peak = float(soft.max())
    return (soft / peak).astype(np.float32) if peak > 0 else inside.astype(np.float32)


def alter_colour(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One or two of: per-channel shifts, a saturation and hue change, a brightness and contrast change.
    ``[H, W, 3]`` float32 0-255 -> same (clipped)."""
    out = img.astype(np.float32)
    for op in rng.permutation(3)[: int(rng.integers(1, 3))]:
        if op == 0:
            out = out + rng.uniform(-20, 20, size=3).astype(np.float32)
        elif op == 1:
            hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV_FULL).astype(np.float32)
            hsv[..., 0] = (hsv[..., 0] + int(rng.integers(-8, 9))) % 256
            hsv[..., 1] = hsv[..., 1] * rng.uniform(0.7, 1.3)
            out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB_FULL).astype(np.float32)
        else:
            mean = out.mean()
            out = (out - mean) * rng.uniform(0.8, 1.2) + mean * rng.uniform(0.9, 1.1)
    return np.clip(out, 0, 255)


def alter_sharpness(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One of: down-and-up resampling (to 35-80% of the size), a slight Gaussian blur, sharpening (unsharp mask).
    ``[H, W, 3]`` float32 0-255 -> same."""
    h, w = img.shape[:2]
    out = img.astype(np.float32)
    op = int(rng.integers(0, 3))
    if op == 0:
        f = rng.uniform(0.35, 0.8)
        small = cv2.resize(out, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    sigma = float(rng.uniform(0.5, 1.5)) * max(h, w) / 224 if op == 1 else max(0.5, 2.0 * max(h, w) / 224)
    blurred = cv2.GaussianBlur(out, (0, 0), sigmaX=max(sigma, 0.3), borderType=cv2.BORDER_REFLECT)
    if op == 1:
        return blurred
    return np.clip(out + rng.uniform(0.6, 1.6) * (out - blurred), 0, 255)


def shift_scale(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scale each axis by 95-105% about the centre and shift by up to 3% of the size; edges repeat outward.
    ``[H, W, 3]`` float32 -> same."""
    h, w = img.shape[:2]
    sy, sx = rng.uniform(0.95, 1.05, size=2)
    ty, tx = rng.uniform(-0.03, 0.03, size=2) * np.array([h, w])
    cy, cx = (h - 1) / 2, (w - 1) / 2
    forward = np.array([[sx, 0.0, cx - sx * cx + tx], [0.0, sy, cy - sy * cy + ty]], dtype=np.float64)
    return cv2.warpAffine(
        img.astype(np.float32), forward, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def self_blend(
    image: Any,
    landmarks: np.ndarray | None = None,
    rng: np.random.Generator | int | None = None,
    region: str | None = None,
) -> PseudoFake:
    """A self-blended pseudo-fake of ``image`` (PIL image of any mode, or an array as ``as_rgb_array`` takes).

    ``landmarks``: the face's five points ``[5, 2]`` (x, y pixels, order ``LANDMARK_NAMES``); None: the centred
    ``TEMPLATE`` of a face crop. ``rng``: a generator or a seed (the same seed gives the same pseudo-fake).
    ``region``: force one of ``REGIONS``.
    """
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    real = as_rgb_array(image)
    h, w = real.shape[:2]
    points = template_landmarks(w, h) if landmarks is None else np.asarray(landmarks, dtype=np.float64)
    if points.shape != (5, 2) or not np.isfinite(points).all():
        raise ValueError(f"landmarks must be five finite (x, y) points [5, 2], got shape {points.shape}")
    size = face_size(points)
    binary, region = hull_mask(points, (h, w), gen, region)
    mask = soften_mask(binary, size, gen)
    ratio = float(gen.choice(BLEND_RATIOS))
    mask = mask * np.float32(ratio)

    base = real.astype(np.float32)
    altered = alter_sharpness(alter_colour(base, gen), gen)
    if gen.random() < 0.5:
        source, target, which = altered, base, "source"
    else:
        source, target, which = base, altered, "target"
    source = shift_scale(source, gen)
    target_u8 = np.clip(np.rint(target), 0, 255).astype(np.uint8)
    m = mask[..., None]
    fake = np.clip(np.rint(m * source + (1.0 - m) * target_u8.astype(np.float32)), 0, 255).astype(np.uint8)
    return PseudoFake(image=fake, target=target_u8, mask=mask, region=region, ratio=ratio, altered=which)
