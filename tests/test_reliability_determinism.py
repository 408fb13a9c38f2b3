"""Issue 6, point 5: the same seed and data give the same metrics on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepfake_lib.core.runs import read_json
from deepfake_lib.evaluation.evaluate import predict_split
from deepfake_lib.models.checkpoint import load_model
from tests.test_reliability_resume import train_run


def test_same_seed_same_data_same_metrics(tiny_data: Path, tmp_path: Path) -> None:
    a = train_run(str(tiny_data), str(tmp_path / "a"), epochs=2)
    b = train_run(str(tiny_data), str(tmp_path / "b"), epochs=2)
    strip = lambda h: {k: v for k, v in h.items() if k not in ("train_images_per_s", "epoch_seconds")}  # noqa: E731
    assert [strip(h) for h in a.history] == [strip(h) for h in b.history]
    assert read_json(tmp_path / "a" / "history.json")[-1]["val_loss"] == b.history[-1]["val_loss"]
    preds = [predict_split(load_model(tmp_path / r / "checkpoints" / "best_model.pth")[0], tiny_data, "test",
                           progress=False) for r in ("a", "b")]  # fmt: skip
    assert preds[0].paths == preds[1].paths and np.array_equal(preds[0].probs, preds[1].probs)
