"""Issue 6, point 2: dataset structure errors are reported with what to fix, before any training starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from deepfake_lib import data
from deepfake_lib.training.loop import fit
from tests.conftest import tiny_model


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
