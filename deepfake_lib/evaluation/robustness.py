"""Robustness: re-evaluate a detector on images degraded the way they are shared (JPEG, blur, resizing, noise).

Each degradation acts on the image as a user would receive it (PIL RGB in, PIL RGB of the same size out),
before the model's eval transform resizes and normalises it. The decision threshold stays fixed: a deployed
detector does not re-tune its threshold for each kind of degradation.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageFilter
from torch import nn
from torchvision import transforms as T
from tqdm.auto import tqdm

from deepfake_lib.core.images import to_rgb
from deepfake_lib.data.datasets import resolve_num_workers
from deepfake_lib.data.scan import Sample
from deepfake_lib.data.transforms import LimitAspect, build_transform
from deepfake_lib.evaluation.evaluate import predict_samples
from deepfake_lib.evaluation.inference import Predictions, model_device
from deepfake_lib.evaluation.metrics import full_metrics

CLEAN = "none"
NO_SEVERITY = "-"
METRIC_KEYS = ("auc", "balanced_accuracy", "eer", "fake_recall", "real_recall")


# --------------------------------------------------------------------------- degradations (PIL -> PIL)
def identity(img: Image.Image) -> Image.Image:
    """The clean baseline: the image unchanged."""
    return img


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    """Re-encode as JPEG at ``quality`` (1-100) and decode again: blocking, ringing, chroma loss."""
    buf = io.BytesIO()
    to_rgb(img).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as out:
        return out.convert("RGB")


def gaussian_blur(img: Image.Image, sigma: float) -> Image.Image:
    """Gaussian blur with standard deviation ``sigma`` pixels (PIL's ``GaussianBlur`` radius is the sigma)."""
    return to_rgb(img).filter(ImageFilter.GaussianBlur(float(sigma)))


def resize_down_up(img: Image.Image, factor: float = 2) -> Image.Image:
    """Downscale by ``factor`` (bicubic, antialiased: PIL widens the kernel when shrinking), then back up.

    The size is kept; detail finer than ``factor`` pixels is lost. A flat image comes back unchanged.
    """
    rgb = to_rgb(img)
    w, h = rgb.size
    small = (max(1, round(w / factor)), max(1, round(h / factor)))
    down = rgb.resize(small, Image.Resampling.BICUBIC, reducing_gap=None)
    return down.resize((w, h), Image.Resampling.BICUBIC)


def _content_key(arr: np.ndarray) -> int:
    """A 64-bit key from the pixels ``[H, W, 3]`` and shape, so the noise of an image does not depend on load order."""
    digest = hashlib.blake2b(arr.tobytes(), digest_size=8, person=b"noise-key")
    digest.update(repr(arr.shape).encode())
    return int.from_bytes(digest.digest(), "little")


def gaussian_noise(img: Image.Image, sigma: float, seed: int = 0) -> Image.Image:
    """Add Gaussian noise of std ``sigma`` (0-255 units), rounded and clipped to 0-255.

    The random numbers come from ``seed`` and the image's content, so the same image gets the same noise
    for the same seed, whichever order or worker process it is loaded in.
    """
    arr = np.asarray(to_rgb(img), dtype=np.uint8)
    rng = np.random.default_rng([int(seed) % 2**64, _content_key(arr)])
    noisy = arr.astype(np.float64) + rng.normal(0.0, float(sigma), arr.shape)
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))


# --------------------------------------------------------------------------- named degradations
def spec_string(name: str, severity: str | float) -> str:
    """``"jpeg", 50`` -> ``"jpeg:50"``; the clean baseline (severity ``"-"``) -> ``"none"``."""
    return name if severity == NO_SEVERITY else f"{name}:{severity:g}"


@dataclass(frozen=True)
class Degradation:
    """One named degradation at one severity; ``fn`` maps a PIL RGB image to one of the same size."""

    name: str
    severity: str | float
    fn: Callable[[Image.Image], Image.Image]

    @property
    def spec(self) -> str:
        """The ``name:severity`` string that ``parse_degradations`` reads (``none`` for the baseline)."""
        return spec_string(self.name, self.severity)

    def with_seed(self, seed: int) -> Degradation:
        """The same degradation drawing its random numbers from ``seed`` (itself when it draws none)."""
        fn = self.fn
        if isinstance(fn, partial) and "seed" in fn.keywords:
            return replace(self, fn=partial(fn.func, *fn.args, **{**fn.keywords, "seed": int(seed)}))
        return self


@dataclass(frozen=True)
class _Kind:
    fn: Callable[..., Image.Image]
    keyword: str  # the severity's keyword argument of ``fn``
    what: str  # the allowed severities, for error messages
    valid: Callable[[float], bool]
    default: float | None = None
    seeded: bool = False


KINDS: dict[str, _Kind] = {
    "jpeg": _Kind(jpeg, "quality", "a JPEG quality, a whole number from 1 to 100",
                  lambda v: v.is_integer() and 1 <= v <= 100),
    "blur": _Kind(gaussian_blur, "sigma", "a Gaussian sigma in pixels, above 0 and at most 50", lambda v: 0 < v <= 50),
    "downup": _Kind(resize_down_up, "factor", "a downscale factor, above 1 and at most 64", lambda v: 1 < v <= 64,
                    default=2),
    "noise": _Kind(gaussian_noise, "sigma", "a noise sigma in 0-255 units, above 0 and at most 255",
                   lambda v: 0 < v <= 255, seeded=True),
}  # fmt: skip
CLEAN_DEGRADATION = Degradation(CLEAN, NO_SEVERITY, identity)


def make_degradation(name: str, severity: float | str | None = None, seed: int = 0) -> Degradation:
    """The degradation ``name`` (``jpeg``, ``blur``, ``downup``, ``noise`` or ``none``) at ``severity``.

    Raises ``ValueError`` naming the known degradations or the allowed severities.
    """
    if name == CLEAN:
        if severity is not None:
            raise ValueError(f"'{CLEAN}' (the clean baseline) takes no severity, got {severity!r}")
        return CLEAN_DEGRADATION
    kind = KINDS.get(name)
    if kind is None:
        raise ValueError(f"unknown degradation {name!r}; known: {', '.join([*KINDS, CLEAN])}")
    if severity is None:
        if kind.default is None:
            raise ValueError(f"'{name}' needs a severity, e.g. '{name}:<value>' with {kind.what}")
        severity = kind.default
    try:
        value = float(severity)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and kind.valid(value)):
        raise ValueError(f"bad severity {severity!r} for '{name}': expected {kind.what}")
    sev: int | float = int(value) if value.is_integer() else value
    kwargs: dict[str, Any] = {kind.keyword: sev, **({"seed": int(seed)} if kind.seeded else {})}
    return Degradation(name, sev, partial(kind.fn, **kwargs))


def parse_degradations(spec: Sequence[str] | None, seed: int = 0) -> list[Degradation]:
    """``["jpeg:90", "blur:1", "downup", ...]`` -> degradations, the clean baseline ``none`` first.

    ``None`` gives ``DEFAULT_DEGRADATIONS``. Raises ``TypeError`` for a bare string and ``ValueError`` for an
    unknown name, a bad or missing severity, or an entry listed twice.
    """
    if spec is None:
        spec = DEFAULT_SPEC
    if isinstance(spec, str):
        raise TypeError(f"degradations must be a list of 'name:severity' strings, got the string {spec!r}")
    out = [CLEAN_DEGRADATION]
    for entry in spec:
        name, sep, severity = str(entry).strip().partition(":")
        try:
            deg = make_degradation(name.strip().lower(), severity.strip() if sep else None, seed)
        except ValueError as exc:
            raise ValueError(f"{entry!r}: {exc}") from None
        if deg == CLEAN_DEGRADATION:
            continue
        if any(d.spec == deg.spec for d in out):
            raise ValueError(f"{entry!r}: degradation '{deg.spec}' is listed twice")
        out.append(deg)
    return out


# JPEG 90 / 70 / 50: light, typical (messengers, social networks) and aggressive re-compression. Blur sigma
# 1 / 2 px: slight defocus or smoothing, and strong smoothing. Down-up 2: a half-size copy enlarged again
# (thumbnails, re-uploads). Noise sigma 5 / 10 (0-255): visible sensor noise, and heavy noise.
DEFAULT_SPEC = ("jpeg:90", "jpeg:70", "jpeg:50", "blur:1", "blur:2", "downup:2", "noise:5", "noise:10")
DEFAULT_DEGRADATIONS = parse_degradations(DEFAULT_SPEC)


# --------------------------------------------------------------------------- evaluation
@dataclass
class RobustnessResult:
    """Metrics per degradation at one fixed threshold; ``rows[0]`` is the clean baseline ``none``."""

    threshold: float
    split: str | None
    image_size: int
    seed: int
    rows: list[dict[str, Any]]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    predictions: dict[str, Predictions] = field(default_factory=dict, repr=False)  # spec -> predictions

    def table(self) -> pd.DataFrame:
        """One row per degradation and severity: ``n``, ``n_skipped``, the metrics and ``auc_drop``."""
        return pd.DataFrame(self.rows)

    def to_record(self) -> dict[str, Any]:
        """The ``robustness`` section of metrics.json (plain JSON values)."""
        return {
            "status": "done",
            "split": self.split,
            "threshold": float(self.threshold),
            "threshold_fixed": True,
            "image_size": int(self.image_size),
            "seed": int(self.seed),
            "degradations": [spec_string(r["degradation"], r["severity"]) for r in self.rows],
            "rows": [dict(r) for r in self.rows],
            "n_skipped": len(self.skipped),
            "skipped": [{"path": str(p), "reason": r} for p, r in self.skipped],
        }


def _row(deg: Degradation, preds: Predictions, threshold: float) -> dict[str, Any]:
    m = full_metrics(preds.labels, preds.probs, threshold)
    return {
        "degradation": deg.name,
        "severity": deg.severity,
        "n": int(m["n"]),
        "n_skipped": len(preds.bad),
        **{k: float(m[k]) for k in METRIC_KEYS},
    }


def evaluate_robustness(
    model: nn.Module,
    samples: Sequence[Sample],
    threshold: float,
    degradations: Sequence[Degradation] | None = None,
    image_size: int | None = None,
    batch_size: int = 64,
    num_workers: int = -1,
    seed: int = 0,
    split: str | None = None,
    amp: bool = True,
    progress: bool = True,
    tta: str = "none",
) -> RobustnessResult:
    """Predict ``samples`` once per degradation (clean baseline first) and score each pass at ``threshold``,
    with the test-time augmentation ``tta`` the threshold was chosen with.

    Each image goes load -> degradation -> eval transform (``[3, S, S]``) -> model, in ``predict_loader``.
    Per row: ``auc``, ``balanced_accuracy``, ``eer``, ``fake_recall``, ``real_recall`` (at the fixed
    ``threshold``) and ``auc_drop`` = clean AUC - AUC. Unreadable files are skipped (``n_skipped``).
    ``seed`` feeds the random degradations (noise); ``degradations=None`` uses ``DEFAULT_DEGRADATIONS``.
    """
    degs = list(DEFAULT_DEGRADATIONS if degradations is None else degradations)
    degs = [CLEAN_DEGRADATION] + [d for d in degs if d.name != CLEAN]
    size = int(image_size or model.config.image_size)
    eval_tf = build_transform(size, train=False)
    workers = resolve_num_workers(num_workers, model_device(model))
    rows: list[dict[str, Any]] = []
    predictions: dict[str, Predictions] = {}
    bar = tqdm(degs, desc="robustness", disable=not progress)
    for deg in bar:
        bar.set_postfix_str(deg.spec)
        # LimitAspect first keeps a degradation away from extreme strips (JPEG stops at 65,500 px a side); the
        # eval transform applies it anyway, so the clean pass is unchanged.
        tf = eval_tf if deg.name == CLEAN else T.Compose([LimitAspect(), deg.with_seed(seed).fn, eval_tf])
        preds = predict_samples(model, list(samples), size, batch_size, workers, amp, progress, deg.spec, tf, tta)
        predictions[deg.spec] = preds
        rows.append(_row(deg, preds, threshold))
    clean_auc = rows[0]["auc"]
    for r in rows:
        r["auc_drop"] = float(clean_auc - r["auc"])
    return RobustnessResult(
        threshold=float(threshold),
        split=split,
        image_size=size,
        seed=int(seed),
        rows=rows,
        skipped=list(predictions[CLEAN].bad),
        predictions=predictions,
    )
