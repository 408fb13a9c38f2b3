"""Notebooks 03 and 04 on tiny data (the shared pipeline run), asserting on the files they write."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import papermill as pm
import pytest
import torch

from deepfake_lib.models.checkpoint import load_checkpoint, model_from_checkpoint
from deepfake_lib.report.summary import write_summary
from tests.conftest import NotebookRun

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
METRIC_KEYS = (
    "accuracy", "balanced_accuracy", "fake_recall", "fake_precision", "fake_f1", "real_recall", "real_precision",
    "real_f1", "auc", "average_precision", "eer", "tpr_at_1pct_fpr", "tpr_at_5pct_fpr", "log_loss", "brier", "ece",
)  # fmt: skip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_dir(notebook_run: NotebookRun) -> Path:
    """The shared pipeline run of every notebook on tiny data (see ``conftest.NOTEBOOK_RUN_PARAMS``)."""
    return notebook_run.root


def metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def test_notebooks_are_clean_and_parametrised():
    for name in ("03_evaluate", "04_finetune"):
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        tagged = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
        assert len(tagged) == 1, name
        declared = pm.inspect_notebook(str(NOTEBOOKS / f"{name}.ipynb"))
        assert {"DATA_DIR", "RUN_DIR", "IMAGE_SIZE", "DEVICE", "SEED", "REPO_URL", "MOUNT_DRIVE"} <= set(declared)
        for line in filter(None, map(str.strip, tagged[0]["source"].splitlines())):
            assign, _, comment = line.partition("  # ")
            lhs, _, value = assign.partition(" = ")
            assert lhs.isupper() and lhs.isidentifier(), line
            ast.literal_eval(value)  # a literal, nothing computed
            assert ";" not in comment and "=" not in comment, line
        assert nb["metadata"]["kernelspec"]["name"] == "python3"
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(not c["outputs"] and c["execution_count"] is None for c in code), f"{name} has outputs"
        assert not any(line.lstrip().startswith(("def ", "class ")) for c in code for line in c["source"].splitlines())


def test_03_metrics_threshold_and_figures(run_dir):
    m = metrics(run_dir)
    assert {"data", "train", "evaluate"} <= set(m)
    ev = m["evaluate"]
    assert ev["splits_used"] == {"threshold": "val", "report": "test", "failures": "train"}
    assert ev["report_split"] == "test" and ev["warnings"] == []
    assert set(ev["splits"]) == {"val", "test", "train"}
    report = ev["report"]
    assert report["n"] == 16 and report["n_real"] == 12 and report["n_fake"] == 4 and report["n_skipped"] == 0
    for key in METRIC_KEYS:
        assert isinstance(report[key], float), key
    assert 0.0 <= report["auc"] <= 1.0 and 0.0 <= report["eer"] <= 1.0
    assert sum(map(sum, report["confusion_matrix"]["matrix"])) == 16
    threshold = ev["threshold"]["threshold"]
    assert ev["threshold"]["method"] == "eer" and ev["threshold"]["split"] == "val"
    assert report["threshold"] == pytest.approx(threshold)
    ckpt = load_checkpoint(run_dir / "checkpoints" / "best_model.pth")
    assert ckpt["threshold"] == pytest.approx(threshold)
    assert ckpt["threshold_info"]["chosen_by"] == "evaluation"
    figures = ("confusion_matrix", "roc_curve", "pr_curve", "reliability", "reliability_before_after",
               "score_histogram", "failures")  # fmt: skip
    for fig in figures:
        path = run_dir / "figures" / f"03_{fig}.png"
        assert path.is_file() and path.stat().st_size > 1000, path


def test_03_calibrates_and_checks_the_false_alarm_rate(run_dir):
    """The temperature is fitted on val after TTA, stored, and the threshold is chosen on calibrated scores."""
    ev = metrics(run_dir)["evaluate"]
    fit = ev["calibration"]["fit"]
    assert ev["tta"] == "hflip" and fit["tta"] == "hflip" and fit["split"] == "val" and fit["n"] == 16
    assert fit["temperature"] > 0 and fit["nll_after"] <= fit["nll_before"] + 1e-12
    ckpt = load_checkpoint(run_dir / "checkpoints" / "best_model.pth")
    assert ckpt["temperature"] == pytest.approx(fit["temperature"]) and ckpt["tta"] == "hflip"
    assert ckpt["calibration"]["chosen_by"] == "evaluation"
    for split, table in ev["calibration"]["splits"].items():
        assert set(table) == {"before", "after"} and {"ece", "brier"} <= set(table["after"]), split
    assert ev["calibration"]["splits"]["test"]["after"]["ece"] == pytest.approx(ev["report"]["ece"])
    alarms = ev["false_alarms"]
    assert alarms["threshold_split"] == "val" and alarms["report_split"] == "test"
    assert alarms["report_split_fpr"] == pytest.approx(ev["report"]["fpr"])
    assert alarms["threshold_split_fpr"] == pytest.approx(ev["threshold"]["at_threshold"]["fpr"])


def test_03_cross_dataset_rows(run_dir):
    m = metrics(run_dir)
    cross = m["cross_dataset"]
    threshold = m["evaluate"]["threshold"]["threshold"]
    assert cross["threshold"] == pytest.approx(threshold) and cross["faces"] == "auto"
    assert cross["in_domain"]["name"] == "test"
    assert cross["in_domain"]["auc"] == pytest.approx(m["evaluate"]["report"]["auc"])
    (extra,) = cross["sets"]
    assert extra["name"] == "extra/test" and (extra["n_real"], extra["n_fake"]) == (5, 3)
    assert extra["faces"] is False and extra["n_left_out"] == 0
    assert 0.0 <= extra["auc"] <= 1.0 and 0.0 <= extra["balanced_accuracy"] <= 1.0
    assert (run_dir / "figures" / "03_cross_dataset_roc.png").stat().st_size > 1000
    summary = (run_dir / "summary.md").read_text()
    assert "## Cross-dataset" in summary and "| extra/test | 5 | 3 |" in summary


def test_03_failures_json(run_dir):
    payload = json.loads((run_dir / "failures.json").read_text())
    ev = metrics(run_dir)["evaluate"]
    train = ev["splits"]["train"]
    assert payload["split"] == "train" and payload["n_evaluated"] == 16
    assert payload["threshold"] == pytest.approx(ev["threshold"]["threshold"])
    failures = payload["failures"]
    assert len(failures) == payload["n_failures"] == train["fp"] + train["fn"] == ev["failures"]["count"]
    assert [f["loss"] for f in failures] == sorted((f["loss"] for f in failures), reverse=True)
    for f in failures:
        assert Path(f["path"]).is_file() and "/train/" in f["path"]
        assert f["true_label"] == Path(f["path"]).parent.name and f["predicted_label"] != f["true_label"]
        assert (f["probability"] >= payload["threshold"]) == (f["predicted_label"] == "fake")


def test_03_robustness_record(run_dir):
    m = metrics(run_dir)
    rb, ev = m["robustness"], m["evaluate"]
    assert rb["status"] == "done" and rb["split"] == "test" and rb["threshold_fixed"] is True
    assert rb["threshold"] == pytest.approx(ev["threshold"]["threshold"]) and rb["image_size"] == 32
    assert rb["degradations"] == ["none", "jpeg:50", "blur:1"]
    rows = rb["rows"]
    assert [(r["degradation"], r["severity"]) for r in rows] == [("none", "-"), ("jpeg", 50), ("blur", 1)]
    for row in rows:
        assert row["n"] == 16 and row["n_skipped"] == 0
        for key in ("auc", "balanced_accuracy", "eer", "fake_recall", "real_recall", "auc_drop"):
            assert isinstance(row[key], float), key
    # the clean row is the report split's evaluation (same model, batch size and threshold)
    for key in ("auc", "balanced_accuracy", "eer", "fake_recall", "real_recall"):
        assert rows[0][key] == pytest.approx(ev["report"][key]), key
    assert rows[0]["auc_drop"] == 0.0
    assert (run_dir / "figures" / "03_robustness.png").stat().st_size > 1000


def test_03_linear_probe_baseline(run_dir):
    lp = metrics(run_dir)["linear_probe"]
    report = metrics(run_dir)["evaluate"]["report"]
    assert lp["report_split"] == "test" and lp["n"]["test"] == report["n"]
    assert lp["model"]["pretrained_loaded"] and lp["model"]["image_size"] == 32
    for key in ("auc", "balanced_accuracy", "eer", "ece"):
        assert lp["comparison"][key]["detector"] == pytest.approx(report[key]), key
        assert 0.0 <= lp["comparison"][key]["linear_probe"] <= 1.0, key
    assert "## Baseline: linear probe" in write_summary(run_dir).read_text()


def test_04_finetuned_checkpoint_and_comparison(run_dir):
    ft = metrics(run_dir)["finetune"]
    n_failures = json.loads((run_dir / "failures.json").read_text())["n_failures"]
    assert ft["status"] in (("done", "kept_original") if n_failures else ("skipped",))
    assert ft["eval_split"] == "test" and ft["failures_split"] == "train" and ft["val_split"] == "val"
    assert ft["set"]["n_failures"] == n_failures
    report = metrics(run_dir)["evaluate"]["report"]
    # "before" is best_model.pth on the report split again (other batch size: equal up to float noise)
    assert ft["before"]["n"] == report["n"] and ft["before"]["threshold"] == pytest.approx(report["threshold"])
    for key in ("log_loss", "brier"):
        assert ft["before"][key] == pytest.approx(report[key], rel=1e-4), key
    for key in METRIC_KEYS:
        assert isinstance(ft["after"][key], float), key
    before = load_checkpoint(run_dir / "checkpoints" / "best_model.pth")
    after = load_checkpoint(run_dir / "checkpoints" / "best_model_finetuned.pth")
    assert after["config"] == before["config"] and after["state_dict"].keys() == before["state_dict"].keys()
    assert after["threshold"] == pytest.approx(ft["after"]["threshold"])
    assert after["finetune"]["status"] == ft["status"]
    if ft["status"] == "done":
        assert ft["val_loss_after"] < ft["val_loss_before"] and after["threshold_info"]["chosen_by"] == "fine-tuning"
        assert any(not torch.equal(v, before["state_dict"][k]) for k, v in after["state_dict"].items())
    else:
        assert all(torch.equal(v, before["state_dict"][k]) for k, v in after["state_dict"].items())
    assert model_from_checkpoint(after).config.image_size == 32
    assert (run_dir / "figures" / "04_before_after.png").stat().st_size > 1000
    executed = (run_dir / "executed" / "04_finetune.ipynb").read_text()
    assert "not the split the failures came from" in executed


def test_03_and_04_write_the_model_card_and_tensorboard_events(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    m = metrics(run_dir)
    card = (run_dir / "MODEL_CARD.md").read_text()
    for section in ("## Model", "## Data", "## Metrics per test domain", "## Calibration", "## Decision threshold",
                    "## Robustness", "## Intended use and limits", "## Known failure modes"):  # fmt: skip
        assert section in card, section
    assert f"| `test` | in-domain | trained (02) | {m['evaluate']['report']['n_real']} |" in card
    assert "| cross-dataset |" in card  # the extra folder of the shared run
    assert "Written by fine-tuning (notebook 04)" in card and "## Fine-tuning" in card  # 04 rewrote 03's card
    assert m["model_card"]["model"] == "finetuned" and "evaluated:test" in m["model_card"]["auc_intervals"]
    assert "[MODEL_CARD.md](MODEL_CARD.md)" in (run_dir / "summary.md").read_text()
    # 02's per-epoch scalars (two training processes: rank 0 writes) and 03's evaluation
    train = EventAccumulator(str(run_dir / "tensorboard" / "train"))
    train.Reload()
    assert [e.step for e in train.Scalars("val/loss")] == [h["epoch"] for h in m["train"]["history"]]
    evaluate = EventAccumulator(str(run_dir / "tensorboard" / "evaluate"), size_guidance={"tensors": 0})
    evaluate.Reload()
    assert "pr_curve/test" in evaluate.Tags()["tensors"] and "roc_curve/test" in evaluate.Tags()["images"]
    assert evaluate.Scalars("test/auc")[0].value == pytest.approx(m["evaluate"]["report"]["auc"])
    assert (run_dir / "progress.json").is_file()
