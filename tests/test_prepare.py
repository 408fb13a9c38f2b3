"""Data preparation: a flat folder of face photos -> face crops -> leak-free splits -> the whole pipeline."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance
from skimage import data as skdata

from deepfake_lib.cli import pipeline as pipeline_cli
from deepfake_lib.cli import prepare as prepare_cli
from deepfake_lib.core.runs import read_json, write_json
from deepfake_lib.data.scan import scan_dataset
from deepfake_lib.demo.photos import blend_perturbed
from deepfake_lib.models.checkpoint import load_checkpoint
from deepfake_lib.prepare import dataset as prepare
from deepfake_lib.prepare.leakage import check_no_leakage

N_PER_CLASS = 8


def _face_photo(i: int, rng: np.random.Generator) -> Image.Image:
    """A 112 px crop around the astronaut's face, shifted, scaled, flipped and re-lit a little per ``i``."""
    img = Image.fromarray(skdata.astronaut())
    side = int(rng.integers(170, 230))
    cx, cy = 225 + int(rng.integers(-15, 16)), 118 + int(rng.integers(-15, 16))
    crop = img.crop((cx - side // 2, cy - side // 2, cx + side // 2, cy + side // 2)).resize((112, 112))
    if i % 2:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return ImageEnhance.Brightness(crop).enhance(float(rng.uniform(0.8, 1.2)))


@pytest.fixture(scope="module")
def flat_faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<tmp>/flat/{real,fake}``: astronaut-face photos; the fakes are self-blended copies (ids 0..7 each),
    plus one photo without a face in each class."""
    root = tmp_path_factory.mktemp("prep") / "flat"
    rng = np.random.default_rng(0)
    for name in ("real", "fake"):
        (root / name).mkdir(parents=True)
    for i in range(N_PER_CLASS):
        photo = _face_photo(i, rng)
        photo.save(root / "real" / f"id{i}_real.jpg", quality=95)
        fake = blend_perturbed(np.asarray(photo), rng)
        Image.fromarray(fake).save(root / "fake" / f"id{i}_fake.jpg", quality=95)
    for name in ("real", "fake"):
        Image.fromarray(skdata.coffee()).resize((112, 80)).save(root / name / "coffee.jpg")
    return root


def test_flat_folder_to_face_crops_and_grouped_splits(flat_faces: Path, tmp_path: Path) -> None:
    before = sorted((p.relative_to(flat_faces), p.stat().st_mtime_ns) for p in flat_faces.rglob("*") if p.is_file())
    prep = prepare.prepare_data(
        flat_faces, tmp_path / "prepared", faces=True, face_size=48, split_fractions=[0.5, 0.25, 0.25],
        group_regex=r"^id(\d+)_", progress=False,
    )  # fmt: skip
    assert prep.steps == ["faces", "splits"]
    assert prep.faces["crops"] == 2 * N_PER_CLASS and prep.faces["with_face"] == 2 * N_PER_CLASS
    left_out = {Path(r["path"]).name: r["reason"] for r in prep.faces["left_out"]}
    assert set(left_out) == {"coffee.jpg"} and "no face" in left_out["coffee.jpg"]
    scans = scan_dataset(prep.data_dir, ["train", "val", "test"])
    assert sum(len(s.samples) for s in scans.values()) == 2 * N_PER_CLASS
    for scan in scans.values():
        assert min(scan.counts.values()) >= 1
        for s in scan.samples:
            with Image.open(s.path) as im:
                assert im.size == (48, 48)
    # the user's group key survives the crop: a real photo and its self-blended fake share an id and a split
    with open(prep.data_dir / "split_manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    check_no_leakage(rows)
    split_of_id: dict[str, set[str]] = {}
    for r in rows:
        split_of_id.setdefault(Path(r["path"]).name.split("_")[0], set()).add(r["split"])
    assert len(split_of_id) == N_PER_CLASS and all(len(s) == 1 for s in split_of_id.values())
    # recorded for training and prediction; the source is untouched
    assert prepare.preparation_of(prep.data_dir)["steps"] == ["faces", "splits"]
    assert prepare.checkpoint_info(prep.data_dir) == {"faces": {"margin": 1.3, "size": 48, "keep": "largest",
                                                                "min_score": 0.9}}  # fmt: skip
    assert prepare.checkpoint_info(flat_faces) == {}
    after = sorted((p.relative_to(flat_faces), p.stat().st_mtime_ns) for p in flat_faces.rglob("*") if p.is_file())
    assert after == before

    again = prepare.prepare_data(
        flat_faces, tmp_path / "prepared", faces=True, face_size=48, split_fractions=[0.5, 0.25, 0.25],
        group_regex=r"^id(\d+)_", progress=False,
    )  # fmt: skip
    assert again.data_dir == prep.data_dir and again.faces["skipped_cached"] == 2 * N_PER_CLASS + 2
    assert again.splits["reused"]


def test_a_group_csv_of_the_original_files_survives_the_face_crop(flat_faces: Path, tmp_path: Path) -> None:
    csv_path = tmp_path / "groups.csv"
    lines = ["path,person"] + [f"{c}/id{i}_{c}.jpg,person{i % 3}" for i in range(N_PER_CLASS) for c in ("real", "fake")]
    csv_path.write_text("\n".join(lines) + "\n")
    prep = prepare.prepare_data(
        flat_faces, tmp_path / "prepared", faces=True, face_size=32, split_fractions=[0.5, 0.25, 0.25],
        group_csv=str(csv_path), group_column="person", progress=False,
    )  # fmt: skip
    with open(prep.data_dir / "split_manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["group"] for r in rows} == {"person0", "person1", "person2"}
    assert prep.splits["n_groups"] == {"train": 1, "val": 1, "test": 1}


def test_layout_choices_and_errors(flat_faces: Path, tiny_data: Path, tmp_path: Path) -> None:
    # already split, no faces: nothing to do, the folder itself is used
    same = prepare.prepare_data(tiny_data, tmp_path / "p1")
    assert same.data_dir == tiny_data and same.steps == [] and not (tmp_path / "p1").exists()
    with pytest.raises(prepare.PrepareError, match="not a flat"):
        prepare.prepare_data(tiny_data, tmp_path / "p2", make_splits=True)
    with pytest.raises(prepare.PrepareError, match="MAKE_SPLITS = 'auto'"):
        prepare.prepare_data(flat_faces, tmp_path / "p3", make_splits=False)
    with pytest.raises(prepare.PrepareError, match="not found"):
        prepare.prepare_data(tmp_path / "missing")
    split = prepare.prepare_data(flat_faces, tmp_path / "p4", split_fractions=[0.5, 0.25, 0.25], progress=False)
    assert split.steps == ["splits"] and split.data_dir.parent == tmp_path / "p4"
    # a different fraction is a different folder, never a silent overwrite of the first
    other = prepare.prepare_data(flat_faces, tmp_path / "p4", split_fractions=[0.6, 0.2, 0.2], progress=False)
    assert other.data_dir != split.data_dir
    assert prepare_cli.main([str(tiny_data), "--no-splits", "--out", str(tmp_path / "p5")]) == 0
    assert prepare_cli.main([str(flat_faces), "--no-splits", "--out", str(tmp_path / "p5")]) == 2


def test_later_notebooks_read_what_01_prepared(tmp_path: Path) -> None:
    run, src, prepared = tmp_path / "run", tmp_path / "flat", tmp_path / "prepared"
    assert prepare.data_dir_for_run(src, run) == src  # nothing recorded yet
    write_json(run / "metrics.json", {"data": {"source_dir": str(src), "data_dir": str(prepared)}})
    assert prepare.data_dir_for_run(src, run) == prepared
    assert prepare.data_dir_for_run(tmp_path / "other", run) == tmp_path / "other"


@pytest.mark.slow
def test_pipeline_from_a_flat_folder_with_faces(flat_faces: Path, tmp_path: Path, capsys) -> None:
    params = {
        "FACES": "True", "SPLIT_FRACTIONS": "[0.5, 0.25, 0.25]", "GROUP_REGEX": "^id(\\d+)_",
        "PREPARED_DIR": str(tmp_path / "prepared"), "IMAGE_SIZE": "32", "EPOCHS": "1", "BATCH_SIZE": "8",
        "PRETRAINED": "False", "NUM_WORKERS": "0", "DEVICE": "cpu", "DEGRADATIONS": "[jpeg:50]",
        "LINEAR_PROBE": "False",
    }  # fmt: skip
    # 01..04: 05 reads its data folder the same way (prepare.data_dir_for_run)
    argv = ["--data", str(flat_faces), "--runs-dir", str(tmp_path / "runs"), "--run-id", "faces", "--steps", "01-04"]
    for k, v in params.items():
        argv += ["-p", k, v]
    assert pipeline_cli.main(argv) == 0, capsys.readouterr().err
    run = tmp_path / "runs" / "faces"
    metrics = read_json(run / "metrics.json")
    data_dir = Path(metrics["data"]["data_dir"])
    assert metrics["data"]["source_dir"] == str(flat_faces) and data_dir.parent == tmp_path / "prepared"
    assert metrics["data"]["prepared"]["steps"] == ["faces", "splits"]
    assert metrics["evaluate"]["report_split"] == "test" and metrics["robustness"]["rows"]
    # every later notebook read the prepared folder, and the checkpoints remember the face crop
    assert metrics["evaluate"]["failures"]["split"] == "train"
    for name in ("best_model.pth", "best_model_finetuned.pth"):
        assert load_checkpoint(run / "checkpoints" / name)["faces"] == {"margin": 1.3, "size": 32, "keep": "largest",
                                                                       "min_score": 0.9}  # fmt: skip
    summary = (run / "summary.md").read_text()
    assert "faces (MTCNN, margin 1.3" in summary and "no group on two sides" in summary


def test_face_crop_size_follows_the_model_input_size() -> None:
    assert prepare.face_crop_size(None, 160) == 160
    assert prepare.face_crop_size(0, 160) is None
    assert prepare.face_crop_size(224, 160) == 224
