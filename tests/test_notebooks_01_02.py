"""Notebooks 01 and 02 on tiny generated data (the shared pipeline run; a bad layout: test_pipeline)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from deepfake_lib.core.runs import read_json
from deepfake_lib.models.checkpoint import load_checkpoint
from tests.conftest import NOTEBOOK_RUN_PARAMS, NotebookRun

pytestmark = pytest.mark.slow


def test_01_and_02(notebook_run: NotebookRun) -> None:
    run_dir = notebook_run.root  # the shared pipeline run (SAMPLES_PER_CLASS 3, EPOCHS 2, IMAGE_SIZE 32)
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["data"]["counts"]["train"] == {"real": 12, "fake": 4}
    assert metrics["data"]["imbalance_ratio"]["train"] == 3.0
    assert metrics["data"]["oversampling"]["epoch_size"] == 16
    assert read_json(run_dir / "data_report.json")["val"]["skipped"] == 0
    assert metrics["fakes"]["mode"] == "labelled"
    assert metrics["fakes"]["train"] == {"real": 12, "labelled_fake": 4, "pseudo_fake": 0}
    for fig in ("01_class_balance", "01_sample_grid", "01_pseudo_fakes"):
        assert (run_dir / "figures" / f"{fig}.png").stat().st_size > 1000

    train = metrics["train"]  # two processes (NUM_PROCESSES 2) of BATCH_SIZE 8
    assert len(train["history"]) == 2 and (train["processes"], train["global_batch_size"]) == (2, 16)
    assert "trained on 2 process(es), global batch 16" in (run_dir / "executed" / "02_train.ipynb").read_text()
    assert {"train_loss", "val_loss", "val_auc", "train_images_per_s"} <= set(train["history"][0])
    ckpt = load_checkpoint(run_dir / "checkpoints" / "best_model.pth")
    assert ckpt["config"]["image_size"] == 32 and ckpt["epoch"] == train["best_epoch"]
    assert ckpt["fakes"] == "labelled"
    assert (run_dir / "checkpoints" / "last.pth").exists()
    assert (run_dir / "figures" / "02_training_curves.png").stat().st_size > 1000


@pytest.fixture(scope="module")
def self_blended_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """01 and 02 with ``FAKES = "self-blended"`` on a copy of the tiny data's REAL folders: no fakes at all."""
    from deepfake_lib import pipeline

    base = tmp_path_factory.mktemp("self_blended_run")
    data = base / "reals"
    for split in ("train", "val"):
        shutil.copytree(tiny_data / split / "real", data / split / "real")
    params = {**NOTEBOOK_RUN_PARAMS, "FAKES": "self-blended", "SPLITS": ["train", "val"]}
    return pipeline.run_pipeline(
        params, steps="01,02", run_id="sbi", runs_dir=base / "runs", data_dir=data, log=lambda *a, **k: None
    )


def test_01_and_02_train_on_real_faces_alone(self_blended_run: Path) -> None:
    metrics = read_json(self_blended_run / "metrics.json")
    assert metrics["data"]["counts"]["train"] == {"real": 12, "fake": 0}
    assert metrics["data"]["oversampling"]["drawn"]["fake"] > 0  # the pseudo-fakes are drawn like fakes
    assert metrics["data"]["oversampling"]["epoch_size"] == 24
    assert metrics["fakes"]["train"] == {"real": 12, "labelled_fake": 0, "pseudo_fake": 12}
    assert metrics["fakes"]["val"] == {"real": 12, "labelled_fake": 0, "pseudo_fake": 12}
    history = metrics["train"]["history"]
    assert len(history) == 2 and all(0.0 <= row["val_auc"] <= 1.0 for row in history)
    assert load_checkpoint(self_blended_run / "checkpoints" / "best_model.pth")["fakes"] == "self-blended"
    assert (self_blended_run / "figures" / "01_pseudo_fakes.png").stat().st_size > 1000
    assert "## Training fakes" in (self_blended_run / "summary.md").read_text()
