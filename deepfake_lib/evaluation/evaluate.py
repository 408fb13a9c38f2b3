"""Evaluation: predict over splits, choose the decision threshold, report metrics, mine failures.json.

Three roles, three splits (``plan_splits``): the threshold is chosen on one split (``val``), the final
numbers are reported on another (``test``) at that threshold, and the failures that fine-tuning learns
from are mined on a third (``train``), never on the split that reports the final numbers.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import classification_report
from torch import nn

from deepfake_lib import CLASS_NAMES
from deepfake_lib.core.choices import BY_EVALUATION, THRESHOLD_METHODS
from deepfake_lib.core.runs import resolve_path, write_json
from deepfake_lib.data.datasets import DeepfakeDataset, resolve_num_workers
from deepfake_lib.data.device_decode import loader_for
from deepfake_lib.data.scan import DataLayoutError, scan_split
from deepfake_lib.data.transforms import build_transform
from deepfake_lib.evaluation.inference import Predictions, model_device, predict_loader
from deepfake_lib.evaluation.metrics import (
    SUMMARY_KEYS,
    eer_point,
    full_metrics,
    has_both_classes,
    point_threshold,
    roc_points,
)
from deepfake_lib.models.checkpoint import checkpoint_weights_id, load_checkpoint, save_checkpoint
from deepfake_lib.models.tta import with_tta

FAILURES_FILE = "failures.json"


# --------------------------------------------------------------------------- splits
@dataclass
class SplitPlan:
    """Which split chooses the threshold, which reports the final numbers, which gives the failures."""

    threshold: str
    report: str
    failures: str
    warnings: list[str] = field(default_factory=list)

    @property
    def splits(self) -> list[str]:
        """The distinct splits to predict, in order threshold, report, failures."""
        return list(dict.fromkeys([self.threshold, self.report, self.failures]))


def plan_splits(
    data_dir: str | os.PathLike[str],
    threshold_split: str = "val",
    report_split: str = "test",
    failure_split: str = "train",
) -> SplitPlan:
    """Check the split roles against ``data_dir``.

    Raises ``ValueError`` when failures would be mined on the reporting split and ``DataLayoutError`` when
    the threshold or failure split is missing. A missing report split falls back to the threshold split
    with a warning (those numbers are optimistic: the threshold was tuned on them).
    """
    if failure_split == report_split:
        raise ValueError(
            f"FAILURE_SPLIT and REPORT_SPLIT are both '{report_split}': failures used for fine-tuning must not come "
            f"from the split that reports the final numbers; mine them on 'train' or a separate tuning split"
        )
    root = resolve_path(data_dir)
    for role, split in (("threshold", threshold_split), ("failure", failure_split)):
        if not (root / split).is_dir():
            raise DataLayoutError(f"{role} split '{split}' not found in {root}")
    warnings: list[str] = []
    report = report_split
    if not (root / report_split).is_dir():
        if failure_split == threshold_split:
            raise ValueError(
                f"report split '{report_split}' not found in {root}, and the fallback (the threshold split "
                f"'{threshold_split}') is also the failure split; add a '{report_split}' split"
            )
        report = threshold_split
        warnings.append(
            f"REPORT SPLIT '{report_split}' NOT FOUND in {root}: the final numbers below are on the threshold split "
            f"'{threshold_split}', where the threshold was tuned, so they are OPTIMISTIC. Add a held-out "
            f"'{report_split}' split for honest numbers."
        )
    elif report_split == threshold_split:
        warnings.append(
            f"REPORT_SPLIT and THRESHOLD_SPLIT are both '{report_split}': the final numbers are on the split where "
            f"the threshold was tuned, so they are OPTIMISTIC. Report on a held-out split for honest numbers."
        )
    return SplitPlan(threshold_split, report, failure_split, warnings)


# --------------------------------------------------------------------------- prediction
def predict_samples(
    model: nn.Module,
    samples: list,
    image_size: int | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
    amp: bool = True,
    progress: bool = True,
    desc: str = "predict",
    transform: Any = None,
    tta: str = "none",
    decode: str = "auto",
) -> Predictions:
    """Predict ``data.Sample`` s with ``transform`` (default: the eval transform) and test-time augmentation
    ``tta`` (``tta.TTA_MODES``); unreadable files end up in ``.bad``. ``decode``: where JPEGs are decoded
    (``device_decode.DECODE_MODES``; "auto" = on the model's CUDA device, with PIL elsewhere)."""
    size = image_size or model.config.image_size
    ds = DeepfakeDataset(samples, transform or build_transform(size, train=False))
    device = model_device(model)
    workers = resolve_num_workers(num_workers, device)
    loader = loader_for(ds, batch_size, device, decode, num_workers=workers, pin_memory=device.type == "cuda")
    return predict_loader(with_tta(model, tta), loader, device, amp=amp, desc=desc, progress=progress)


def predict_split(
    model: nn.Module,
    data_dir: str | os.PathLike[str],
    split: str,
    batch_size: int = 64,
    num_workers: int = 0,
    amp: bool = True,
    progress: bool = True,
    tta: str = "none",
    decode: str = "auto",
) -> Predictions:
    """Predict every image of ``data_dir/split`` with ``model`` (on its current device), with test-time
    augmentation ``tta``, JPEGs decoded as ``decode`` says (``predict_samples``).

    Returns ``Predictions`` (``probs [N]``, ``labels [N]``, ``paths``, ``logits [N]``); files that could
    not be found or decoded are skipped and listed in ``.bad`` as ``(path, reason)``.
    """
    scan = scan_split(resolve_path(data_dir), split, validate=False)
    preds = predict_samples(
        model, scan.samples, None, batch_size, num_workers, amp, progress, desc=f"predict {split}", tta=tta,
        decode=decode,
    )  # fmt: skip
    preds.bad = [(str(s.path), s.reason) for s in scan.skipped] + list(preds.bad)
    return preds


def predict_splits(model: nn.Module, data_dir: str | os.PathLike[str], splits: list[str], **kwargs: Any) -> dict:
    """``{split: predict_split(...)}`` for each split (keyword arguments as ``predict_split``)."""
    return {split: predict_split(model, data_dir, split, **kwargs) for split in splits}


# --------------------------------------------------------------------------- threshold
@dataclass
class ThresholdChoice:
    """The decision threshold (predict FAKE when ``prob >= threshold``) and how it was chosen."""

    method: str
    threshold: float
    split: str | None = None
    target_fake_recall: float | None = None
    target_fpr: float | None = None
    at_threshold: dict[str, float] = field(default_factory=dict)
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose_threshold(
    labels: Any,
    probs: Any,
    method: str = "eer",
    target_fake_recall: float = 0.9,
    fixed: float = 0.5,
    split: str | None = None,
    target_fpr: float = 0.01,
) -> ThresholdChoice:
    """Choose the threshold on one split's ``labels [N]`` and FAKE ``probs [N]``.

    ``eer``: where FPR = FNR. ``target_recall``: the highest threshold whose FAKE recall reaches
    ``target_fake_recall`` (fewest false alarms at that recall). ``target_fpr``: the lowest threshold whose
    false-alarm rate (REAL images called FAKE) stays within ``target_fpr`` (the most fakes caught within that
    budget). ``youden``: max TPR - FPR. ``fixed``:
    ``fixed``. Data-driven thresholds sit halfway between neighbouring scores, so they classify this
    split exactly as the chosen ROC point does. Without both classes they fall back to ``fixed`` (with a
    ``warning``).
    """
    if method not in THRESHOLD_METHODS:
        raise ValueError(f"threshold method must be one of {', '.join(THRESHOLD_METHODS)}, got {method!r}")
    if not 0.0 < target_fake_recall <= 1.0:
        raise ValueError(f"target_fake_recall must be in (0, 1], got {target_fake_recall}")
    if not 0.0 <= target_fpr < 1.0:
        raise ValueError(f"target_fpr must be in [0, 1), got {target_fpr}")
    y, p = np.asarray(labels).astype(int), np.asarray(probs, dtype=np.float64)
    warning = None
    if method == "fixed":
        threshold = float(fixed)
    elif not has_both_classes(y):
        threshold = float(fixed)
        warning = f"threshold split {split or ''} lacks a class: cannot choose by '{method}', using {fixed}"
    else:
        fpr, tpr, thr = roc_points(y, p)
        if method == "eer":
            i = eer_point(y, p)[1]
        elif method == "youden":
            i = int(np.argmax(tpr - fpr))
        elif method == "target_fpr":
            i = int(np.flatnonzero(fpr <= target_fpr + 1e-12)[-1])  # fpr rises along the curve; point 0 has 0
        else:
            i = int(np.argmax(tpr >= target_fake_recall - 1e-12))
        threshold = point_threshold(thr, i)
    m = full_metrics(y, p, threshold)
    keep = ("fake_recall", "fpr", "fnr", "balanced_accuracy", "accuracy", "fake_precision")
    return ThresholdChoice(
        method=method,
        threshold=threshold,
        split=split,
        target_fake_recall=target_fake_recall if method == "target_recall" else None,
        target_fpr=target_fpr if method == "target_fpr" else None,
        at_threshold={k: m[k] for k in keep},
        warning=warning,
    )


def store_threshold(
    checkpoint_path: str | os.PathLike[str], choice: ThresholdChoice, chosen_by: str = BY_EVALUATION
) -> Path:
    """Write ``choice.threshold`` into the checkpoint's ``threshold`` key (and how, into ``threshold_info``).

    Prediction reads ``checkpoint["threshold"]`` afterwards. The file is rewritten atomically.
    """
    ckpt = load_checkpoint(checkpoint_path)
    ckpt["threshold"] = float(choice.threshold)
    ckpt["threshold_info"] = {**threshold_info(choice), "chosen_by": chosen_by}
    return save_checkpoint(ckpt, checkpoint_path)


def threshold_info(choice: ThresholdChoice) -> dict[str, Any]:
    """The plain-value summary of a choice stored in checkpoints."""
    return {
        "method": choice.method,
        "threshold": float(choice.threshold),
        "split": choice.split,
        "target_fake_recall": choice.target_fake_recall,
        "target_fpr": choice.target_fpr,
    }


# --------------------------------------------------------------------------- reports
def split_report(preds: Predictions, threshold: float) -> dict[str, Any]:
    """``metrics.full_metrics`` at ``threshold`` plus the skipped files (``{"path", "reason"}``)."""
    report = full_metrics(preds.labels, preds.probs, threshold)
    report["skipped"] = [{"path": str(p), "reason": r} for p, r in preds.bad]
    report["n_skipped"] = len(preds.bad)
    return report


def metrics_table(reports: dict[str, dict[str, Any]], keys: tuple[str, ...] = SUMMARY_KEYS) -> pd.DataFrame:
    """One row per metric, one column per split."""
    return pd.DataFrame({split: {k: r.get(k, math.nan) for k in keys} for split, r in reports.items()})


def classification_report_text(preds: Predictions, threshold: float) -> str:
    """scikit-learn's text report at ``threshold``, FAKE first."""
    if len(preds) == 0:
        return "no predictions"
    pred = (preds.probs >= threshold).astype(int)
    return classification_report(
        preds.labels, pred, labels=[1, 0], target_names=["FAKE", "REAL"], digits=3, zero_division=0
    )


# --------------------------------------------------------------------------- failures
def find_failures(preds: Predictions, threshold: float) -> list[dict[str, Any]]:
    """Wrongly classified images, hardest (most confidently wrong) first.

    Each record: ``path``, ``true_label`` / ``predicted_label`` ("real" or "fake"), ``probability`` (of
    FAKE) and ``loss`` (the image's log loss; larger = harder).
    """
    p = np.clip(preds.probs.astype(np.float64), 1e-7, 1 - 1e-7)
    y = preds.labels.astype(int)
    pred = (preds.probs >= threshold).astype(int)
    loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    wrong = np.flatnonzero(pred != y)
    order = sorted(wrong, key=lambda i: (-loss[i], preds.paths[i]))
    return [
        {
            "path": preds.paths[i],
            "true_label": CLASS_NAMES[y[i]],
            "probability": float(preds.probs[i]),
            "predicted_label": CLASS_NAMES[pred[i]],
            "loss": float(loss[i]),
        }
        for i in order
    ]


def write_failures(
    run_dir: str | os.PathLike[str],
    failures: list[dict[str, Any]],
    split: str,
    threshold: float,
    data_dir: str | os.PathLike[str],
    n_evaluated: int,
    checkpoint: str | os.PathLike[str] | None = None,
) -> Path:
    """Write ``<run_dir>/failures.json``: where the failures came from (split, threshold, data folder, the
    checkpoint and its ``weights_id``), and the records hardest first."""
    payload = {
        "split": split,
        "threshold": float(threshold),
        "data_dir": str(resolve_path(data_dir)),
        "checkpoint": str(checkpoint) if checkpoint else None,
        "weights_id": checkpoint_weights_id(load_checkpoint(checkpoint))
        if checkpoint and Path(checkpoint).is_file()
        else None,
        "n_evaluated": int(n_evaluated),
        "n_failures": len(failures),
        "failures": failures,
    }
    return write_json(resolve_path(run_dir) / FAILURES_FILE, payload)


def false_alarms(choice: ThresholdChoice, report: dict[str, Any], report_split: str) -> dict[str, Any]:
    """Does the threshold's false-alarm rate hold on unseen data: the rate on the split it was chosen on (and
    the budget, for ``target_fpr``) beside the rate it gives on the report split."""
    budget = choice.target_fpr
    return {
        "method": choice.method,
        "target_fpr": budget,
        "threshold_split": choice.split,
        "threshold_split_fpr": float(choice.at_threshold.get("fpr", math.nan)),
        "report_split": report_split,
        "report_split_fpr": float(report.get("fpr", math.nan)),
        "within_budget": None if budget is None else bool(report.get("fpr", math.nan) <= budget),
    }


def evaluation_record(
    plan: SplitPlan,
    choice: ThresholdChoice,
    reports: dict[str, dict[str, Any]],
    failures_path: str | os.PathLike[str],
    n_failures: int,
    checkpoint: str | os.PathLike[str],
    image_size: int,
    calibration: dict[str, Any] | None = None,
    tta: str = "none",
) -> dict[str, Any]:
    """The ``evaluate`` section of metrics.json: final numbers under ``report``, every split under ``splits``,
    the TTA and calibration the scores went through, and the false-alarm check (``false_alarms``)."""
    warnings = list(plan.warnings) + ([choice.warning] if choice.warning else [])
    return {
        "tta": tta,
        "calibration": calibration,
        "false_alarms": false_alarms(choice, reports[plan.report], plan.report),
        "checkpoint": str(checkpoint),
        "image_size": int(image_size),
        "splits_used": {"threshold": plan.threshold, "report": plan.report, "failures": plan.failures},
        "threshold": choice.to_dict(),
        "report_split": plan.report,
        "report": reports[plan.report],
        "splits": reports,
        "failures": {"file": str(failures_path), "split": plan.failures, "count": int(n_failures)},
        "warnings": warnings,
    }
