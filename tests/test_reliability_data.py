"""Issue 6, points 1-2: hostile images through scanning, the dataset and training; dataset structure errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from deepfake_lib import data
from deepfake_lib.images import load_image
from deepfake_lib.train import fit
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


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda r: (r / "train" / "real").mkdir(parents=True), "missing class folder(s) fake"),
        (lambda r: (r / "train" / "FAKE").mkdir(parents=True), "missing class folder(s) real"),
        (lambda r: r.mkdir(), "split folder"),
    ],
)
def test_structure_errors_say_what_to_fix(tmp_path: Path, build, message: str) -> None:
    root = tmp_path / "data"
    build(root)
    with pytest.raises(data.DataLayoutError) as err:
        data.scan_split(root, "train")
    assert message in str(err.value) and "real" in str(err.value) and "fake" in str(err.value)


def test_one_class_only_is_refused_before_training(tmp_path: Path) -> None:
    for label in ("real", "fake"):
        (tmp_path / "train" / label).mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (32, 32)).save(tmp_path / "train" / "real" / f"{i}.png")
    scan = data.scan_split(tmp_path, "train")
    assert scan.warnings and "fake" in scan.warnings[0]
    ds = data.DeepfakeDataset(scan.samples, data.build_transform(32, train=False))
    for balance in ("oversample", "weight", "none"):
        with pytest.raises(data.DataLayoutError, match="no FAKE|one class"):
            fit(tiny_model(), ds, ds, tmp_path / "run", epochs=1, balance=balance, num_workers=0, progress=False)
    assert not (tmp_path / "run" / "checkpoints" / "last.pth").exists()


def test_duplicate_class_folders_in_different_case_are_an_error(tmp_path: Path) -> None:
    for name in ("real", "REAL", "fake"):
        (tmp_path / "train" / name).mkdir(parents=True)
    with pytest.raises(data.DataLayoutError, match="several folders for class 'real'"):
        data.scan_split(tmp_path, "train")
