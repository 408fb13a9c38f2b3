"""evaluate.py: split roles, threshold choice and storage, reports with skipped files, failures.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from deepfake_lib.data.scan import DataLayoutError
from deepfake_lib.evaluation import evaluate as E
from deepfake_lib.evaluation.inference import Predictions
from deepfake_lib.evaluation.metrics import full_metrics
from deepfake_lib.models.checkpoint import load_checkpoint, load_model

Y8 = np.array([0, 0, 0, 0, 1, 1, 1, 1])
P8 = np.array([0.1, 0.2, 0.3, 0.7, 0.6, 0.8, 0.9, 0.95])


def preds_of(labels, probs) -> Predictions:
    labels, probs = np.asarray(labels), np.asarray(probs, dtype=float)
    paths = [f"/data/{'fake' if y else 'real'}/{i:02d}.jpg" for i, y in enumerate(labels)]
    return Predictions(probs=probs, labels=labels, paths=paths, logits=np.log(probs / (1 - probs)))


# --------------------------------------------------------------------------- threshold
@pytest.mark.parametrize(
    ("method", "kwargs", "threshold", "fake_recall", "fpr"),
    [
        ("eer", {}, 0.65, 0.75, 0.25),
        ("target_recall", {"target_fake_recall": 1.0}, 0.45, 1.0, 0.25),  # strictest threshold catching all FAKE
        ("target_recall", {"target_fake_recall": 0.7}, 0.75, 0.75, 0.0),
        ("youden", {}, 0.75, 0.75, 0.0),  # TPR - FPR = 0.75 first reached at the higher threshold
        ("fixed", {"fixed": 0.3}, 0.3, 1.0, 0.5),
    ],
)
def test_choose_threshold_methods(method, kwargs, threshold, fake_recall, fpr):
    choice = E.choose_threshold(Y8, P8, method, split="val", **kwargs)
    assert choice.method == method and choice.split == "val" and choice.warning is None
    assert choice.threshold == pytest.approx(threshold)
    assert choice.at_threshold["fake_recall"] == pytest.approx(fake_recall)
    assert choice.at_threshold["fpr"] == pytest.approx(fpr)
    assert (choice.target_fake_recall is not None) == (method == "target_recall")


def test_target_recall_threshold_reaches_the_target_on_random_data():
    rng = np.random.default_rng(1)
    y = (rng.random(300) < 0.25).astype(int)
    p = np.clip(rng.normal(0.4 + 0.25 * y, 0.2), 0, 1)
    for target in (0.8, 0.9, 0.95):
        choice = E.choose_threshold(y, p, "target_recall", target_fake_recall=target)
        assert full_metrics(y, p, choice.threshold)["fake_recall"] >= target
        # any stricter threshold (the next higher score) misses the target
        higher = p[p > choice.threshold]
        if higher.size:
            assert full_metrics(y, p, higher.min() + 1e-9)["fake_recall"] < target


def test_choose_threshold_single_class_falls_back_with_warning():
    choice = E.choose_threshold([0, 0, 0], [0.2, 0.4, 0.9], "eer", fixed=0.5, split="val")
    assert choice.threshold == 0.5 and "lacks a class" in choice.warning


def test_choose_threshold_rejects_unknown_method():
    with pytest.raises(ValueError, match="eer"):
        E.choose_threshold(Y8, P8, "f1")


def test_store_threshold_writes_it_into_the_checkpoint(tmp_path, tiny_checkpoint):
    path = tmp_path / "best_model.pth"
    shutil.copy(tiny_checkpoint, path)
    choice = E.choose_threshold(Y8, P8, "eer", split="val")
    E.store_threshold(path, choice)
    ckpt = load_checkpoint(path)  # weights_only=True
    assert ckpt["threshold"] == pytest.approx(0.65)
    assert ckpt["threshold_info"] == {
        "method": "eer", "threshold": pytest.approx(0.65), "split": "val", "target_fake_recall": None,
        "target_fpr": None, "chosen_by": "evaluation",
    }  # fmt: skip
    model, again = load_model(path)
    assert again["threshold"] == pytest.approx(0.65) and model.config.image_size == 32


# --------------------------------------------------------------------------- splits
def test_plan_splits_roles(tiny_data, tmp_path):
    plan = E.plan_splits(tiny_data)
    assert (plan.threshold, plan.report, plan.failures, plan.warnings) == ("val", "test", "train", [])
    assert plan.splits == ["val", "test", "train"]
    with pytest.raises(ValueError, match="must not come"):
        E.plan_splits(tiny_data, failure_split="test", report_split="test")
    with pytest.raises(DataLayoutError, match="threshold split 'dev'"):
        E.plan_splits(tiny_data, threshold_split="dev")
    no_test = tmp_path / "data"
    for split in ("train", "val"):
        shutil.copytree(tiny_data / split, no_test / split)
    plan = E.plan_splits(no_test)
    assert plan.report == "val" and "OPTIMISTIC" in plan.warnings[0]
    with pytest.raises(ValueError, match="also the failure split"):
        E.plan_splits(no_test, threshold_split="train", failure_split="train")


# --------------------------------------------------------------------------- prediction and reports
def test_predict_split_skips_unreadable_image_and_reports_it(tiny_data, tiny_checkpoint, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_data / "test", data / "test")
    bad = data / "test" / "fake" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    model, _ = load_model(tiny_checkpoint)
    preds = E.predict_split(model, data, "test", batch_size=8, progress=False)
    assert len(preds) == 16 and preds.probs.shape == (16,) and preds.labels.tolist().count(1) == 4
    assert [Path(p).name for p, _ in preds.bad] == ["broken.jpg"]
    report = E.split_report(preds, 0.5)
    assert report["n"] == 16 and report["n_skipped"] == 1
    assert report["skipped"][0]["path"] == str(bad) and "corrupt" in report["skipped"][0]["reason"]
    assert json.loads(json.dumps(report))["n_skipped"] == 1
    table = E.metrics_table({"test": report})
    assert table.loc["n", "test"] == 16 and "eer" in table.index
    text = E.classification_report_text(preds, 0.5)
    assert "FAKE" in text and "REAL" in text


def test_find_failures_hardest_first():
    preds = preds_of([0, 0, 1, 1, 0, 1], [0.9, 0.2, 0.05, 0.7, 0.55, 0.4])
    fails = E.find_failures(preds, threshold=0.5)
    assert [f["probability"] for f in fails] == [0.05, 0.9, 0.4, 0.55]  # most confidently wrong first
    assert [f["true_label"] for f in fails] == ["fake", "real", "fake", "real"]
    assert [f["predicted_label"] for f in fails] == ["real", "fake", "real", "fake"]
    assert fails[0]["loss"] == pytest.approx(-np.log(0.05))
    assert set(fails[0]) == {"path", "true_label", "probability", "predicted_label", "loss"}
    assert E.find_failures(preds, threshold=0.01) == sorted(
        E.find_failures(preds, 0.01), key=lambda f: -f["loss"]
    )  # fmt: skip
    assert len(E.find_failures(preds, threshold=0.01)) == 3  # every REAL is then a false alarm


def test_write_failures_json(tmp_path, tiny_data, tiny_checkpoint):
    preds = preds_of([0, 1, 1, 0], [0.8, 0.1, 0.9, 0.3])
    fails = E.find_failures(preds, 0.5)
    path = E.write_failures(tmp_path / "run", fails, "train", 0.5, tiny_data, len(preds), tiny_checkpoint)
    assert path == tmp_path / "run" / "failures.json"
    payload = json.loads(path.read_text())
    assert payload["split"] == "train" and payload["threshold"] == 0.5 and payload["n_evaluated"] == 4
    assert payload["data_dir"] == str(tiny_data) and payload["n_failures"] == 2
    assert payload["checkpoint"] == str(tiny_checkpoint)
    assert payload["weights_id"] == load_checkpoint(tiny_checkpoint)["weights_id"] and len(payload["weights_id"]) == 16
    assert [(f["path"], f["true_label"], f["probability"], f["predicted_label"]) for f in payload["failures"]] == [
        ("/data/fake/01.jpg", "fake", 0.1, "real"),
        ("/data/real/00.jpg", "real", 0.8, "fake"),
    ]


def test_evaluation_record_layout(tiny_data):
    plan = E.plan_splits(tiny_data)
    choice = E.choose_threshold(Y8, P8, "eer", split="val")
    reports = {s: E.split_report(preds_of(Y8, P8), choice.threshold) for s in plan.splits}
    rec = E.evaluation_record(plan, choice, reports, "failures.json", 3, "best_model.pth", 32)
    assert rec["report_split"] == "test" and rec["report"] is reports["test"]
    assert rec["threshold"]["threshold"] == pytest.approx(0.65) and rec["failures"]["count"] == 3
    assert set(rec["splits"]) == {"val", "test", "train"} and rec["warnings"] == []
    json.dumps(rec)


# --------------------------------------------------------------------------- figures
@pytest.mark.parametrize(
    ("labels", "probs"), [(Y8, P8), ([0, 0, 0], [0.2, 0.4, 0.9])], ids=["two_classes", "one_class"]
)
def test_evaluation_figures_draw_for_normal_and_one_class_splits(labels, probs, tiny_data):
    import matplotlib.pyplot as plt
    import pandas as pd

    from deepfake_lib.report import plots

    m = full_metrics(labels, probs, 0.5)
    figs = [
        plots.confusion_matrices(m["confusion_matrix"]["matrix"]),
        plots.roc_curve(labels, probs, 0.5),
        plots.pr_curve(labels, probs, 0.5),
        plots.reliability_diagram(labels, probs),
        plots.score_histogram(labels, probs, 0.5),
        plots.failure_grid([]),
        plots.failure_grid(
            [{"path": str(next((tiny_data / "test" / "fake").iterdir())), "true_label": "fake", "probability": 0.1}]
        ),  # fmt: skip
        plots.before_after(
            pd.DataFrame({"before": [0.5, 0.6], "after": [0.7, 0.4]}, index=["auc", "eer"]),
            {"before": (labels, probs, 0.5), "after": (labels, probs[::-1], 0.4)},
            keys=("auc", "eer"),
        ),  # fmt: skip
    ]
    assert all(isinstance(f, plt.Figure) and f.axes for f in figs)
    heat = figs[0].axes[1]
    texts = [t.get_text() for t in heat.texts]
    rows_with_images = sum(1 for row in m["confusion_matrix"]["matrix"] if sum(row))
    assert len(texts) == 2 * rows_with_images and all(t.endswith("%") for t in texts)  # row-normalised, empty row blank
    plt.close("all")


def test_reporting_on_the_threshold_split_is_flagged_optimistic(tiny_data):
    plan = E.plan_splits(tiny_data, threshold_split="val", report_split="val", failure_split="train")
    assert plan.report == "val" and any("OPTIMISTIC" in w for w in plan.warnings)
