"""Papermill smoke run of notebook 05 (Grad-CAM grid and inspector) on tiny data."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from deepfake_lib.core.runs import read_json, write_json
from deepfake_lib.evaluation.evaluate import find_failures, predict_split
from deepfake_lib.predict.predictors import Predictor

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_05_saves_the_grid_and_builds_the_inspector(tiny_data: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    shutil.copy(tiny_checkpoint, run_dir / "checkpoints" / "best_model.pth")
    # a stale failures.json of another model/split must not be shown as this model's failures
    write_json(run_dir / "failures.json", {"split": "train", "failures": [{"path": "elsewhere.jpg"}]})
    out = run_dir / "executed" / "05_gradcam.ipynb"
    out.parent.mkdir(parents=True)
    pm.execute_notebook(
        ROOT / "notebooks" / "05_gradcam.ipynb",
        out,
        parameters={"DATA_DIR": str(tiny_data), "RUN_DIR": str(run_dir), "N_PER_GROUP": 2, "DEVICE": "cpu"},
        kernel_name="python3",
        cwd=ROOT,
        progress_bar=False,
    )
    assert (run_dir / "figures" / "05_gradcam_grid.png").stat().st_size > 5000
    section = read_json(run_dir / "metrics.json")["gradcam"]
    predictor = Predictor.from_checkpoint(tiny_checkpoint, "cpu")
    expected = find_failures(predict_split(predictor.model, tiny_data, "val", progress=False), predictor.threshold)
    assert len(expected) >= 2 and section["n_failures"] == len(expected)
    assert section["checkpoint"] == str(run_dir / "checkpoints" / "best_model.pth")
    failed_paths = {f["path"] for f in expected}
    for e in section["examples"]:  # real/fake rows show correctly classified images, "failed" rows the others
        assert e["group"] in ("real", "fake", "failed") and (e["group"] == "failed") == (e["path"] in failed_paths)
    failed = [e["path"] for e in section["examples"] if e["group"] == "failed"]
    assert failed == [f["path"] for f in expected[:2]]  # the hardest two, in order
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    inspector_cell = next(c for c in nb.cells if "Inspector(" in c.source)
    views = [o for o in inspector_cell.outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert views, "the inspector widget was displayed"
