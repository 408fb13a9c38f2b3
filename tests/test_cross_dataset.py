"""Cross-dataset evaluation: extra {real,fake} folders scored with the run's checkpoint and threshold."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from deepfake_lib.data.scan import DataLayoutError, scan_split
from deepfake_lib.evaluation import cross_dataset as cd
from deepfake_lib.evaluation.evaluate import predict_samples
from deepfake_lib.evaluation.metrics import full_metrics
from deepfake_lib.models.checkpoint import load_model


def test_a_folder_or_its_test_split(tiny_data: Path, tmp_path: Path) -> None:
    assert cd.resolve_extra_dir(tiny_data) == tiny_data / "test"
    assert cd.resolve_extra_dir(tiny_data / "val") == tiny_data / "val"
    (tmp_path / "only_real" / "real").mkdir(parents=True)
    with pytest.raises(DataLayoutError, match=r"expected real/ and fake/ folders .*; found real"):
        cd.resolve_extra_dir(tmp_path / "only_real")
    with pytest.raises(DataLayoutError, match="not found"):
        cd.resolve_extra_dir(tmp_path / "missing")


def test_face_settings_follow_the_checkpoint() -> None:
    trained = {"faces": {"margin": 1.5, "size": 160, "keep": "largest", "min_score": 0.95}}
    assert cd.face_settings("auto", trained) == trained["faces"]
    assert cd.face_settings("auto", {}) is None
    assert cd.face_settings(False, trained) is None
    assert cd.face_settings(True, {}) == {"margin": 1.3, "size": 224, "keep": "largest", "min_score": 0.9}
    with pytest.raises(ValueError, match="EXTRA_TEST_FACES"):
        cd.face_settings("yes", {})


def test_extra_folders_are_scored_at_the_given_threshold(
    tiny_checkpoint: Path, tiny_data: Path, tmp_path: Path
) -> None:
    model, ckpt = load_model(tiny_checkpoint, "cpu")
    other = tmp_path / "other" / "test"
    shutil.copytree(tiny_data / "test", other)
    (other / "fake" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    results = cd.score_extra_dirs(model, [tiny_data, tmp_path / "other"], 0.47, tmp_path / "run", "auto", ckpt,
                                  batch_size=8, progress=False)  # fmt: skip
    assert [r.name for r in results] == ["data/test", "other/test"]
    direct = predict_samples(model, scan_split(tiny_data, "test", validate=False).samples, batch_size=8, progress=False)
    want = full_metrics(direct.labels, direct.probs, 0.47)
    first = results[0]
    assert first.faces is None and first.left_out == []
    for key in ("n_real", "n_fake", "auc", "balanced_accuracy", "eer"):
        assert first.report[key] == pytest.approx(want[key])
    assert first.report["threshold"] == 0.47
    second = results[1].row()
    assert (second["n_real"], second["n_fake"]) == (12, 4)  # the broken file is left out and listed
    assert second["n_left_out"] == 1 and "broken.jpg" in second["left_out"][0]["path"]
    table = cd.cross_dataset_table("test", want, results)
    assert list(table.index) == ["test (in-domain)", "data/test", "other/test"]
    assert table.loc["data/test", "auc"] == pytest.approx(want["auc"])
    record = cd.cross_dataset_record("test", want, 0.47, results, "auto")
    assert record["threshold"] == 0.47 and len(record["sets"]) == 2
    assert cd.cross_dataset_record("test", want, 0.47, [], "auto")["status"] == "skipped"
    scores = cd.roc_scores("test", direct, results)
    assert list(scores) == ["test (in-domain)", "data/test", "other/test"]


def test_face_crops_for_a_face_model_and_a_folder_without_faces(
    tiny_checkpoint: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """The demo's photo crops hold no usable faces (the padded second look finds the astronaut's, cut by the edge,
    in one 32 px crop, too small to score): the files are left out with the reason, and the row says so."""
    model, ckpt = load_model(tiny_checkpoint, "cpu")
    ckpt = {**ckpt, "faces": {"margin": 1.3, "size": 32, "keep": "largest", "min_score": 0.9}}
    [result] = cd.score_extra_dirs(model, [tiny_data / "test"], 0.5, tmp_path / "run", "auto", ckpt, progress=False)
    assert result.faces is not None and len(result.preds) == 0
    assert result.row()["n_left_out"] >= 15
    assert any("no face" in r for _, r in result.left_out)
    assert math.isnan(result.report["auc"])
    assert (tmp_path / "run" / "extra_test").is_dir()
    assert np.isnan(cd.cross_dataset_table("test", {}, [result]).loc["data/test", "auc"])
