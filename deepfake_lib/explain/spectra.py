"""Spectra of a data set: per-class mean 2-D spectra (FFT and DCT), 1-D spectra per image, and the spectral
baseline (logistic regression on the 1-D spectra) scored on the detector's splits.

Images go through the detector's eval transform (the same pixels the model sees). Memory stays bounded on large
folders: the 2-D spectra are summed per class as batches stream by; only the 1-D spectra (R floats) are kept per
image. A split's spectra are cached in ``cache_dir`` and reused while its files and settings are unchanged.

python -m deepfake_lib.cli.spectral --data DATA_DIR [--image-size 224] [--channels gray] [--out spectral.json]
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from deepfake_lib import CLASS_NAMES
from deepfake_lib.core.choices import CHANNELS
from deepfake_lib.core.device import resolve_device
from deepfake_lib.core.images import ImageLoadError
from deepfake_lib.core.runs import atomic_write, resolve_path, skipped_record
from deepfake_lib.data.datasets import DeepfakeDataset, make_loader, resolve_num_workers
from deepfake_lib.data.scan import Sample, scan_split
from deepfake_lib.data.transforms import build_transform, denormalize
from deepfake_lib.evaluation.baselines import BaselineScores, TooFewSamples, score_baseline
from deepfake_lib.evaluation.metrics import full_metrics
from deepfake_lib.models.frequency import (
    band_means,
    log_dct,
    log_spectrum,
    profile_frequencies,
    radial_profile,
    spectral_features,
    to_gray,
)

CACHE_VERSION = 1
REPORT_KEYS = ("auc", "balanced_accuracy", "eer", "average_precision")


@dataclass
class SplitSpectra:
    """Spectra of one split at ``size`` x ``size``: ``profiles [N, R]`` (``[N, 3, R]`` for ``channels="rgb"``)
    1-D log power spectra at ``freqs [R]`` cycles per pixel, ``labels [N]``, ``paths``; per class (REAL = 0,
    FAKE = 1) the sums of the DC-centred log power spectra ``power_sum [2, (3,) size, size]`` and of the log-DCT
    ``dct_sum``, over ``counts [2]`` images. A clip's spectrum is the mean over its frames. Unreadable files in
    ``bad``."""

    split: str
    size: int
    channels: str
    freqs: np.ndarray
    profiles: np.ndarray
    labels: np.ndarray
    paths: list[str]
    power_sum: np.ndarray
    dct_sum: np.ndarray
    counts: np.ndarray
    bad: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def _class_mean(self, sums: np.ndarray, label: int) -> np.ndarray:
        return sums[label] / self.counts[label] if self.counts[label] else np.full_like(sums[0], np.nan)

    def mean_power(self, label: int) -> np.ndarray:
        """Mean log power spectrum of class ``label``: ``[(3,) size, size]``, DC centred (NaN for an empty class)."""
        return self._class_mean(self.power_sum, label)

    def mean_dct(self, label: int) -> np.ndarray:
        """Mean log-|DCT| of class ``label``: ``[(3,) size, size]``, DC top-left (NaN for an empty class)."""
        return self._class_mean(self.dct_sum, label)

    def class_means(self, kind: str = "fft") -> dict[str, np.ndarray]:
        """``{"REAL": [...], "FAKE": [...]}``: ``mean_power`` (``kind="fft"``) or ``mean_dct`` (``"dct"``)."""
        mean = {"fft": self.mean_power, "dct": self.mean_dct}[kind]
        return {name.upper(): mean(k) for k, name in enumerate(CLASS_NAMES)}

    def class_counts(self) -> dict[str, int]:
        return {name.upper(): int(self.counts[k]) for k, name in enumerate(CLASS_NAMES)}

    @property
    def gray_profiles(self) -> np.ndarray:
        """``profiles`` as ``[N, R]`` (RGB spectra: the mean over the channels)."""
        return self.profiles if self.profiles.ndim == 2 else self.profiles.mean(1)

    def class_profiles(self) -> dict[str, np.ndarray]:
        """Mean 1-D spectrum ``[R]`` of each class present (``{"REAL": ..., "FAKE": ...}``)."""
        p = self.gray_profiles
        return {
            name.upper(): p[self.labels == k].mean(0) for k, name in enumerate(CLASS_NAMES) if (self.labels == k).any()
        }

    def features(self) -> np.ndarray:
        """The spectral baseline's features ``[N, F]`` (``frequency.spectral_features``)."""
        return spectral_features(self.profiles)

    def band_table(self) -> list[dict[str, Any]]:
        """Per band: mean 1-D log power of REAL and FAKE images, FAKE - REAL, and that difference in units of
        the pooled per-image standard deviation (an effect size; NaN where a class has fewer than 2 images)."""
        rows = []
        for name, values in band_means(self.gray_profiles, self.freqs).items():
            real, fake = values[self.labels == 0], values[self.labels == 1]
            if min(len(real), len(fake)) < 2:
                nan = float("nan")
                rows.append({"band": name, "real": nan, "fake": nan, "fake_minus_real": nan, "effect_size": nan})
                continue
            diff = float(fake.mean() - real.mean())
            pooled = float(np.sqrt((real.var(ddof=1) + fake.var(ddof=1)) / 2))
            rows.append(
                {"band": name, "real": float(real.mean()), "fake": float(fake.mean()), "fake_minus_real": diff,
                 "effect_size": diff / pooled if pooled > 0 else float("nan")}
            )  # fmt: skip
        return rows

    def save(self, path: str | os.PathLike[str], key: str = "") -> Path:
        """Write to a ``.npz`` (atomically); ``key`` identifies the inputs (see ``load``)."""
        arrays = {
            "freqs": self.freqs, "profiles": self.profiles, "labels": self.labels, "power_sum": self.power_sum,
            "dct_sum": self.dct_sum, "counts": self.counts, "paths": np.array(self.paths, dtype=str),
            "meta": np.array(json.dumps({"split": self.split, "size": self.size, "channels": self.channels,
                                         "bad": self.bad, "key": key, "version": CACHE_VERSION})),
        }  # fmt: skip
        return atomic_write(path, lambda tmp: np.savez(tmp, **arrays), suffix=".npz")

    @classmethod
    def load(cls, path: str | os.PathLike[str], key: str | None = None) -> SplitSpectra | None:
        """Read a file written by ``save``; ``None`` when it is missing, unreadable, of another cache version or
        (with ``key``) made from other inputs."""
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                if meta.get("version") != CACHE_VERSION or (key is not None and meta.get("key") != key):
                    return None
                return cls(
                    meta["split"], int(meta["size"]), meta["channels"], z["freqs"], z["profiles"], z["labels"],
                    [str(p) for p in z["paths"]], z["power_sum"], z["dct_sum"], z["counts"],
                    [tuple(b) for b in meta["bad"]],
                )  # fmt: skip
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            return None


@torch.inference_mode()
def compute_spectra(
    samples: list[Sample],
    size: int,
    channels: str = "gray",
    batch_size: int = 32,
    num_workers: int = 0,
    device: str | torch.device = "cpu",
    split: str = "",
    progress: bool = True,
) -> SplitSpectra:
    """Spectra of ``samples`` through the eval transform at ``size`` (see ``SplitSpectra``)."""
    if channels not in CHANNELS:
        raise ValueError(f"channels must be one of {CHANNELS}, got {channels!r}")
    dev = resolve_device(str(device))
    ds = DeepfakeDataset(samples, build_transform(size, train=False))
    loader = make_loader(ds, batch_size, num_workers=resolve_num_workers(num_workers, dev))
    shape = (size, size) if channels == "gray" else (3, size, size)
    power_sum, dct_sum = torch.zeros(2, *shape, dtype=torch.float64), torch.zeros(2, *shape, dtype=torch.float64)
    profiles, labels, paths, bad = [], [], [], []
    for batch in tqdm(loader, desc=f"spectra {split}".strip(), leave=False, disable=not progress):
        bad += batch["bad"]
        if batch["x"] is None:
            continue
        x = denormalize(batch["x"].to(dev))  # [B, T, 3, S, S] in [0, 1]
        img = to_gray(x) if channels == "gray" else x
        power = log_spectrum(img).mean(dim=1)  # mean over a clip's frames: [B, (3,) S, S]
        dct = log_dct(img).mean(dim=1)
        y = batch["y"].to(dev)
        power_sum += torch.zeros(2, *shape, dtype=torch.float64, device=dev).index_add_(0, y, power.double()).cpu()
        dct_sum += torch.zeros(2, *shape, dtype=torch.float64, device=dev).index_add_(0, y, dct.double()).cpu()
        profiles.append(radial_profile(power).cpu().numpy())
        labels.append(batch["y"].numpy())
        paths += batch["path"]
    freqs = profile_frequencies(size, size)
    lab = np.concatenate(labels) if labels else np.zeros(0, np.int64)
    prof_shape = (0, len(freqs)) if channels == "gray" else (0, 3, len(freqs))
    return SplitSpectra(
        split, size, channels, freqs, np.concatenate(profiles) if profiles else np.zeros(prof_shape, np.float32),
        lab, paths, power_sum.float().numpy(), dct_sum.float().numpy(), np.bincount(lab, minlength=2), bad,
    )  # fmt: skip


@dataclass
class ImageSpectrum:
    """One image through the eval transform: ``image [S, S, 3]`` uint8 (a clip: its middle frame), its log power
    spectrum ``power [S, S]`` (DC centred; a clip: the mean over its frames) and 1-D spectrum ``profile [R]``."""

    path: str
    image: np.ndarray
    power: np.ndarray
    profile: np.ndarray


@torch.inference_mode()
def image_spectrum(path: str | os.PathLike[str], size: int) -> ImageSpectrum:
    """The grey-level spectrum of one image or clip folder at ``size``; ``ImageLoadError`` says why one cannot be
    read."""
    item = DeepfakeDataset([Sample(Path(path), 0)], build_transform(size, train=False))[0]
    if "error" in item:
        raise ImageLoadError(*item["error"])
    x = denormalize(item["x"])  # [T, 3, S, S]
    power = log_spectrum(to_gray(x)).mean(0)
    image = (x[len(x) // 2].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return ImageSpectrum(str(path), image, power.numpy(), radial_profile(power).numpy())


def inputs_key(samples: list[Sample], size: int, channels: str) -> str:
    """A fingerprint of the inputs: every file's path, label, size and modification time, and the settings."""
    digest = hashlib.sha256(f"{size}:{channels}:{CACHE_VERSION};".encode())
    for s in samples:
        try:
            st = s.path.stat()
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        digest.update(f"{s.path}:{s.label}:{stamp};".encode())
    return digest.hexdigest()[:16]


def split_spectra(
    data_dir: str | os.PathLike[str],
    split: str,
    size: int,
    cache_dir: str | os.PathLike[str] | None = None,
    channels: str = "gray",
    **kwargs: Any,
) -> SplitSpectra:
    """``compute_spectra`` over ``data_dir/split`` (files the scan skips are listed in ``bad``), cached in
    ``cache_dir/spectra_<split>_<size>_<channels>.npz`` when given; keyword arguments as ``compute_spectra``."""
    scan = scan_split(resolve_path(data_dir), split, validate=False)
    key = inputs_key(scan.samples, size, channels)
    cache = Path(cache_dir) / f"spectra_{split}_{size}_{channels}.npz" if cache_dir is not None else None
    if cache is not None and (cached := SplitSpectra.load(cache, key)) is not None:
        return cached
    spectra = compute_spectra(scan.samples, size, channels, split=split, **kwargs)
    spectra.bad = [(str(s.path), s.reason) for s in scan.skipped] + list(spectra.bad)
    if cache is not None:
        spectra.save(cache, key)
    return spectra


NAME = "spectral baseline"


@dataclass
class SpectralBaseline:
    """The spectral baseline's scores per split (``None`` when it could not be fitted: ``skipped`` says why), with
    the spectra it was fitted on."""

    scores: BaselineScores | None
    spectra: dict[str, SplitSpectra]
    skipped: str | None = None

    @property
    def record(self) -> dict[str, Any]:
        """What 03 writes to ``metrics.json``: the fit's record, or ``runs.skipped_record(why)``."""
        return self.scores.record if self.scores is not None else skipped_record(str(self.skipped))

    def scorings(self, split: str) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
        """``{"spectral baseline": (labels [N], probs [N], threshold)}`` on ``split`` (empty when skipped)."""
        if self.scores is None:
            return {}
        return {NAME: (self.scores.labels[split], self.scores.probs[split], self.scores.record["threshold"])}

    def probs_by_path(self, split: str) -> dict[str, tuple[list[str], np.ndarray]]:
        """``{"spectral baseline": (paths, probs [N])}`` on ``split`` (empty when skipped)."""
        return {} if self.scores is None else {NAME: (self.spectra[split].paths, self.scores.probs[split])}


def spectral_baseline(
    data_dir: str | os.PathLike[str],
    size: int,
    train_split: str = "train",
    threshold_split: str = "val",
    report_split: str = "test",
    threshold_method: str = "eer",
    cache_dir: str | os.PathLike[str] | None = None,
    channels: str = "gray",
    seed: int = 0,
    **kwargs: Any,
) -> SpectralBaseline:
    """Logistic regression on the 1-D spectra (``frequency.spectral_features``): fitted on ``train_split``,
    threshold on ``threshold_split`` by ``threshold_method``, numbers on ``report_split``, exactly as 03 scores
    the detector. A train split too small to fit (under 2 images of a class) gives a skipped baseline that says
    so, not an error. Keyword arguments go to ``compute_spectra``."""
    splits = list(dict.fromkeys([train_split, threshold_split, report_split]))
    spectra = {s: split_spectra(data_dir, s, size, cache_dir, channels, **kwargs) for s in splits}
    try:
        scores = score_baseline(
            {s: (sp.features(), sp.labels) for s, sp in spectra.items()},
            train_split, threshold_split, report_split, threshold_method, seed,
        )  # fmt: skip
    except TooFewSamples as exc:
        return SpectralBaseline(None, spectra, f"'{train_split}': {exc}")
    scores.record.update(
        features=f"1-D log power spectrum ({len(spectra[train_split].freqs) - 1} rings, {channels}) at {size} px",
        image_size=size, channels=channels, skipped={s: len(sp.bad) for s, sp in spectra.items()},
    )  # fmt: skip
    return SpectralBaseline(scores, spectra)


def scorings_table(
    scorings: dict[str, tuple[np.ndarray, np.ndarray, float]], keys: tuple[str, ...] = REPORT_KEYS
) -> dict[str, dict[str, float]]:
    """``{name: (labels [N], probs [N], threshold)}`` -> ``{name: {n, auc, balanced_accuracy, eer, ...}}``, each at
    its own threshold (chosen on the threshold split)."""
    table = {}
    for name, (labels, probs, threshold) in scorings.items():
        m = full_metrics(labels, probs, threshold)
        table[name] = {"n": int(len(labels)), "threshold": float(threshold), **{k: m[k] for k in keys}}
    return table


def scores_by_path(scorings: dict[str, tuple[list[str], np.ndarray]]) -> dict[str, dict[str, float]]:
    """``{name: (paths, probs)}`` -> ``{path: {name: P(FAKE)}}`` (for ``widgets.SpectrumInspector``)."""
    out: dict[str, dict[str, float]] = {}
    for name, (paths, probs) in scorings.items():
        for path, p in zip(paths, probs, strict=True):
            out.setdefault(str(path), {})[name] = float(p)
    return out


def frequency_record(spectra: SplitSpectra, scorings: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
    """What 07 writes to ``metrics.json``: where the spectra come from, their band table and the scorings'
    numbers on the report split."""
    return {
        "spectra_split": spectra.split, "image_size": spectra.size, "n": spectra.class_counts(),
        "skipped": len(spectra.bad), "bands": spectra.band_table(), "report": scorings or {},
    }  # fmt: skip
