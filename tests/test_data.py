"""Data layer: scanning, labels, bad files, transforms, dataset items, oversampling."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deepfake_lib import data
from deepfake_lib.core.images import ImageLoadError, load_image
from deepfake_lib.data.datasets import PREFETCH_BATCHES, collate_skip_bad, resolve_num_workers
from deepfake_lib.data.transforms import IMAGENET_MEAN, IMAGENET_STD, LimitAspect, RandomJPEG


def _tree(root: Path, layout: dict[str, int], size: int = 24) -> Path:
    """Write ``layout`` = {"train/real": n, ...} small RGB PNGs under ``root``."""
    for sub, n in layout.items():
        folder = root / sub
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.new("RGB", (size, size), (i * 20 % 255, 100, 50)).save(folder / f"img_{i}.png")
    return root


def test_labels_from_folder_names_not_alphabetical(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"train/REAL": 3, "train/Fake": 2})
    scan = data.scan_split(root, "train")
    by_folder = {s.path.parent.name: s.label for s in scan.samples}
    assert by_folder == {"REAL": 0, "Fake": 1}
    assert scan.counts == {"real": 3, "fake": 2}
    assert scan.imbalance_ratio == pytest.approx(1.5)


def test_nested_folders_and_extensions(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"train/real/a/b": 2, "train/fake": 1})
    (root / "train/real/notes.txt").write_text("not an image")
    Image.new("RGB", (8, 8)).save(root / "train/fake/x.JPEG", format="JPEG")
    scan = data.scan_split(root, "train")
    assert scan.counts == {"real": 2, "fake": 2}


def test_bad_files_are_skipped_with_reasons(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"train/real": 2, "train/fake": 2})
    fake = root / "train/fake"
    (fake / "empty.jpg").write_bytes(b"")
    (fake / "pointer.png").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n")
    (fake / "random.jpg").write_bytes(os.urandom(300))
    good = fake / "img_0.png"
    (fake / "truncated.png").write_bytes(good.read_bytes()[:60])
    scan = data.scan_split(root, "train")
    assert scan.counts == {"real": 2, "fake": 2}
    reasons = {s.path.name: s.reason for s in scan.skipped}
    assert set(reasons) == {"empty.jpg", "pointer.png", "random.jpg", "truncated.png"}
    assert "empty" in reasons["empty.jpg"]
    assert "git lfs pull" in reasons["pointer.png"]
    assert "not an image" in reasons["random.jpg"]
    assert "truncated or corrupt" in reasons["truncated.png"]
    assert scan.summary()["skipped"] == 4


def test_symlink_loop_is_reported_not_followed_forever(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"train/real": 1, "train/fake": 1})
    os.symlink(root / "train/real", root / "train/real/loop")
    scan = data.scan_split(root, "train")
    assert scan.counts == {"real": 1, "fake": 1}
    assert any("symlink loop" in s.reason for s in scan.skipped)


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({"train/real": 2}, "missing class folder(s) fake"),
        ({"train/fake": 2, "train/other": 1}, "missing class folder(s) real"),
        ({"val/real": 1, "val/fake": 1}, "split folder"),
    ],
)
def test_layout_errors_say_what_to_fix(tmp_path: Path, layout: dict[str, int], message: str) -> None:
    root = _tree(tmp_path, layout)
    with pytest.raises(data.DataLayoutError, match=message.replace("(", r"\(").replace(")", r"\)")):
        data.scan_split(root, "train")


def test_missing_data_dir_points_at_demo_builder(tmp_path: Path) -> None:
    with pytest.raises(data.DataLayoutError, match="deepfake_lib.cli.demo"):
        data.scan_dataset(tmp_path / "nope")


def test_empty_class_is_a_warning(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"train/real": 2})
    (root / "train/fake").mkdir()
    scan = data.scan_split(root, "train")
    assert scan.counts == {"real": 2, "fake": 0}
    assert any("fake" in w for w in scan.warnings)
    assert scan.imbalance_ratio == float("inf")


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGBA", "I;16", "I", "CMYK", "F"])
def test_any_mode_loads_as_rgb(tmp_path: Path, mode: str) -> None:
    img = Image.new(mode, (10, 7))
    path = tmp_path / f"img.{'tif' if mode in ('F', 'CMYK', 'I') else 'png'}"
    img.save(path)
    out = load_image(path)
    assert out.mode == "RGB" and out.size == (10, 7)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif)
    assert load_image(path).size == (20, 40)


def test_animated_gif_gives_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in [(255, 0, 0), (0, 0, 255)]]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    r, g, b = load_image(path).getpixel((8, 8))
    assert r > 200 and b < 50


def test_decompression_bomb_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import deepfake_lib.core.images as images

    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 100 * 100)
    path = tmp_path / "big.png"
    Image.new("L", (200, 200)).save(path)
    with pytest.raises(ImageLoadError, match="decompression-bomb"):
        load_image(path)


def test_transforms_shapes_and_normalization() -> None:
    img = Image.fromarray(np.full((50, 70, 3), 128, dtype=np.uint8))
    for train in (True, False):
        x = data.build_transform(32, train=train)(img)
        assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    x = data.build_transform(32, train=False)(img)
    expected = (128 / 255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(x.mean(dim=(1, 2)), expected, atol=1e-3)
    assert torch.allclose(data.denormalize(x).mean(), torch.tensor(128 / 255), atol=1e-3)


def test_eval_transform_keeps_an_image_of_the_right_size_untouched() -> None:
    arr = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    x = data.denormalize(data.build_transform(32, train=False)(Image.fromarray(arr)))
    assert torch.allclose(x, torch.from_numpy(arr).permute(2, 0, 1).float() / 255, atol=1e-5)


def test_random_jpeg_changes_pixels_and_keeps_size() -> None:
    arr = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    out = RandomJPEG((30, 30), p=1.0)(Image.fromarray(arr))
    assert out.size == (32, 32) and out.mode == "RGB"
    assert np.abs(np.asarray(out).astype(int) - arr).mean() > 1


def test_dataset_items_and_collate_skip_bad(tiny_data: Path, tmp_path: Path) -> None:
    scan = data.scan_split(tiny_data, "train")
    bad = tmp_path / "gone.jpg"
    bad.write_bytes(b"")
    samples = [*scan.samples[:3], data.Sample(bad, 1)]
    ds = data.DeepfakeDataset(samples, data.build_transform(32, train=False))
    item = ds[0]
    assert item["x"].shape == (1, 3, 32, 32) and item["y"] in (0, 1) and Path(item["path"]).exists()
    assert ds[3] == {"error": (str(bad), "empty file (0 bytes)")}
    batch = next(iter(data.make_loader(ds, batch_size=4)))
    assert batch["x"].shape == (3, 1, 3, 32, 32)
    assert batch["y"].dtype == torch.long and len(batch["path"]) == 3
    assert batch["bad"] == [(str(bad), "empty file (0 bytes)")]
    assert collate_skip_bad([ds[3]])["x"] is None


def test_oversampler_balances_classes_and_is_seeded() -> None:
    labels = [0] * 90 + [1] * 10
    draws = list(data.make_oversampler(labels, seed=1, num_samples=4000))
    fake_share = np.mean([labels[i] for i in draws])
    assert 0.45 < fake_share < 0.55
    assert draws == list(data.make_oversampler(labels, seed=1, num_samples=4000))
    assert data.pos_weight(labels).item() == pytest.approx(9.0)
    preview = data.oversampling_preview(labels, seed=0)
    assert preview["epoch_size"] == 100
    assert preview["mean_repeats_per_image"]["fake"] > 3 > preview["mean_repeats_per_image"]["real"]


def test_oversampler_refuses_a_missing_class() -> None:
    with pytest.raises(data.DataLayoutError, match="no samples"):
        data.make_oversampler([0, 0, 0])


def test_counts_table(tiny_data: Path) -> None:
    rows = data.counts_table(data.scan_dataset(tiny_data, ["train", "val"]))
    assert [r["split"] for r in rows] == ["train", "val"]
    assert rows[0]["real"] == 12 and rows[0]["fake"] == 4 and rows[0]["imbalance_ratio"] == 3.0


@pytest.mark.parametrize("size", [(1, 1), (1, 3000), (3000, 2), (5, 400)])
def test_tiny_and_thin_images_transform_without_blowing_up(size: tuple[int, int]) -> None:
    img = Image.new("RGB", size, (10, 200, 30))
    for train in (True, False):
        assert data.build_transform(32, train=train)(img).shape == (3, 32, 32)
    w, h = LimitAspect(4)(img).size
    assert max(w, h) <= 4 * min(w, h) and min(w, h) == min(size)


def test_resolve_num_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_num_workers(3, "cpu") == 3
    assert resolve_num_workers(-1, "cpu") == 0  # workers only steal cores from the model on a CPU
    assert resolve_num_workers(-1, None) == 0
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert resolve_num_workers(-1, "cuda") == 15  # every core but the one driving the GPU, not capped at 4
    assert resolve_num_workers(2, "cuda") == 2  # NUM_WORKERS still overrides
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert resolve_num_workers(-1, "cuda") == 3  # four torchrun processes share the cores
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    assert resolve_num_workers(-1, "cuda") == 0


def test_make_loader_feeds_an_accelerator_from_persistent_prefetching_workers() -> None:
    samples = [data.Sample(Path(f"img_{i}.jpg"), i % 2) for i in range(8)]  # never read: no batch is drawn
    ds = data.DeepfakeDataset(samples, data.build_transform(32, train=False))
    ev = data.make_loader(ds, 4, num_workers=2, pin_memory=True)
    assert ev.persistent_workers and ev.prefetch_factor == PREFETCH_BATCHES and ev.pin_memory
    train = data.make_loader(ds, 4, shuffle=True, num_workers=2, pin_memory=True)
    assert not train.persistent_workers  # re-created each epoch: resumed training draws as an uninterrupted run
    cpu = data.make_loader(ds, 4, num_workers=0)
    assert not cpu.persistent_workers and cpu.prefetch_factor is None and cpu.collate_fn is collate_skip_bad


def test_pick_alternating_alternates_fake_and_real_reproducibly() -> None:
    videos = [(Path(f"f{i}.mp4"), 1) for i in range(3)] + [(Path(f"r{i}.mp4"), 0) for i in range(3)]
    picked = data.pick_alternating(videos, 4, seed=1)
    assert [y for _, y in picked] == [1, 0, 1, 0] and len(set(picked)) == 4
    assert data.pick_alternating(videos, 4, seed=1) == picked
    everything = data.pick_alternating(videos, 10)
    assert [y for _, y in everything] == [1, 0] * 3 and sorted(everything) == sorted(videos)
    uneven = data.pick_alternating([(Path("r.mp4"), 0), *videos[:3]], 4)
    assert [y for _, y in uneven] == [1, 0, 1, 1]
    assert data.pick_alternating([], 3) == [] and data.pick_alternating(videos, 0) == []
