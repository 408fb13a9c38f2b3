"""Spectra of a data set and the spectral baseline: per-class means, bounded memory, a cache that follows the
files, bad files reported, clips averaged over frames, and a baseline that finds up-sampling artefacts."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from PIL import Image

from deepfake_lib.cli import spectral as spectral_cli
from deepfake_lib.core.images import load_clip
from deepfake_lib.data.transforms import build_transform, denormalize, transform_frames
from deepfake_lib.evaluation.baselines import comparison, with_comparison
from deepfake_lib.explain import spectra as spectral
from deepfake_lib.models.frequency import log_spectrum, radial_profile, to_gray
from tests.conftest import LFS_POINTER, TINY_FRAMES, TINY_SIZE


def upsampled_images(n: int, checkerboard: bool, seed: int) -> np.ndarray:
    """``[n, 32, 32, 3]`` uint8: 16 px random colour images up-sampled 2x, bilinearly (REAL) or by a stride-2
    transposed convolution that leaves a checkerboard (FAKE)."""
    g = torch.Generator().manual_seed(seed)
    low = TF.avg_pool2d(torch.rand(n, 3, 18, 18, generator=g), 3, stride=1)  # [n, 3, 16, 16], smooth
    if checkerboard:
        kernel = torch.full((3, 1, 3, 3), 0.45)
        up = TF.conv_transpose2d(low, kernel, stride=2, padding=1, output_padding=1, groups=3)
    else:
        up = TF.interpolate(low, scale_factor=2, mode="bilinear", align_corners=False)
    up = up + 0.01 * torch.randn(up.shape, generator=g)
    return (up.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()


@pytest.fixture(scope="module")
def upsampled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<tmp>/{train,val,test}/{real,fake}``: 12 real and 6 fake PNGs per split (see ``upsampled_images``)."""
    root = tmp_path_factory.mktemp("upsampled")
    for s, split in enumerate(["train", "val", "test"]):
        for label, (name, n) in enumerate([("real", 12), ("fake", 6)]):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i, arr in enumerate(upsampled_images(n, bool(label), seed=10 * s + label)):
                Image.fromarray(arr).save(folder / f"{name}_{i}.png")
    return root


def test_split_spectra_per_class_means_and_one_profile_per_image(upsampled: Path) -> None:
    sp = spectral.split_spectra(upsampled, "train", 32, progress=False)
    n_rings = len(sp.freqs)
    assert len(sp) == 18 and sp.profiles.shape == (18, n_rings) and sp.freqs[1] == pytest.approx(1 / 32)
    assert list(sp.counts) == [12, 6] and sorted(sp.labels.tolist()) == [0] * 12 + [1] * 6
    assert sp.power_sum.shape == sp.dct_sum.shape == (2, 32, 32) and sp.bad == []
    real, fake = sp.mean_power(0), sp.mean_power(1)
    assert real.shape == (32, 32) and np.isfinite(real).all()
    assert fake[0, 0] > real[0, 0] + 3  # the checkerboard's Nyquist corner
    assert sp.mean_dct(1)[-1, -1] > sp.mean_dct(0)[-1, -1]  # the DCT's highest coefficient says the same
    bands = {row["band"]: row for row in sp.band_table()}
    assert bands["high"]["fake_minus_real"] > 1 and bands["high"]["effect_size"] > 2
    assert sp.features().shape == (18, n_rings - 1)
    rgb = spectral.split_spectra(upsampled, "train", 32, channels="rgb", progress=False)
    assert rgb.profiles.shape == (18, 3, n_rings) and rgb.power_sum.shape == (2, 3, 32, 32)
    assert rgb.features().shape == (18, 3 * (n_rings - 1))
    with pytest.raises(ValueError, match="channels"):
        spectral.compute_spectra([], 32, channels="lab")


def test_batches_do_not_change_the_result(upsampled: Path) -> None:
    a = spectral.split_spectra(upsampled, "val", 32, batch_size=3, progress=False)
    b = spectral.split_spectra(upsampled, "val", 32, batch_size=64, progress=False)
    assert a.paths == b.paths
    np.testing.assert_allclose(a.profiles, b.profiles, atol=1e-5)
    np.testing.assert_allclose(a.power_sum, b.power_sum, rtol=1e-5, atol=1e-3)


def test_spectral_baseline_finds_upsampling_artefacts(upsampled: Path, tmp_path: Path) -> None:
    result = spectral.spectral_baseline(upsampled, 32, cache_dir=tmp_path, progress=False)
    rec = result.record
    assert rec["report_split"] == "test" and rec["threshold_split"] == "val"
    assert rec["n"] == {"train": 18, "val": 18, "test": 18} and rec["skipped"] == {"train": 0, "val": 0, "test": 0}
    assert rec["report"]["auc"] > 0.95 and rec["report"]["balanced_accuracy"] > 0.85
    assert rec["image_size"] == 32 and rec["channels"] == "gray" and "1-D log power spectrum" in rec["features"]
    assert result.scores.probs["test"].shape == (18,) and set(result.spectra) == {"train", "val", "test"}
    cmp = comparison({"auc": 0.5}, {"spectral": rec, "linear_probe": {"status": "skipped"}}, keys=("auc",))
    assert cmp == {"auc": {"detector": 0.5, "spectral": rec["report"]["auc"]}}


def test_the_cache_is_reused_until_a_file_changes(upsampled: Path, tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "data"
    shutil.copytree(upsampled, data)
    first = spectral.split_spectra(data, "val", 32, cache_dir=tmp_path / "cache", progress=False)
    assert (tmp_path / "cache" / "spectra_val_32_gray.npz").is_file()
    real_compute = spectral.compute_spectra

    def must_not_run(*args, **kwargs):
        raise AssertionError("recomputed although nothing changed")

    monkeypatch.setattr(spectral, "compute_spectra", must_not_run)
    again = spectral.split_spectra(data, "val", 32, cache_dir=tmp_path / "cache", progress=False)
    assert again.paths == first.paths and again.bad == first.bad
    np.testing.assert_array_equal(again.profiles, first.profiles)
    changed = data / "val" / "fake" / "fake_0.png"
    Image.fromarray(upsampled_images(1, False, seed=99)[0]).save(changed)
    os.utime(changed, ns=(1, 1))
    with pytest.raises(AssertionError, match="recomputed"):
        spectral.split_spectra(data, "val", 32, cache_dir=tmp_path / "cache", progress=False)
    monkeypatch.setattr(spectral, "compute_spectra", real_compute)
    fresh = spectral.split_spectra(data, "val", 32, cache_dir=tmp_path / "cache", progress=False)
    assert not np.allclose(fresh.profiles, first.profiles)
    # a damaged cache file is recomputed, not trusted
    (tmp_path / "cache" / "spectra_val_32_gray.npz").write_bytes(b"not a npz")
    assert spectral.SplitSpectra.load(tmp_path / "cache" / "spectra_val_32_gray.npz") is None


def test_bad_files_are_listed_and_the_rest_measured(upsampled: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(upsampled, data)
    (data / "test" / "fake" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (data / "test" / "real" / "lfs.png").write_bytes(LFS_POINTER)
    sp = spectral.split_spectra(data, "test", 32, progress=False)
    assert len(sp) == 18
    reasons = dict(sp.bad)
    assert set(reasons) == {str(data / "test" / "fake" / "corrupt.png"), str(data / "test" / "real" / "lfs.png")}
    assert "git lfs pull" in reasons[str(data / "test" / "real" / "lfs.png")]


def test_a_clip_is_one_spectrum_averaged_over_its_frames(tiny_video_clips: Path) -> None:
    sp = spectral.split_spectra(tiny_video_clips, "val", TINY_SIZE, progress=False)
    clips = [p for p in sp.paths if p.endswith(".clip")]
    assert clips and len(sp) == len(sp.labels) == sp.profiles.shape[0]
    frames = transform_frames(build_transform(TINY_SIZE, train=False), load_clip(clips[0]))
    assert frames.shape[0] == TINY_FRAMES
    expected = radial_profile(log_spectrum(to_gray(denormalize(frames))).mean(0))
    np.testing.assert_allclose(sp.profiles[sp.paths.index(clips[0])], expected.numpy(), atol=1e-4)


def test_command_line_prints_the_baseline_and_the_bands(upsampled: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "spectral.json"
    argv = ["--data", str(upsampled), "--image-size", "32", "--device", "cpu", "--out", str(out)]
    assert spectral_cli.main([*argv, "--cache-dir", str(tmp_path / "cache")]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["auc"] > 0.95 and set(line["bands"]) == {"low", "mid", "high"} and line["bands"]["high"] > 1
    saved = json.loads(out.read_text())
    assert saved["report"]["auc"] == pytest.approx(line["auc"], abs=1e-4) and len(saved["bands"]) == 3
    assert spectral_cli.main(["--data", str(tmp_path / "nowhere"), "--image-size", "32"]) == 2
    assert "error:" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        spectral_cli.main(["--data", str(upsampled), "--image-size", "0"])


def test_a_skipped_baseline_gets_no_comparison() -> None:
    ran = {"report": {"auc": 0.7, "eer": 0.3}}
    assert with_comparison({"auc": 0.9}, "spectral_baseline", ran)["comparison"]["auc"] == {
        "detector": 0.9, "spectral_baseline": 0.7,
    }  # fmt: skip
    skipped = {"status": "skipped", "reason": "SPECTRAL_BASELINE = False"}
    assert with_comparison({"auc": 0.9}, "spectral_baseline", skipped) == skipped


@pytest.mark.parametrize(("n_fake", "fitted"), [(3, True), (1, False)])
def test_a_small_train_split_fits_with_fewer_folds_or_says_why_not(tmp_path: Path, n_fake: int, fitted: bool) -> None:
    for s, (split, n_real, n_f) in enumerate([("train", 4, n_fake), ("val", 3, 3), ("test", 3, 3)]):
        for label, (name, n) in enumerate([("real", n_real), ("fake", n_f)]):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for i, arr in enumerate(upsampled_images(n, bool(label), seed=10 * s + label)):
                Image.fromarray(arr).save(folder / f"{i}.png")
    result = spectral.spectral_baseline(tmp_path, 32, progress=False)
    if fitted:
        assert result.skipped is None and result.record["n"]["train"] == 4 + n_fake
        (name,) = result.scorings("test")
        assert result.scorings("test")[name][1].shape == (6,) and len(result.probs_by_path("test")[name][0]) == 6
    else:
        assert result.scores is None and result.scorings("test") == {} and result.probs_by_path("test") == {}
        assert result.record == {"status": "skipped", "reason": "'train': needs at least 2 samples of each class to "
                                                               "fit, got REAL 4, FAKE 1"}  # fmt: skip
