"""Papermill smoke run of notebook 05 (Grad-CAM grid and inspector) on tiny data."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from deepfake_lib.runs import read_json, write_json

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_05_saves_the_grid_and_builds_the_inspector(tiny_data: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    shutil.copy(tiny_checkpoint, run_dir / "checkpoints" / "best_model.pth")
    val = tiny_data / "val"
    failures = [
        {"path": str(val / "fake" / "fake_0001.jpg"), "label": 1, "probability": 0.2, "predicted": 0},
        {"path": str(val / "real" / "real_0004.jpg"), "label": 0, "probability": 0.8, "predicted": 1},
    ]
    write_json(run_dir / "failures.json", failures)
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
    assert section["n_failures"] == 2 and section["failures_source"] == str(run_dir / "failures.json")
    assert section["checkpoint"] == str(run_dir / "checkpoints" / "best_model.pth")
    groups = [e["group"] for e in section["examples"]]
    assert groups == ["real", "real", "fake", "fake", "failed", "failed"]
    failed = {Path(e["path"]).name for e in section["examples"] if e["group"] == "failed"}
    assert failed == {"fake_0001.jpg", "real_0004.jpg"}
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    inspector_cell = next(c for c in nb.cells if "Inspector(" in c.source)
    views = [o for o in inspector_cell.outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert views, "the inspector widget was displayed"
