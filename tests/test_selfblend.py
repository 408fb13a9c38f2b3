"""Training modes with self-blended pseudo-fakes: datasets, landmarks and their cache, training without fakes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from deepfake_lib import FAKE, REAL
from deepfake_lib.data import selfblend
from deepfake_lib.data.faces import Face
from deepfake_lib.data.scan import DataLayoutError, Sample, scan_dataset, scan_split
from deepfake_lib.data.transforms import build_transform
from deepfake_lib.training.loop import fit
from tests.conftest import TINY_SIZE, tiny_model


def real_only_copy(src: Path, dst: Path) -> Path:
    """``src``'s train and val REAL folders only: a data folder with no fakes at all."""
    for split in ("train", "val"):
        shutil.copytree(src / split / "real", dst / split / "real")
    return dst


class CountingDetector:
    """A stand-in for ``faces.FaceDetector``: one face with fixed landmarks per image, counting the images seen."""

    def __init__(self) -> None:
        self.seen = 0

    def detect_batch(self, images: list[Image.Image]) -> list[list[Face]]:
        self.seen += len(images)
        out = []
        for img in images:
            w, h = img.size
            marks = tuple((x * w, y * h) for x, y in ((0.3, 0.4), (0.7, 0.4), (0.5, 0.55), (0.35, 0.7), (0.65, 0.7)))
            out.append([Face((0.0, 0.0, float(w), float(h)), 0.99, marks)])
        return out


def test_modes_and_their_classes() -> None:
    assert selfblend.required_classes("self-blended") == ("real",)
    assert selfblend.required_classes("labelled") == ("real", "fake") == selfblend.required_classes("both")
    labels = [REAL, REAL, REAL, FAKE]
    assert selfblend.training_labels(labels, "labelled") == labels
    assert selfblend.training_labels(labels, "self-blended") == [REAL] * 3 + [FAKE] * 3
    assert selfblend.training_labels(labels, "both") == labels + [FAKE] * 3
    with pytest.raises(ValueError, match="FAKES must be one of 'labelled', 'self-blended', 'both'"):
        selfblend.check_fakes_mode("synthetic")


@pytest.mark.parametrize(
    ("mode", "train_counts", "val_counts"),
    [
        ("labelled", (12, 4, 0), (12, 4, 0)),
        ("self-blended", (12, 0, 12), (12, 0, 12)),
        ("both", (12, 4, 12), (12, 4, 12)),
    ],
)
def test_training_sets_per_mode(tiny_data: Path, mode: str, train_counts: tuple, val_counts: tuple) -> None:
    scans = scan_dataset(tiny_data, ["train", "val"])
    train, val = selfblend.training_sets(scans["train"].samples, scans["val"].samples, mode, TINY_SIZE)
    record = selfblend.fakes_record(mode, train, val, {})
    for ds, want, split in ((train, train_counts, "train"), (val, val_counts, "val")):
        got = record[split]
        assert (got["real"], got["labelled_fake"], got["pseudo_fake"]) == want
        assert len(ds) == sum(want) == len(ds.labels) == len(ds.lengths)
        assert ds.labels.count(FAKE) == want[1] + want[2]
    if mode != "labelled":
        item = train[len(train) - 1]
        assert item["y"] == FAKE and item["path"].endswith(selfblend.PSEUDO_TAG)
        assert item["x"].shape == (1, 3, TINY_SIZE, TINY_SIZE)
        assert all(s.label == REAL for s in train.sources)


def test_validation_pseudo_fakes_are_fixed_and_training_ones_follow_the_seed(tiny_data: Path) -> None:
    scans = scan_dataset(tiny_data, ["train", "val"])
    train, val = selfblend.training_sets(
        scans["train"].samples, scans["val"].samples, "self-blended", TINY_SIZE, seed=5
    )
    i = len(val.samples)
    torch.manual_seed(0)
    a = val[i]["x"]
    torch.manual_seed(1)
    assert torch.equal(a, val[i]["x"])  # validation: the same pseudo-fake whatever the RNG state
    j = len(train.samples)
    draws = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        draws.append(train[j]["x"])
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])


def test_pseudo_fake_of_a_clip_blends_every_frame_alike(tiny_video_clips: Path) -> None:
    scan = scan_split(tiny_video_clips, "train", validate=False)
    clip = next(s for s in scan.samples if s.label == REAL and s.path.is_dir())
    ds = selfblend.SelfBlendedDataset([], [clip], build_transform(TINY_SIZE, train=False), fixed_seed=0)
    frames, fakes = ds.pseudo_fake(0)
    assert len(frames) == len(fakes) > 1
    for f in fakes[1:]:
        np.testing.assert_array_equal(f.mask, fakes[0].mask)
        assert (f.region, f.ratio, f.altered) == (fakes[0].region, fakes[0].ratio, fakes[0].altered)
    assert ds[0]["x"].shape == (len(frames), 3, TINY_SIZE, TINY_SIZE)


def test_unreadable_source_is_reported_not_raised(tmp_path: Path) -> None:
    bad = tmp_path / "real" / "broken.jpg"
    bad.parent.mkdir()
    bad.write_bytes(b"not an image")
    ds = selfblend.SelfBlendedDataset([], [Sample(bad, REAL)], build_transform(TINY_SIZE, train=False))
    path, reason = ds[0]["error"]
    assert path.endswith(selfblend.PSEUDO_TAG) and "broken.jpg" in path and reason


def test_fake_sources_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="REAL samples only"):
        selfblend.SelfBlendedDataset([], [Sample(tmp_path / "x.jpg", FAKE)], None)


def test_landmarks_are_cached_by_file(tmp_path: Path) -> None:
    paths = []
    for i in range(3):
        p = tmp_path / f"face{i}.png"
        Image.fromarray(np.full((40, 50, 3), 60 * i, dtype=np.uint8)).save(p)
        paths.append(p)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"")
    cache = tmp_path / "cache" / "landmarks.json"
    det = CountingDetector()
    first = selfblend.find_landmarks([*paths, broken], cache, detector=det, progress=False)
    assert det.seen == 3 and first[str(broken)] is None
    np.testing.assert_allclose(first[str(paths[0])][0], [0.3, 0.4])  # fractions of width and height
    again = selfblend.find_landmarks([*paths, broken], cache, detector=det, progress=False)
    assert det.seen == 3  # all from the cache (the broken file has no entry and no image to detect on)
    for p in paths:
        np.testing.assert_allclose(again[str(p)], first[str(p)], atol=1e-5)
    Image.fromarray(np.zeros((40, 40, 3), dtype=np.uint8)).save(paths[1])  # changed: detected again
    selfblend.find_landmarks(paths, cache, detector=det, progress=False)
    assert det.seen == 4
    cache.write_text("{not json")  # damaged: rebuilt
    selfblend.find_landmarks(paths, cache, detector=det, progress=False)
    assert det.seen == 7
    selfblend.find_landmarks(paths, cache, detector=det, progress=False)
    assert det.seen == 7


def test_mtcnn_landmarks_of_a_real_face(tmp_path: Path) -> None:
    path = tmp_path / "astronaut.png"
    Image.fromarray(skdata.astronaut()).crop((150, 30, 300, 205)).save(path)
    points = selfblend.find_landmarks([path], progress=False)[str(path)]
    assert points is not None and points.shape == (5, 2)
    left_eye, right_eye, nose, mouth_l, mouth_r = points
    assert left_eye[0] < right_eye[0] and mouth_l[0] < mouth_r[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_l[1], mouth_r[1])
    rows = selfblend.preview([Sample(path, REAL)], n=1, seed=0)
    assert rows and rows[0].detected and rows[0].fake.image.shape == rows[0].real.shape


def test_scan_without_fake_folders(tiny_data: Path, tmp_path: Path) -> None:
    data = real_only_copy(tiny_data, tmp_path / "reals")
    with pytest.raises(DataLayoutError, match="missing class folder"):
        scan_split(data, "train")
    scan = scan_split(data, "train", required=("real",))
    assert scan.counts == {"real": 12, "fake": 0}
    assert any("no 'fake' folder" in w for w in scan.warnings)


def test_self_blended_training_needs_no_fakes(tiny_data: Path, tmp_path: Path) -> None:
    data = real_only_copy(tiny_data, tmp_path / "reals")
    scans = scan_dataset(data, ["train", "val"], required=selfblend.required_classes("self-blended"))
    run = tmp_path / "run"
    train, val, record = selfblend.datasets_for(scans, "self-blended", TINY_SIZE, run, seed=0, device="cpu",
                                                progress=False)  # fmt: skip
    assert record["train"] == {"real": 12, "labelled_fake": 0, "pseudo_fake": 12}
    assert (run / "blend" / selfblend.LANDMARKS_FILE).is_file()
    result = fit(tiny_model(calibrate=False), train, val, run, epochs=2, batch_size=8, progress=False, device="cpu",
                 num_workers=0, checkpoint_extra={"fakes": "self-blended"})  # fmt: skip
    assert len(result.history) == 2 and result.best_path.is_file()
    assert all(np.isfinite(row["val_auc"]) for row in result.history)  # both classes in validation
    ckpt = torch.load(result.best_path, weights_only=True)
    assert ckpt["fakes"] == "self-blended"


def test_labelled_training_without_fakes_says_what_to_do(tiny_data: Path, tmp_path: Path) -> None:
    data = real_only_copy(tiny_data, tmp_path / "reals")
    with pytest.raises(DataLayoutError, match="missing class folder"):
        scan_dataset(data, ["train", "val"], required=selfblend.required_classes("labelled"))
