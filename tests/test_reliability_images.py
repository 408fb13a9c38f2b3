"""Issue 6, point 1: hostile and broken images through scanning, the dataset and training."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from deepfake_lib import data
from deepfake_lib.core.images import load_image
from deepfake_lib.training.loop import fit
from tests.conftest import tiny_model
from tests.hostile import add_symlink_loop, write_bad, write_odd_but_good


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], list[str]]:
    root = tmp_path_factory.mktemp("hostile")
    bad = write_bad(root / "train" / "fake")
    good = write_odd_but_good(root / "train" / "real")
    add_symlink_loop(root / "train" / "real")
    for split in ("train", "val"):
        for label in ("real", "fake"):
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(4):
                Image.new("RGB", (32, 32), (40 + 150 * (label == "fake"), 90, 20 * i)).save(folder / f"plain_{i}.png")
    return root, bad, good


def test_scan_reports_every_bad_file_and_keeps_every_good_one(hostile) -> None:
    root, bad, good = hostile
    scan = data.scan_split(root, "train")
    reasons = {s.path.name: s.reason for s in scan.skipped}
    for name, fragment in bad.items():
        assert fragment in reasons[name], (name, reasons.get(name))
    assert "loop" in reasons and "symlink loop" in reasons["loop"]
    kept = {s.path.name for s in scan.samples}
    assert set(good) <= kept
    assert scan.counts == {"real": len(good) + 4, "fake": 4}
    summary = scan.summary()
    assert summary["skipped"] == len(bad) + 1 and len(summary["skipped_files"]) == summary["skipped"]


def test_odd_images_load_correctly(hostile) -> None:
    root, _, good = hostile
    folder = root / "train" / "real"
    for name in good:
        assert load_image(folder / name).mode == "RGB"
    assert load_image(folder / "exif_rotated.jpg").size == (20, 40)
    assert load_image(folder / "animated.gif").size == (48, 32)


def test_training_over_unvalidated_files_skips_bad_ones_and_reports_them(hostile, tmp_path: Path) -> None:
    root, bad, good = hostile
    scans = {s: data.scan_split(root, s, validate=False) for s in ("train", "val")}
    assert len(scans["train"].samples) == len(good) + len(bad) + 8
    train_ds = data.DeepfakeDataset(scans["train"].samples, data.build_transform(32, train=True))
    val_ds = data.DeepfakeDataset(scans["val"].samples, data.build_transform(32, train=False))
    result = fit(tiny_model(), train_ds, val_ds, tmp_path, epochs=1, batch_size=len(train_ds), num_workers=0,
                 progress=False, balance="none")  # fmt: skip
    failed = {Path(p).name for p, _ in result.load_errors}
    assert failed == set(bad)
    assert result.history[0]["train_loss"] == result.history[0]["train_loss"]  # finite, not NaN
