"""Notebook 07 and the frequency branch through the pipeline on tiny data: the spectra figures, the spectral
baseline next to the detector (in 03 and 07, with the same numbers), the inspector, and a model trained with the
frequency branch going through evaluation, Grad-CAM and 07."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from deepfake_lib.core.runs import read_json
from deepfake_lib.models.checkpoint import load_checkpoint
from deepfake_lib.report.summary import write_summary
from tests.conftest import NOTEBOOK_RUN_PARAMS, NotebookRun

pytestmark = pytest.mark.slow
FIGURES = ("07_mean_spectra", "07_radial_spectra", "07_roc_baseline_vs_detector")


def _inspector_views(notebook: Path) -> list[dict]:
    """Widget outputs of the cell that builds the ``SpectrumInspector``."""
    nb = nbformat.read(notebook, as_version=4)
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and "SpectrumInspector(" in c.source]
    return [o for o in cell.outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]


def test_07_shows_the_spectra_and_the_baseline_next_to_the_detector(notebook_run: NotebookRun) -> None:
    run = notebook_run.root
    metrics = read_json(run / "metrics.json")
    freq = metrics["frequency"]
    assert freq["spectra_split"] == "train" and freq["image_size"] == 32 and freq["skipped"] == 0
    assert freq["n"] == {"REAL": 12, "FAKE": 4}
    assert [b["band"] for b in freq["bands"]] == ["low", "mid", "high"]
    assert all(isinstance(b["fake_minus_real"], float) for b in freq["bands"])
    scorings = freq["report"]
    assert set(scorings) == {"spectral baseline", "detector"}
    for row in scorings.values():
        assert row["n"] == 16 and 0.0 <= row["auc"] <= 1.0 and 0.0 <= row["balanced_accuracy"] <= 1.0
    # 03 fitted the same baseline on the same splits: the same numbers
    base03 = metrics["spectral_baseline"]
    assert base03["report"]["auc"] == pytest.approx(scorings["spectral baseline"]["auc"])
    assert base03["threshold"] == pytest.approx(scorings["spectral baseline"]["threshold"])
    assert base03["comparison"]["auc"]["detector"] == pytest.approx(metrics["evaluate"]["report"]["auc"])
    assert base03["n"] == {"train": 16, "val": 16, "test": 16} and base03["image_size"] == 32
    # the detector in 07 is the fine-tuned model when 04 kept one, else best_model.pth (03's numbers)
    if metrics["finetune"]["status"] != "done":
        assert scorings["detector"]["auc"] == pytest.approx(metrics["evaluate"]["report"]["auc"])
    for name in FIGURES:
        assert (run / "figures" / f"{name}.png").stat().st_size > 5000, name
    summary = write_summary(run).read_text()
    assert all(f"figures/{name}.png" in summary for name in FIGURES)
    assert "## Baseline: spectral classifier" in summary
    assert sorted(p.name for p in (run / "frequency").glob("*.npz")) == [
        "spectra_test_32_gray.npz", "spectra_train_32_gray.npz", "spectra_val_32_gray.npz",
    ]  # fmt: skip
    (view,) = _inspector_views(run / "executed" / "07_frequency.ipynb")  # the inspector was built
    assert "(FAKE)" in view["data"]["text/plain"]


@pytest.fixture(scope="module")
def branch_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from deepfake_lib import pipeline

    params = {**NOTEBOOK_RUN_PARAMS, "FREQUENCY_BRANCH": True, "LINEAR_PROBE": False, "ROBUSTNESS": False}
    return pipeline.run_pipeline(
        params, steps="02,03,05,07", run_id="branch", runs_dir=tmp_path_factory.mktemp("branch_run"),
        data_dir=tiny_data, log=lambda *a, **k: None,
    )  # fmt: skip


def test_a_model_with_the_frequency_branch_trains_evaluates_and_explains(branch_run: Path) -> None:
    ckpt = load_checkpoint(branch_run / "checkpoints" / "best_model.pth")
    assert ckpt["config"]["frequency_branch"] is True
    assert float(ckpt["state_dict"]["frequency.norm.count"]) > 0  # statistics of the training frames
    metrics = read_json(branch_run / "metrics.json")
    assert 0.0 <= metrics["evaluate"]["report"]["auc"] <= 1.0
    assert metrics["spectral_baseline"]["report"]["auc"] >= 0.0
    assert metrics["linear_probe"]["status"].startswith("skipped")
    assert (branch_run / "figures" / "05_gradcam_grid.png").is_file()
    assert metrics["frequency"]["report"]["detector"]["auc"] == pytest.approx(metrics["evaluate"]["report"]["auc"])
