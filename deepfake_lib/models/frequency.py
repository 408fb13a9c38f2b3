"""Frequency-domain views of images: DC-centred log power spectra (FFT), the 2-D DCT, azimuthal 1-D spectra,
spectral features, and the model's frequency stream (a small CNN over the log-DCT).

Generated and re-synthesised images leave traces here: up-sampling leaves periodic peaks (a 2-pixel checkerboard
puts energy at the Nyquist corners of the spectrum), and generators lift or lose the high-frequency tail (Durall
et al. 2020, Frank et al. 2020, Dzanic et al. 2020). Everything is batched torch: ``[..., H, W]`` in, ``[..., H, W]``
or ``[..., R]`` out, any leading dimensions. Frequencies are in cycles per pixel (0.5 = Nyquist along an axis,
about 0.71 in the corners).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights of R, G, B
POWER_EPS = 1e-10  # floor under the power before the log (an 8-bit image's quantisation noise is ~1e-6)
DCT_EPS = 1e-4  # floor under |DCT coefficient| before the log (images in [0, 1])
# Frequency bands in cycles per pixel for summaries and plots: "high" reaches into the corners.
BANDS = {"low": (0.0, 0.125), "mid": (0.125, 0.375), "high": (0.375, 0.75)}


def to_gray(x: torch.Tensor) -> torch.Tensor:
    """Luma of RGB images: ``[..., 3, H, W]`` -> ``[..., H, W]``."""
    if x.shape[-3] != 3:
        raise ValueError(f"expected RGB images [..., 3, H, W], got shape {tuple(x.shape)}")
    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x * w).sum(dim=-3)


def hann_window(h: int, w: int, device: torch.device | str | None = None) -> torch.Tensor:
    """A separable 2-D Hann window ``[H, W]`` (tapers the image edges, so their jump does not smear a cross
    through the spectrum)."""
    wy = torch.hann_window(h, periodic=False, dtype=torch.float32, device=device)
    wx = torch.hann_window(w, periodic=False, dtype=torch.float32, device=device)
    return wy[:, None] * wx[None, :]


def power_spectrum(x: torch.Tensor, window: bool = True) -> torch.Tensor:
    """Periodogram ``[..., H, W]`` -> ``[..., H, W]``, DC at ``(H // 2, W // 2)``.

    The image mean is removed first, then ``|FFT(w * x)|^2 / sum(w^2)``: white noise of variance s^2 gives s^2 at
    every frequency on average, whatever the size or window.
    """
    x = x.float()
    h, w = x.shape[-2:]
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    if window:
        win = hann_window(h, w, x.device)
        x, norm = x * win, float((win**2).sum())
    else:
        norm = float(h * w)
    f = torch.fft.fft2(x)
    power = (f.real**2 + f.imag**2) / norm
    return torch.fft.fftshift(power, dim=(-2, -1))


def log_spectrum(x: torch.Tensor, window: bool = True) -> torch.Tensor:
    """Natural log of ``power_spectrum``: ``[..., H, W]`` -> ``[..., H, W]``, DC centred."""
    return torch.log(power_spectrum(x, window) + POWER_EPS)


def radial_frequency(h: int, w: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Distance of every cell of a DC-centred ``[H, W]`` spectrum from DC, in cycles per pixel: ``[H, W]``."""
    fy = (torch.arange(h, device=device, dtype=torch.float32) - h // 2) / h
    fx = (torch.arange(w, device=device, dtype=torch.float32) - w // 2) / w
    return torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


def radial_bins(h: int, w: int, device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Ring index of every cell ``[H * W]`` (rings 1 / min(H, W) cycles per pixel wide; ring 0 is DC alone) and
    the number of cells per ring ``[R]``."""
    r = radial_frequency(h, w, device).flatten()
    index = torch.round(r * min(h, w)).long()
    counts = torch.bincount(index).float()
    return index, counts


def profile_frequencies(h: int, w: int) -> np.ndarray:
    """Centre frequency of each ring of ``radial_profile`` for ``[H, W]`` spectra, cycles per pixel: ``[R]``."""
    n = int(radial_bins(h, w)[1].numel())
    return np.arange(n) / min(h, w)


def radial_profile(spec: torch.Tensor) -> torch.Tensor:
    """Azimuthal average: the mean of a DC-centred spectrum over rings of equal frequency, ``[..., H, W]`` ->
    ``[..., R]`` (R = about 0.71 * min(H, W): the corners are included, where diagonal artefacts live)."""
    h, w = spec.shape[-2:]
    index, counts = radial_bins(h, w, spec.device)
    flat = spec.float().flatten(-2)
    total = torch.zeros(*flat.shape[:-1], counts.numel(), dtype=flat.dtype, device=flat.device)
    return total.index_add_(-1, index, flat) / counts


def band_mask(freqs: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    """Which of ``freqs [R]`` fall in ``band`` = (low, high) cycles per pixel (low inclusive): ``[R]`` bool."""
    lo, hi = band
    return (freqs >= lo) & (freqs < hi)


def band_means(profiles: np.ndarray, freqs: np.ndarray, bands: dict[str, tuple[float, float]] = BANDS) -> dict:
    """Mean of 1-D spectra ``[..., R]`` over each band (DC left out): ``{band: [...]}``."""
    out = {}
    for name, band in bands.items():
        mask = band_mask(freqs, band) & (freqs > 0)
        out[name] = np.asarray(profiles)[..., mask].mean(axis=-1)
    return out


def spectral_features(profiles: np.ndarray | torch.Tensor) -> np.ndarray:
    """The feature vector of the spectral baseline: 1-D log spectra ``[N, R]`` (or ``[N, C, R]``) without DC, each
    minus its own mean (so a global change of contrast does not move it), flattened: ``[N, (C *) (R - 1)]``."""
    p = torch.as_tensor(profiles).float()[..., 1:]
    p = p - p.mean(dim=-1, keepdim=True)
    return p.flatten(1).numpy()


# --------------------------------------------------------------------------- DCT
def dct_matrix(n: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The orthonormal DCT-II matrix ``[n, n]``: ``C @ v`` is the DCT of ``v [n]``."""
    k = torch.arange(n, dtype=torch.float64, device=device)[:, None]
    i = torch.arange(n, dtype=torch.float64, device=device)[None, :]
    c = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    c[0] /= math.sqrt(2.0)
    return c.float()


def dct2(x: torch.Tensor, basis: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Orthonormal 2-D DCT-II of ``[..., H, W]`` (two matrix products; exports to ONNX). ``basis``: precomputed
    ``(dct_matrix(H), dct_matrix(W))``. Coefficient (0, 0) is the DC term; frequency grows down and right."""
    h, w = x.shape[-2:]
    ch, cw = basis if basis is not None else (dct_matrix(h, x.device), dct_matrix(w, x.device))
    return ch @ x.float() @ cw.T


def log_dct(x: torch.Tensor, basis: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """``log(|DCT| + DCT_EPS)`` of ``[..., H, W]`` images in [0, 1]: ``[..., H, W]``."""
    return torch.log(dct2(x, basis).abs() + DCT_EPS)


# --------------------------------------------------------------------------- model stream
class RunningStandardize(nn.Module):
    """Standardise each position of ``[N, *shape]`` by the mean and standard deviation of every training input
    seen so far (an exact cumulative average, not BatchNorm's moving one). Train and eval use the same
    statistics, so batch size 1 works and a trained model's output does not depend on its batch."""

    def __init__(self, shape: tuple[int, ...], eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("m2", torch.zeros(shape))  # sum of squared deviations from the mean

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Merge the batch ``x [N, *shape]`` into the statistics (Chan et al.'s parallel update)."""
        n = x.shape[0]
        batch_mean = x.mean(dim=0)
        batch_m2 = ((x - batch_mean) ** 2).sum(dim=0)
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean += delta * float(n / total)
        self.m2 += batch_m2 + delta**2 * float(self.count * n / total)
        self.count.fill_(float(total))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, *shape]`` -> standardised ``[N, *shape]`` (identity-like before any training input)."""
        if self.training:
            self.update(x.detach())
        count = self.count.float().clamp(min=1.0)
        var = torch.where(self.count > 0, self.m2 / count, torch.ones_like(self.m2))
        return (x - self.mean) / torch.sqrt(var + self.eps)


def _conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class FrequencyBranch(nn.Module):
    """The frequency stream: ImageNet-normalised frames ``[N, 3, S, S]`` -> features ``[N, out_features]``.

    Luma -> orthonormal 2-D DCT -> ``log |.|`` -> standardised per coefficient (``RunningStandardize``) -> four
    stride-2 convolutions -> pooled to a 4 x 4 grid (so the features keep which frequencies they came from) ->
    linear. The DCT has no wrap-around edge, so no window is needed. It runs in float32 even under autocast (the
    log of small coefficients needs it).
    """

    def __init__(self, image_size: int, out_features: int = 128, mean: tuple = (), std: tuple = ()) -> None:
        super().__init__()
        self.image_size = image_size
        self.out_features = out_features
        self.register_buffer("basis", dct_matrix(image_size), persistent=False)
        self.register_buffer("input_mean", torch.tensor(mean or (0.0, 0.0, 0.0)).view(3, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.tensor(std or (1.0, 1.0, 1.0)).view(3, 1, 1), persistent=False)
        self.norm = RunningStandardize((image_size, image_size))
        self.convs = nn.Sequential(_conv_bn(1, 16), _conv_bn(16, 32), _conv_bn(32, 64), _conv_bn(64, 64))
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(64 * 16, out_features), nn.ReLU())

    def spectrum(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, 3, S, S]`` ImageNet-normalised -> log-DCT of the luma ``[N, S, S]`` (before standardising)."""
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ValueError(
                f"the frequency branch was built for {self.image_size} x {self.image_size} frames, got {tuple(x.shape)}"
            )
        with torch.autocast(device_type=x.device.type, enabled=False):
            rgb = (x.float() * self.input_std + self.input_mean).clamp(0, 1)
            return log_dct(to_gray(rgb), (self.basis, self.basis))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, 3, S, S]`` -> ``[N, out_features]``."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            z = self.norm(self.spectrum(x)).unsqueeze(1)
        return self.fc(self.pool(self.convs(z)))
