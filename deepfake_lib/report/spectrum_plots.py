"""Frequency figures: mean 2-D spectra per class, 1-D radial spectra with confidence bands, one image's spectrum."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from deepfake_lib import CLASS_NAMES
from deepfake_lib.models.frequency import BANDS
from deepfake_lib.report.plots import PALETTE, _one_class_note

BAND_COLORS = {"low": "#e3edf7", "mid": "#f4f4f4", "high": "#fae3e3"}


def _spectrum_panel(ax: Any, arr: np.ndarray, kind: str, title: str, limits: tuple[float, float], diff: bool) -> Any:
    """One 2-D spectrum: ``kind`` "fft" (DC centred, -0.5..0.5 cycles/pixel) or "dct" (DC top-left, 0..0.5)."""
    extent = (-0.5, 0.5, 0.5, -0.5) if kind == "fft" else (0.0, 0.5, 0.5, 0.0)
    cmap = "RdBu_r" if diff else "magma"
    im = ax.imshow(arr, cmap=cmap, vmin=limits[0], vmax=limits[1], extent=extent, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("cycles / pixel", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.03).ax.tick_params(labelsize=7)
    return im


def _shared_limits(arrays: Sequence[np.ndarray]) -> tuple[float, float]:
    values = np.concatenate([a[np.isfinite(a)].ravel() for a in arrays])
    return (float(np.percentile(values, 1)), float(np.percentile(values, 99.5))) if values.size else (0.0, 1.0)


def _diff_limits(diff: np.ndarray) -> tuple[float, float]:
    finite = np.abs(diff[np.isfinite(diff)])
    top = float(np.percentile(finite, 99)) if finite.size else 1.0
    return -max(top, 1e-6), max(top, 1e-6)


def class_spectra(
    fft: dict[str, np.ndarray], dct: dict[str, np.ndarray] | None = None, counts: dict[str, int] | None = None
) -> Any:
    """Mean log spectra ``{"REAL": [S, S], "FAKE": [S, S]}`` side by side and FAKE - REAL (red: more energy in
    fakes): a row for the log power spectrum (FFT, DC centred) and, with ``dct``, one for the log-|DCT| (DC
    top-left, frequency growing down and right)."""
    rows = [("fft", "log power (FFT)", fft)] + ([("dct", "log |DCT|", dct)] if dct is not None else [])
    fig, axes = plt.subplots(len(rows), 3, figsize=(12, 3.7 * len(rows)), squeeze=False)
    for (kind, what, means), ax_row in zip(rows, axes, strict=True):
        real, fake = means["REAL"], means["FAKE"]
        limits = _shared_limits([real, fake])
        for ax, name, arr in zip(ax_row[:2], ("REAL", "FAKE"), (real, fake), strict=True):
            n = f" (n={counts[name]})" if counts else ""
            _spectrum_panel(ax, arr, kind, f"{name}{n}: mean {what}", limits, diff=False)
        diff = fake - real
        _spectrum_panel(ax_row[2], diff, kind, f"FAKE - REAL: {what}", _diff_limits(diff), diff=True)
    fig.tight_layout()
    return fig


def _shade_bands(ax: Any, bands: dict[str, tuple[float, float]], top: float) -> None:
    for name, (lo, hi) in bands.items():
        ax.axvspan(lo, min(hi, top), color=BAND_COLORS.get(name, "#eeeeee"), zorder=0)
        ax.text((lo + min(hi, top)) / 2, 0.98, name, transform=ax.get_xaxis_transform(), ha="center", va="top",
                fontsize=8, color="grey")  # fmt: skip


def radial_spectra(freqs: np.ndarray, profiles: np.ndarray, labels: np.ndarray, bands: dict | None = None) -> Any:
    """Azimuthally averaged log power spectra ``profiles [N, R]`` at ``freqs [R]`` (DC left out): the mean of each
    class with a 95% confidence band (mean +- 1.96 standard errors) over shaded frequency ``bands``, and below,
    FAKE - REAL with its own 95% band (where the band leaves zero, the classes differ)."""
    bands = BANDS if bands is None else bands
    f, p, y = np.asarray(freqs)[1:], np.asarray(profiles)[:, 1:], np.asarray(labels)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 6.4), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    stats = {}
    for label, name in enumerate(n.upper() for n in CLASS_NAMES):
        rows = p[y == label]
        if not len(rows):
            continue
        mean = rows.mean(0)
        se = rows.std(0, ddof=1) / np.sqrt(len(rows)) if len(rows) > 1 else np.zeros_like(mean)
        stats[name] = (mean, se, len(rows))
        color = PALETTE[name.lower()]
        top.plot(f, mean, color=color, lw=1.6, label=f"{name} (n={len(rows)})")
        top.fill_between(f, mean - 1.96 * se, mean + 1.96 * se, color=color, alpha=0.3, lw=0)
    _shade_bands(top, bands, float(f.max()) if len(f) else 0.75)
    top.set(ylabel="mean log power", title="1-D power spectrum (azimuthal average), 95% bands")
    top.legend(fontsize=8, loc="lower left")
    if len(stats) == 2:
        (m_r, se_r, _), (m_f, se_f, _) = stats["REAL"], stats["FAKE"]
        diff, se = m_f - m_r, np.sqrt(se_r**2 + se_f**2)
        bottom.plot(f, diff, color="black", lw=1.4, label="FAKE - REAL")
        bottom.fill_between(f, diff - 1.96 * se, diff + 1.96 * se, color="grey", alpha=0.35, lw=0, label="95% band")
        bottom.legend(fontsize=8, loc="lower left")
    else:
        _one_class_note(bottom, "FAKE - REAL")
    bottom.axhline(0, color="grey", lw=0.8, ls=":")
    _shade_bands(bottom, bands, float(f.max()) if len(f) else 0.75)
    bottom.set(xlabel="frequency (cycles / pixel; Nyquist 0.5 along an axis)", ylabel="difference")
    fig.tight_layout()
    return fig


def spectrum_view(
    image: np.ndarray,
    spectrum: np.ndarray,
    class_mean: np.ndarray,
    freqs: np.ndarray,
    profile: np.ndarray,
    class_profiles: dict[str, np.ndarray],
    title: str = "",
) -> Any:
    """One image next to its class: the image ``[S, S, 3]``, its log power spectrum ``[S, S]``, the mean spectrum
    of its class (same colour scale) and its 1-D spectrum ``[R]`` over the class means."""
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6), gridspec_kw={"width_ratios": [1, 1.15, 1.15, 1.5]})
    axes[0].imshow(image)
    axes[0].set_title(title, fontsize=8)
    axes[0].axis("off")
    limits = _shared_limits([spectrum, class_mean])
    _spectrum_panel(axes[1], spectrum, "fft", "this image: log power", limits, diff=False)
    _spectrum_panel(axes[2], class_mean, "fft", "its class: mean log power", limits, diff=False)
    ax = axes[3]
    for name, mean in class_profiles.items():
        ax.plot(freqs[1:], mean[1:], color=PALETTE[name.lower()], lw=1.4, label=f"{name} mean")
    ax.plot(freqs[1:], profile[1:], color="black", lw=1.2, ls="--", label="this image")
    ax.set(xlabel="cycles / pixel", ylabel="log power", title="1-D spectrum")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
