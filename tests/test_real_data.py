"""Checks on the real face-forgery set in ``../shared/data/real_and_fake_face`` (skipped when it is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepfake_lib.core.images import load_image
from deepfake_lib.data.faces import FaceDetector
from deepfake_lib.data.scan import scan_dataset
from deepfake_lib.prepare import dataset as prepare
from deepfake_lib.prepare.splits import is_flat_layout

REAL_SET = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_and_fake_face"
pytestmark = pytest.mark.skipif(not (REAL_SET / "real").is_dir(), reason=f"{REAL_SET} not present")


def test_mtcnn_finds_the_face_in_real_and_photoshopped_images() -> None:
    detector = FaceDetector(device="cpu")
    files = sorted((REAL_SET / "real").glob("*.jpg"))[:6] + sorted((REAL_SET / "fake").glob("*.jpg"))[:6]
    for path in files:
        faces = detector.detect(load_image(path))
        assert faces, path
        x1, y1, x2, y2 = faces[0].box
        assert (x2 - x1) > 60 and (y2 - y1) > 60, path  # the face fills most of the 160 x 160 photo


def test_the_flat_set_splits_by_regex_without_leakage(tmp_path: Path) -> None:
    assert is_flat_layout(REAL_SET)
    prep = prepare.prepare_data(REAL_SET, tmp_path, group_regex=r"^(?:easy|mid|hard)_(\d+)_", progress=False)
    scans = scan_dataset(prep.data_dir, ["train", "val", "test"], validate=False)
    total = sum(len(s.samples) for s in scans.values())
    assert total == len(list(REAL_SET.glob("*/*.jpg")))
    for split, frac in zip(("train", "val", "test"), (0.7, 0.15, 0.15), strict=True):
        assert abs(len(scans[split].samples) / total - frac) < 0.02, split
        assert min(scans[split].counts.values()) > 0
