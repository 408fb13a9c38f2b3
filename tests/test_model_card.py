"""MODEL_CARD.md from a run's metrics.json: the sections, the numbers the run measured, AUC intervals (bootstrap
from scores, else a normal approximation), the fine-tuned rewrite, and the run summary's link."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from deepfake_lib.core.runs import read_json, write_json
from deepfake_lib.evaluation.metrics import bootstrap_auc_interval, normal_auc_interval
from deepfake_lib.report.model_card import MODEL_CARD_FILE, write_model_card
from deepfake_lib.report.summary import write_summary

SECTIONS = (
    "## Model", "## Data", "## Evaluation protocol", "## Metrics per test domain", "## Calibration",
    "## Decision threshold", "## Robustness", "## Intended use and limits", "## Known failure modes",
)  # fmt: skip


def _report(n_real: int, n_fake: int, auc: float, fpr: float, fnr: float) -> dict:
    return {"n": n_real + n_fake, "n_real": n_real, "n_fake": n_fake, "auc": auc, "balanced_accuracy": 0.8,
            "eer": 0.2, "fake_recall": 1 - fnr, "fpr": fpr, "fnr": fnr, "ece": 0.05}  # fmt: skip


def run_metrics() -> dict:
    """A small metrics.json as 01-04 write it."""
    return {
        "data": {
            "data_dir": "/data/faces",
            "counts": {"train": {"real": 300, "fake": 100}, "test": {"real": 60, "fake": 40}},
            "prepared": {
                "source_dir": "/data/raw",
                "steps": ["faces", "splits"],
                "faces": {"crops": 500, "with_face": 480, "sources": 510},
            },
        },  # fmt: skip
        "fakes": {"mode": "both", "train": {"real": 300, "labelled_fake": 100, "pseudo_fake": 300}},
        "train": {
            "best_epoch": 7,
            "epochs_run": 10,
            "stopped_early": True,
            "best_val_loss": 0.3141,
            "model": {
                "backbone": "efficientnet-b0",
                "pretrained_loaded": True,
                "weights_source": "imagenet.pth",
                "image_size": 224,
                "trainable_blocks": -1,
                "parameters": {"total": 4_700_000},
            },
        },  # fmt: skip
        "evaluate": {
            "tta": "hflip",
            "report_split": "test",
            "checkpoint": "/runs/r/checkpoints/best_model.pth",
            "splits_used": {"threshold": "val", "report": "test", "failures": "train"},
            "threshold": {"method": "target_fpr", "threshold": 0.6789, "split": "val", "target_fpr": 0.05},
            "false_alarms": {
                "threshold_split": "val",
                "threshold_split_fpr": 0.048,
                "report_split": "test",
                "report_split_fpr": 0.0667,
                "target_fpr": 0.05,
            },  # fmt: skip
            "calibration": {
                "fit": {"temperature": 1.7321, "split": "val", "n": 90, "nll_before": 0.61, "nll_after": 0.42},
                "splits": {"test": {"before": {"ece": 0.1234}, "after": {"ece": 0.0456}}},
            },  # fmt: skip
            "report": _report(60, 40, 0.9321, 0.0667, 0.25),
        },
        "cross_dataset": {
            "threshold": 0.6789,
            "in_domain": {"name": "test", "auc": 0.9321},
            "sets": [
                {
                    "name": "celebdf",
                    "n_real": 50,
                    "n_fake": 50,
                    "auc": 0.6543,
                    "balanced_accuracy": 0.6,
                    "eer": 0.38,
                    "fake_recall": 0.4,
                    "real_recall": 0.9,
                }
            ],
        },  # fmt: skip
        "robustness": {
            "status": "done",
            "split": "test",
            "threshold": 0.6789,
            "rows": [
                {"degradation": "none", "severity": "-", "auc": 0.9321, "auc_drop": 0.0, "balanced_accuracy": 0.8},
                {"degradation": "jpeg", "severity": 50, "auc": 0.8111, "auc_drop": 0.121, "balanced_accuracy": 0.7},
                {"degradation": "blur", "severity": 1, "auc": 0.9301, "auc_drop": 0.002, "balanced_accuracy": 0.8},
            ],
        },  # fmt: skip
    }


def with_finetune(metrics: dict) -> dict:
    return {**metrics, "finetune": {
        "status": "done", "checkpoint": "/runs/r/checkpoints/best_model_finetuned.pth", "eval_split": "test",
        "failures_split": "train", "set": {"n_failures": 12, "n_replay": 36},
        "threshold": {"method": "target_fpr", "threshold": 0.55, "split": "val", "at_threshold": {"fpr": 0.04}},
        "before": _report(60, 40, 0.9321, 0.0667, 0.25), "after": _report(60, 40, 0.9512, 0.05, 0.2),
    }}  # fmt: skip


@pytest.fixture
def run(tmp_path: Path) -> Path:
    root = tmp_path / "run-1"
    write_json(root / "metrics.json", run_metrics())
    write_json(root / "failures.json", {"split": "train", "threshold": 0.6789, "n_evaluated": 400, "n_failures": 3,
               "failures": [{"true_label": "real"}, {"true_label": "fake"}, {"true_label": "fake"}]})  # fmt: skip
    return root


def test_the_card_holds_every_section_and_the_measured_numbers(run: Path) -> None:
    card = write_model_card(run).read_text()
    positions = [card.index(s) for s in SECTIONS]
    assert positions == sorted(positions), "sections in order"
    assert card.startswith("# Model card: run `run-1`") and "Written by the evaluation (notebook 03)" in card
    assert "`checkpoints/best_model.pth`" in card and "efficientnet-b0, ImageNet weights from imagenet.pth" in card
    assert "image size 224 px, trainable backbone blocks all" in card and "best epoch 7 of 10" in card
    assert "/data/raw" in card and "500 crops" in card and "100 labelled and 300 self-blended" in card
    assert "| train | 300 | 100 |" in card
    assert "target_fpr on `val`" in card and "`hflip`" in card and "temperature 1.732 fitted on `val`" in card
    # metrics per test domain: in-domain and cross-dataset rows, with intervals
    assert "| `test` | in-domain | trained (02) | 60 | 40 | 0.932 |" in card
    assert "| `celebdf` | cross-dataset | trained (02) | 50 | 50 | 0.654 |" in card
    interval = normal_auc_interval(0.9321, 40, 60)
    assert f"{interval['low']:.3f} - {interval['high']:.3f}" in card and "Hanley" in card
    assert "| `test` | 0.123 | 0.046 |" in card  # ECE raw -> calibrated
    assert "0.6789 (target_fpr on `val`)" in card and "4.8% on `val` (budget 5.0%), 6.7% on `test`" in card
    # known failure modes: the large AUC drop (not the small one), the cross-dataset gap, error rates, failures
    modes = card[card.index("## Known failure modes") :]
    assert "`jpeg` at 50: AUC drops by 0.121" in modes and "`blur`" not in modes
    assert "`celebdf` reaches AUC 0.654, against 0.932 in-domain" in modes
    assert "flags 6.7% of the REAL images of `test` FAKE and misses 25.0%" in modes
    assert "3 of 400 `train` images misclassified" in modes and "1 REAL called FAKE, 2 fakes missed" in modes
    assert "Not a sole basis for decisions" in card and "Trained on `/data/raw`: 300 real and 100 fake" in card
    assert "## Fine-tuning" not in card
    assert read_json(run / "metrics.json")["model_card"]["file"] == MODEL_CARD_FILE


def test_scores_give_bootstrap_intervals_that_a_rewrite_keeps(run: Path) -> None:
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(40), np.zeros(60)].astype(int)
    probs = np.clip(0.35 + 0.3 * labels + rng.normal(0, 0.2, 100), 0, 1)
    interval = bootstrap_auc_interval(labels, probs)
    assert interval["low"] < roc_auc_score(labels, probs) < interval["high"]
    card = write_model_card(run, {"test": (labels, probs)}).read_text()
    assert f"{interval['low']:.3f} - {interval['high']:.3f}" in card and "bootstrap" in card
    stored = read_json(run / "metrics.json")["model_card"]["auc_intervals"]
    assert set(stored) == {"evaluated:test"}  # the cross-dataset set had no scores: not stored
    # 04 rewrites the card for the fine-tuned model; 03's bootstrap interval stays
    write_json(run / "metrics.json", with_finetune(read_json(run / "metrics.json")))
    card = write_model_card(run, {"test": (labels, 1 - probs)}, finetuned=True).read_text()
    assert f"{interval['low']:.3f} - {interval['high']:.3f}" in card
    assert "Written by fine-tuning (notebook 04)" in card and "`checkpoints/best_model_finetuned.pth`" in card
    assert "| `test` | in-domain | fine-tuned (04) | 60 | 40 | 0.951 |" in card
    assert "## Fine-tuning" in card and "| auc | 0.932 | 0.951 |" in card
    assert "fine-tuned model: 0.5500 (target_fpr on `val`); false alarms 4.0% on `val`, 5.0% on `test`" in card
    assert set(read_json(run / "metrics.json")["model_card"]["auc_intervals"]) == {"evaluated:test", "finetuned:test"}


def test_intervals_are_undefined_without_both_classes() -> None:
    assert math.isnan(bootstrap_auc_interval([1, 1, 1], [0.2, 0.5, 0.9])["low"])
    assert math.isnan(normal_auc_interval(0.9, 0, 10)["high"])
    wide, narrow = normal_auc_interval(0.8, 10, 10), normal_auc_interval(0.8, 1000, 1000)
    assert wide["high"] - wide["low"] > narrow["high"] - narrow["low"] > 0


def test_an_early_card_says_what_is_missing(tmp_path: Path) -> None:
    card = write_model_card(tmp_path).read_text()
    assert "not evaluated yet" in card and "not measured" in card and "- none measured yet" in card


def test_the_run_summary_links_the_card(run: Path) -> None:
    assert MODEL_CARD_FILE not in write_summary(run).read_text()
    write_model_card(run)
    summary = write_summary(run).read_text()
    assert f"[{MODEL_CARD_FILE}]({MODEL_CARD_FILE})" in summary and "## Model_card" not in summary
