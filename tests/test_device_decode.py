"""Decoding and augmenting on the model's device (``data.device_decode``): the same pixels as the PIL path, the
same bad-file reports, the recipe's augmentation on the device, and the PIL path kept where it is the faster one."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from deepfake_lib.cli.predict import main
from deepfake_lib.data import DeepfakeDataset, Sample, build_transform, device_decode, scan_split
from deepfake_lib.data.augment import AUGMENTATIONS, device_augmentation, recipe_steps
from deepfake_lib.data.device_decode import (
    DECODE_MODES,
    DeviceBatches,
    EncodedImages,
    check_decode,
    jpeg_bytes,
    loader_for,
    resolve_decode,
)
from deepfake_lib.data.transforms import IMAGENET_STD
from deepfake_lib.evaluation.evaluate import predict_samples
from deepfake_lib.predict.predictors import Predictor
from deepfake_lib.training.loop import TrainConfig, fit
from tests.conftest import FIT_FAST, LFS_POINTER, TINY_SIZE, read_csv, tiny_model, train_val_datasets

ONE_LEVEL = 1 / 255 / min(IMAGENET_STD)  # one 8-bit step, normalised: the most two JPEG decoders may differ by


def picture(h: int, w: int, seed: int = 0) -> Image.Image:
    """A smooth gradient with texture (``h x w`` RGB), so resizing and decoding differences show."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([200 * xx / w + 30, 150 * yy / h + 50, 120 * (1 - xx / w) + 60], axis=-1)
    return Image.fromarray(np.clip(base + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8))


def jpeg_with_orientation(img: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """``<tmp>/data/test/{real,fake}``: JPEGs of several sizes, modes and encodings (one an aspect > 4 strip), a
    PNG, a CMYK and an EXIF-rotated JPEG (both the PIL way), and four broken files."""
    root = tmp_path / "data" / "test"
    real, fake = root / "real", root / "fake"
    real.mkdir(parents=True)
    fake.mkdir(parents=True)
    picture(90, 120, 0).save(real / "baseline.jpg", quality=90)
    picture(120, 90, 1).save(real / "progressive.jpg", quality=85, progressive=True)
    picture(70, 70, 2).convert("L").save(real / "gray.jpg")
    picture(20, 300, 3).save(real / "strip.jpg")  # 15:1, cropped to 4:1 first
    picture(32, 32, 4).save(fake / "exact.jpg", quality=95)  # already the model's size: no resize
    picture(80, 100, 5).save(fake / "png.png")
    picture(80, 100, 6).convert("CMYK").save(fake / "cmyk.jpg")
    (fake / "rotated.jpg").write_bytes(jpeg_with_orientation(picture(60, 100, 7), 6))
    whole = (real / "baseline.jpg").read_bytes()
    (fake / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (fake / "lfs.jpg").write_bytes(LFS_POINTER)
    (fake / "empty.jpg").write_bytes(b"")
    (fake / "garbage.jpg").write_bytes(b"\xff\xd8\xff" + bytes(range(256)) * 4 + b"\xff\xd9")
    return root


def batches_by_path(loader) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``{path: x [T, 3, S, S]}`` of the good samples and ``{path: reason}`` of the bad ones over a whole loader."""
    good: dict[str, torch.Tensor] = {}
    bad: dict[str, str] = {}
    for batch in loader:
        bad.update({str(p): r for p, r in batch["bad"]})
        if batch["x"] is not None:
            good.update({p: x for p, x in zip(batch["path"], batch["x"], strict=True)})
    return good, bad


def test_decode_modes_are_checked_and_auto_means_pil_until_the_gpu_check(monkeypatch: pytest.MonkeyPatch) -> None:
    from deepfake_lib.cli.predict import build_parser

    decode = next(a for a in build_parser()._actions if a.dest == "decode")
    assert tuple(decode.choices) == DECODE_MODES  # one list: core.choices
    assert resolve_decode("auto", "cuda") == "pil"  # until the device path has run on a real GPU
    assert resolve_decode("auto", "cpu") == "pil" and resolve_decode("auto", "mps") == "pil"
    monkeypatch.setattr(device_decode, "DEVICE_DECODE_ON_CUDA", True)
    assert resolve_decode("auto", "cuda") == "device" and resolve_decode("auto", "cuda:1") == "device"
    assert resolve_decode("auto", "cpu") == "pil"
    assert resolve_decode("device", "cpu") == "device" and resolve_decode("pil", "cuda") == "pil"
    for bad in ("gpu", "", "nvjpeg"):
        with pytest.raises(ValueError, match="decode must be one of auto, pil, device"):
            check_decode(bad)
    with pytest.raises(ValueError, match="decode must be one of"):
        TrainConfig(decode="gpu")
    with pytest.raises(ValueError, match="decode must be one of"):
        Predictor(tiny_model(calibrate=False), TINY_SIZE, 0.5, decode="GPU")


def test_only_jpegs_the_device_decodes_as_they_are_skip_pil(image_folder: Path) -> None:
    real, fake = image_folder / "real", image_folder / "fake"
    for name in ("baseline", "progressive", "gray", "strip"):
        assert jpeg_bytes(real / f"{name}.jpg") == (real / f"{name}.jpg").read_bytes()
    for name in ("png.png", "cmyk.jpg", "rotated.jpg", "truncated.jpg", "lfs.jpg", "empty.jpg", "missing.jpg"):
        assert jpeg_bytes(fake / name) is None, name


def test_device_decoding_gives_the_eval_transforms_pixels_and_its_bad_file_reports(image_folder: Path) -> None:
    """On the CPU the device path (libjpeg-turbo through torchvision, tensor resize) matches the PIL path within
    one 8-bit step per pixel; files that are not plain JPEGs go through PIL; broken files are reported alike."""
    samples = scan_split(image_folder.parent, "test", validate=False).samples
    ds = DeepfakeDataset(samples, build_transform(TINY_SIZE, train=False))
    pil = loader_for(ds, 4, "cpu", "pil")
    device = loader_for(ds, 4, "cpu", "device")
    assert isinstance(pil, DataLoader) and isinstance(device, DeviceBatches) and len(device) == len(pil)
    pil_good, pil_bad = batches_by_path(pil)
    dev_good, dev_bad = batches_by_path(device)
    assert sorted(dev_good) == sorted(pil_good) and len(dev_good) == 8
    for path, x in pil_good.items():
        y = dev_good[path]
        assert y.shape == x.shape == (1, 3, TINY_SIZE, TINY_SIZE) and y.dtype == torch.float32
        diff = (y - x).abs()
        assert float(diff.max()) <= ONE_LEVEL * 1.01, path
        assert float(diff.mean()) < 0.1 * ONE_LEVEL, path
    for name in ("png.png", "cmyk.jpg", "rotated.jpg"):  # decoded by PIL in the worker: the very same pixels
        path = str(image_folder / "fake" / name)
        assert torch.allclose(dev_good[path], pil_good[path], atol=1e-5), name
    assert dev_bad == pil_bad and len(dev_bad) == 4
    assert "Git LFS pointer" in dev_bad[str(image_folder / "fake" / "lfs.jpg")]
    assert "empty" in dev_bad[str(image_folder / "fake" / "empty.jpg")]


def test_the_pil_path_stays_where_the_device_path_does_not_apply(image_folder: Path, tiny_video_clips: Path) -> None:
    samples = scan_split(image_folder.parent, "test", validate=False).samples
    eval_ds = DeepfakeDataset(samples, build_transform(TINY_SIZE, train=False))
    assert isinstance(loader_for(eval_ds, 4, "cpu"), DataLoader)  # auto on the CPU: the faster PIL path
    custom = DeepfakeDataset(samples, v2.Compose([v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True)]))
    assert isinstance(loader_for(custom, 4, "cpu", "device"), DataLoader)  # not a build_transform: kept as given
    clips = scan_split(tiny_video_clips, "test", validate=False).samples
    clip_ds = DeepfakeDataset(clips, build_transform(TINY_SIZE, train=False))
    assert isinstance(loader_for(clip_ds, 4, "cpu", "device"), DataLoader)  # clip folders: frames via PIL


@pytest.mark.parametrize("recipe", AUGMENTATIONS)
def test_device_augmentation_is_the_recipe_with_its_jpeg_step_moved_to_the_workers(recipe: str) -> None:
    steps, jpeg = device_augmentation(recipe, 64)
    full = recipe_steps(recipe, 64)
    if recipe == "none":
        assert steps is None and jpeg is None
        return
    moved = [s for s in full if isinstance(s, v2.RandomApply) and isinstance(s.transforms[0], v2.JPEG)]
    assert len(moved) == 1 and jpeg == (moved[0].p, tuple(moved[0].transforms[0].quality))
    assert [repr(s) for s in steps.transforms] == [repr(s) for s in full if s is not moved[0]]


def test_device_training_batches_follow_the_recipe(image_folder: Path) -> None:
    """Strong-recipe training batches from the device path: right shapes, finite, one augmentation draw per image
    (flips and erasing change them), different on every pass; in worker processes too."""
    samples = [s for s in scan_split(image_folder.parent, "test", validate=False).samples if "real" in s.path.parts]
    ds = DeepfakeDataset(samples, build_transform(TINY_SIZE, train=True, augment="strong"))
    eval_ds = DeepfakeDataset(samples, build_transform(TINY_SIZE, train=False))
    plain, _ = batches_by_path(loader_for(eval_ds, 4, "cpu", "device"))
    torch.manual_seed(0)
    passes = [batches_by_path(loader_for(ds, 4, "cpu", "device", num_workers=w))[0] for w in (0, 0, 1)]
    for good in passes:
        assert sorted(good) == sorted(plain)
        for path, x in good.items():
            assert x.shape == (1, 3, TINY_SIZE, TINY_SIZE) and torch.isfinite(x).all(), path
    changed = [not torch.allclose(passes[0][p], plain[p], atol=2 * ONE_LEVEL) for p in plain]
    assert sum(changed) >= 3  # the strong recipe changes nearly every image
    assert any(not torch.equal(passes[0][p], passes[1][p]) for p in plain)


def test_workers_recompress_drawn_jpegs_before_the_device_gets_them(image_folder: Path) -> None:
    """The recipe's JPEG step runs in the worker (the device has no encoder): drawn, the item is the re-compressed
    pixels; not drawn, the file's own bytes go on to the device decoder."""
    from deepfake_lib.data.device_decode import pil_pixels

    sample = Sample(image_folder / "real" / "baseline.jpg", 0)
    item = EncodedImages([sample], TINY_SIZE, jpeg=(1.0, (5, 5)))[0]
    assert set(item) == {"pixels", "y", "path"} and item["y"] == 0
    clean = pil_pixels(sample.path, TINY_SIZE)
    assert item["pixels"].shape == clean.shape == (3, TINY_SIZE, TINY_SIZE) and item["pixels"].dtype == torch.uint8
    assert torch.equal(item["pixels"], v2.JPEG(5)(clean))  # quality 5 drawn from (5, 5)
    assert (item["pixels"].float() - clean.float()).abs().mean() > 2  # and quality 5 shows
    kept = EncodedImages([sample], TINY_SIZE, jpeg=(0.0, (5, 5)))[0]
    assert bytes(kept["bytes"].numpy()) == sample.path.read_bytes()


def test_predictions_with_device_decoding_match_the_pil_path(image_folder: Path) -> None:
    samples = scan_split(image_folder.parent, "test", validate=False).samples
    model = tiny_model()
    pil = predict_samples(model, samples, batch_size=4, progress=False, decode="pil")
    device = predict_samples(model, samples, batch_size=4, progress=False, decode="device")
    assert device.paths == pil.paths and len(device.paths) == 8
    np.testing.assert_allclose(device.probs, pil.probs, atol=2e-3)
    assert sorted(device.bad) == sorted(pil.bad) and len(device.bad) == 4


def test_training_with_device_decoding_runs_and_keeps_its_checkpoints(separable: Path, tmp_path: Path) -> None:
    train_ds, val_ds = train_val_datasets(separable)
    result = fit(tiny_model(), train_ds, val_ds, tmp_path / "run", epochs=2, decode="device", **FIT_FAST)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history) == 2 and all(np.isfinite(h["train_loss"]) and np.isfinite(h["val_loss"]) for h in history)
    assert (tmp_path / "run" / "checkpoints" / "best_model.pth").is_file() and result.best_epoch >= 1


def test_cli_folder_mode_decodes_on_the_device_when_told(
    tiny_checkpoint: Path, mixed_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    common = ["--frame", str(mixed_folder), "--weights", str(tiny_checkpoint), "--no-heatmap", "--num-workers", "0"]
    rows = {}
    for decode in ("pil", "device"):
        out = tmp_path / decode
        assert main([*common, "--no-progress", "--out", str(out), "--decode", decode]) == 0
        capsys.readouterr()
        rows[decode] = {r["path"]: r for r in read_csv(out / "predictions.csv")}
    assert rows["pil"].keys() == rows["device"].keys()
    for path, row in rows["pil"].items():
        other = rows["device"][path]
        assert bool(row["error"]) == bool(other["error"]), path
        if not row["error"]:
            assert float(other["probability"]) == pytest.approx(float(row["probability"]), abs=2e-3)
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"not really onnx")
    assert (
        main(["--frame", str(mixed_folder), "--weights", str(onnx), "--out", str(tmp_path / "o"), "--decode", "device"])
        == 2
    )
    assert "--decode only applies with --runtime torch" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (nvJPEG)")
def test_nvjpeg_on_cuda_matches_the_cpu(image_folder: Path) -> None:
    samples = scan_split(image_folder.parent, "test", validate=False).samples
    ds = DeepfakeDataset(samples, build_transform(TINY_SIZE, train=False))
    cpu_good, cpu_bad = batches_by_path(loader_for(ds, 4, "cpu", "pil"))
    cuda_good, cuda_bad = batches_by_path(loader_for(ds, 4, "cuda", "auto", num_workers=2, pin_memory=True))
    assert sorted(cuda_good) == sorted(cpu_good) and cuda_bad == cpu_bad
    for path, x in cpu_good.items():
        assert cuda_good[path].device.type == "cuda"
        assert float((cuda_good[path].cpu() - x).abs().max()) <= 2 * ONE_LEVEL, path
    model = tiny_model()
    cpu = predict_samples(model, samples, batch_size=4, progress=False, amp=False, decode="pil")
    cuda = predict_samples(model.cuda(), samples, batch_size=4, progress=False, amp=False)
    np.testing.assert_allclose(cuda.probs, cpu.probs, atol=1e-3)
