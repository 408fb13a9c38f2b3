"""Frequency analysis: spectra peak where periodic patterns put them, up-sampling artefacts show in the high band,
white noise is flat, the DCT is the orthonormal DCT-II, and the model's frequency stream has the right shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft
import torch
import torch.nn.functional as TF

from deepfake_lib.explain.heatmaps import gradcam
from deepfake_lib.models import frequency as F
from deepfake_lib.models.checkpoint import model_checkpoint, model_from_checkpoint, save_model
from deepfake_lib.models.detector import build_model
from tests.conftest import tiny_model


def smooth_noise(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """``[n, size, size]`` low-pass random images in about [0, 1] (noise blurred by a 5 x 5 box, twice)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, size, size, generator=g)
    box = torch.ones(1, 1, 5, 5) / 25
    for _ in range(2):
        x = TF.conv2d(TF.pad(x, (2, 2, 2, 2), mode="reflect"), box)
    return ((x - x.mean()) * 4 + 0.5).squeeze(1)


@pytest.mark.parametrize(("ky", "kx"), [(0, 8), (5, 0), (4, 12), (-6, 9)])
def test_a_periodic_pattern_peaks_at_its_frequency(ky: int, kx: int) -> None:
    size = 64
    i = torch.arange(size, dtype=torch.float32)
    pattern = 0.5 + 0.3 * torch.cos(2 * math.pi * (ky * i[:, None] + kx * i[None, :]) / size)
    spec = F.log_spectrum(pattern + 0.01 * torch.randn(size, size))
    peak = divmod(int(spec.argmax()), size)
    centre = size // 2
    assert peak in {(centre + ky, centre + kx), (centre - ky, centre - kx)}  # the pattern and its mirror image
    profile = F.radial_profile(F.power_spectrum(pattern))  # the ring average of the power, not of its log
    freqs = F.profile_frequencies(size, size)
    assert freqs[int(profile[1:].argmax()) + 1] == pytest.approx(math.hypot(ky, kx) / size, abs=0.6 / size)


def test_checkerboard_upsampling_lifts_the_high_band() -> None:
    low = smooth_noise(8, 32).unsqueeze(1)  # [8, 1, 32, 32]
    clean = TF.interpolate(low, scale_factor=2, mode="bilinear", align_corners=False).squeeze(1)
    # a transposed convolution with stride 2 and a 3 x 3 kernel: uneven overlap, the classic checkerboard
    deconv = TF.conv_transpose2d(low, torch.full((1, 1, 3, 3), 0.5), stride=2, padding=1, output_padding=1)
    checker = deconv.squeeze(1)
    freqs = F.profile_frequencies(64, 64)
    bands = {
        name: F.band_means(F.radial_profile(F.log_spectrum(x)).mean(0).numpy(), freqs)
        for name, x in [("clean", clean), ("checker", checker)]
    }
    assert bands["checker"]["high"] > bands["clean"]["high"] + 2.0  # e^2: over 7x the power
    assert abs(bands["checker"]["low"] - bands["clean"]["low"]) < 1.5  # the image content itself is the same
    # the energy sits at the Nyquist frequencies: the corner and the axis ends of the DC-centred spectrum
    spec, clean_spec = F.log_spectrum(checker).mean(0), F.log_spectrum(clean).mean(0)
    for cell in [(0, 0), (0, 32), (32, 0)]:
        assert spec[cell] > clean_spec[cell] + 10 and spec[cell] > spec.median() + 10, cell


def test_white_noise_has_a_flat_calibrated_spectrum() -> None:
    sigma = 0.1
    noise = sigma * torch.randn(64, 64, 64, generator=torch.Generator().manual_seed(1))
    profile = F.radial_profile(F.log_spectrum(noise)).mean(0).numpy()[2:]  # ring 1 is next to the removed mean
    freqs = F.profile_frequencies(64, 64)[2:]
    # E[log periodogram] of white noise = log(sigma^2) - Euler's gamma at every frequency
    expected = math.log(sigma**2) - 0.5772
    assert profile.mean() == pytest.approx(expected, abs=0.05)
    assert np.abs(profile - profile.mean()).max() < 0.35
    slope = np.polyfit(freqs, profile, 1)[0]
    assert abs(slope) < 0.3  # log units per cycle/pixel: no tilt
    # the same without the window (the normalisation keeps the level)
    plain = F.radial_profile(F.log_spectrum(noise, window=False)).mean(0).numpy()[2:]
    assert plain.mean() == pytest.approx(expected, abs=0.05)


def test_the_spectrum_is_batched_over_leading_dimensions() -> None:
    x = torch.rand(2, 3, 5, 24, 20)
    spec = F.log_spectrum(x)
    assert spec.shape == x.shape
    torch.testing.assert_close(spec[1, 2, 4], F.log_spectrum(x[1, 2, 4]))
    profile = F.radial_profile(spec)
    assert profile.shape == (2, 3, 5, len(F.profile_frequencies(24, 20)))
    torch.testing.assert_close(F.to_gray(torch.ones(4, 3, 2, 2)), torch.ones(4, 2, 2))


def test_spectral_features_ignore_contrast_and_drop_dc() -> None:
    img = smooth_noise(4, 32) + 0.004 * torch.randn(
        4, 32, 32, generator=torch.Generator().manual_seed(2)
    )  # about 8-bit quantisation noise, far above the floor
    feats = F.spectral_features(F.radial_profile(F.log_spectrum(img)))
    scaled = F.spectral_features(F.radial_profile(F.log_spectrum(3.0 * img + 0.2)))
    n_rings = len(F.profile_frequencies(32, 32))
    assert feats.shape == (4, n_rings - 1) and feats.dtype == np.float32
    np.testing.assert_allclose(scaled, feats, atol=1e-2)  # equal but for the floor under the power
    np.testing.assert_allclose(feats.mean(axis=1), 0.0, atol=1e-5)
    rgb = F.spectral_features(torch.zeros(4, 3, n_rings))
    assert rgb.shape == (4, 3 * (n_rings - 1))


def test_dct_is_the_orthonormal_dct_ii() -> None:
    c = F.dct_matrix(16)
    torch.testing.assert_close(c @ c.T, torch.eye(16), atol=1e-5, rtol=0)
    x = torch.rand(3, 16, 12)
    expected = scipy.fft.dctn(x.numpy(), type=2, norm="ortho", axes=(-2, -1))
    np.testing.assert_allclose(F.dct2(x).numpy(), expected, atol=1e-5)
    flat = F.dct2(torch.full((8, 8), 0.5))
    assert flat[0, 0] == pytest.approx(0.5 * 8) and flat.abs().flatten()[1:].max() < 1e-5
    logd = F.log_dct(torch.full((8, 8), 0.5))
    assert logd[0, 0] == pytest.approx(math.log(4.0), abs=1e-3) and logd[1, 1] == pytest.approx(math.log(F.DCT_EPS))


def test_running_standardize_learns_the_exact_statistics() -> None:
    norm = F.RunningStandardize((4, 4))
    data = torch.randn(37, 4, 4) * torch.linspace(0.5, 3, 16).view(4, 4) + 7
    norm.train()
    for chunk in data.split([1, 10, 26]):  # batch size 1 works
        norm(chunk)
    assert float(norm.count) == 37
    torch.testing.assert_close(norm.mean, data.mean(0), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(norm.m2 / norm.count.float(), data.var(0, unbiased=False), atol=1e-3, rtol=1e-4)
    norm.eval()
    out = norm(data)
    torch.testing.assert_close(out.mean(0), torch.zeros(4, 4), atol=1e-4, rtol=0)
    torch.testing.assert_close(out[:3], norm(data[:3]))  # eval: rows do not depend on their batch
    assert float(norm.count) == 37  # eval does not update
    assert torch.equal(F.RunningStandardize((2,)).eval()(torch.tensor([[1.0, -2.0]])).round(decimals=3),
                       torch.tensor([[1.0, -2.0]]))  # fmt: skip


@pytest.mark.parametrize("frames", [1, 3])
def test_frequency_branch_joins_the_per_frame_features(frames: int) -> None:
    torch.manual_seed(0)
    model = build_model(pretrained=False, image_size=32, frequency_branch=True, frequency_features=16)
    plain = build_model(pretrained=False, image_size=32)
    x = torch.randn(2, frames, 3, 32, 32)
    model.train()
    logits = model(x)
    assert logits.shape == (2,)
    logits.sum().backward()
    branch_grads = [p.grad for p in model.frequency.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in branch_grads)
    assert any(g.abs().sum() > 0 for g in branch_grads)
    assert float(model.frequency.norm.count) == 2 * frames  # every frame updates the statistics
    model.eval()
    with torch.no_grad():
        feats = model.features(x)
    n_backbone = plain.features(x).shape[-1]
    assert feats.shape == (2, frames, n_backbone + 16)
    assert model.lstm.input_size == n_backbone + 16 and plain.lstm.input_size == n_backbone
    with torch.no_grad():  # the last 16 features are the branch's, frame by frame
        torch.testing.assert_close(feats[:, :, n_backbone:].flatten(0, 1), model.frequency(x.flatten(0, 1)))


def test_frequency_branch_survives_the_checkpoint_and_checks_its_input() -> None:
    model = build_model(pretrained=False, image_size=32, frequency_branch=True).train()
    model(torch.randn(4, 1, 3, 32, 32))  # statistics from one batch
    model.eval()
    ckpt = model_checkpoint(model)
    assert ckpt["config"]["frequency_branch"] is True
    assert "frequency.norm.mean" in ckpt["state_dict"] and "frequency.basis" not in ckpt["state_dict"]
    again = model_from_checkpoint(ckpt).eval()
    x = torch.randn(3, 1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x))
    with pytest.raises(ValueError, match="built for 32 x 32"):
        model.frequency(torch.randn(1, 3, 40, 40))


def test_gradcam_explains_the_rgb_stream_of_a_model_with_the_branch() -> None:
    model = tiny_model(image_size=64, frequency_branch=True, frequency_features=16)
    count = float(model.frequency.norm.count)
    x = torch.randn(3, 1, 3, 64, 64)
    maps, logits = gradcam(model, x)
    assert maps.shape == (3, 64, 64) and maps.min() >= 0.0 and maps.max() <= 1.0 and maps.max() > 0.5
    model.eval()
    with torch.no_grad():
        np.testing.assert_allclose(logits, model(x).double().numpy(), rtol=1e-4, atol=1e-5)
    assert float(model.frequency.norm.count) == count  # explaining is no training: the statistics stay


def test_a_model_with_the_branch_exports_to_onnx_with_the_same_scores(tmp_path) -> None:
    pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed: pip install -e '.[onnx]'")
    from deepfake_lib.deploy.export import export_onnx

    weights = tmp_path / "branch.pth"
    save_model(tiny_model(frequency_branch=True, frequency_features=16), weights)
    result = export_onnx(weights, tmp_path / "branch.onnx")
    assert result.path.is_file() and result.max_abs_diff <= 1e-4 and result.checked == 8
