"""Notebooks 01 and 02 on tiny generated data (the shared pipeline run; a bad layout: test_pipeline)."""

from __future__ import annotations

import pytest

from deepfake_lib.model import load_checkpoint
from deepfake_lib.runs import read_json
from tests.conftest import NotebookRun

pytestmark = pytest.mark.slow


def test_01_and_02(notebook_run: NotebookRun) -> None:
    run_dir = notebook_run.root  # the shared pipeline run (SAMPLES_PER_CLASS 3, EPOCHS 2, IMAGE_SIZE 32)
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["data"]["counts"]["train"] == {"real": 12, "fake": 4}
    assert metrics["data"]["imbalance_ratio"]["train"] == 3.0
    assert metrics["data"]["oversampling"]["epoch_size"] == 16
    assert read_json(run_dir / "data_report.json")["val"]["skipped"] == 0
    for fig in ("01_class_balance", "01_sample_grid"):
        assert (run_dir / "figures" / f"{fig}.png").stat().st_size > 1000

    train = metrics["train"]
    assert len(train["history"]) == 2
    assert {"train_loss", "val_loss", "val_auc", "train_images_per_s"} <= set(train["history"][0])
    ckpt = load_checkpoint(run_dir / "checkpoints" / "best_model.pth")
    assert ckpt["config"]["image_size"] == 32 and ckpt["epoch"] == train["best_epoch"]
    assert (run_dir / "checkpoints" / "last.pth").exists()
    assert (run_dir / "figures" / "02_training_curves.png").stat().st_size > 1000
