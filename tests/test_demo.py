"""Demo dataset: layout, imbalance, determinism, fakes differ from their source."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from deepfake_lib.data.scan import scan_dataset
from deepfake_lib.demo import images as demo
from deepfake_lib.demo import photos
from tests.conftest import tiny_spec


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.jpg")):
        h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def test_default_spec_is_imbalanced_3_to_1() -> None:
    spec = demo.DemoSpec()
    assert spec.counts["train"]["real"] == 3 * spec.counts["train"]["fake"]
    assert set(spec.counts) == {"train", "val", "test"}
    assert 200 <= sum(sum(c.values()) for c in spec.counts.values()) <= 600


def test_layout_and_determinism(tmp_path: Path) -> None:
    a = demo.build_demo_dataset(tmp_path / "a", tiny_spec(real=6, fake=2))
    b = demo.build_demo_dataset(tmp_path / "b", tiny_spec(real=6, fake=2))
    scans = scan_dataset(a, ["train", "val", "test"])
    assert all(s.counts == {"real": 6, "fake": 2} for s in scans.values())
    assert _digest(a) == _digest(b)
    c = demo.build_demo_dataset(tmp_path / "c", tiny_spec(real=6, fake=2, seed=1))
    assert _digest(a) != _digest(c)


def test_rebuild_is_skipped_when_manifest_matches(tmp_path: Path) -> None:
    out = demo.build_demo_dataset(tmp_path / "d", tiny_spec(real=2, fake=1))
    marker = out / "train" / "real" / "real_0000.jpg"
    mtime = marker.stat().st_mtime_ns
    demo.build_demo_dataset(out, tiny_spec(real=2, fake=1))
    assert marker.stat().st_mtime_ns == mtime


def test_refuses_to_overwrite_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        demo.build_demo_dataset(tmp_path / "mine", tiny_spec(real=1, fake=1))
    assert (tmp_path / "mine" / "precious.txt").exists()


def test_self_blend_changes_a_soft_region_only() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    fake = photos.blend_perturbed(img, np.random.default_rng(1))
    diff = np.abs(fake.astype(int) - img.astype(int)).sum(axis=2)
    changed = (diff > 10).mean()
    assert fake.shape == img.shape and fake.dtype == np.uint8
    assert 0.02 < changed < 0.95  # a blended region, not the whole image and not nothing
    mask = photos.blend_mask(64, np.random.default_rng(2))
    assert mask.min() >= 0 and mask.max() <= 1 and 0 < mask.mean() < 1
