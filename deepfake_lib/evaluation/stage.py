"""Evaluate a run: the one evaluation stage that notebook 03 and the benchmarks call.

``score_splits`` scores a model on some splits and decides as a recipe's evaluate section says (test-time
augmentation, temperature calibration on the threshold split, the threshold rule) without writing anything;
``evaluate_run`` does that for a run's best checkpoint on the threshold, report and failure splits, stores the
temperature and the threshold in the checkpoint, writes ``failures.json`` and the ``evaluate`` section of
metrics.json.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from deepfake_lib.core.recipe import EvaluateRecipe
from deepfake_lib.evaluation.calibration import TemperatureFit
from deepfake_lib.evaluation.evaluate import SplitPlan, ThresholdChoice
from deepfake_lib.evaluation.inference import Predictions


@dataclass
class Scores:
    """A model's scores on some splits: ``raw`` (temperature 1), ``preds`` (calibrated, when the settings say so),
    the temperature ``fit`` (None: not calibrated), the threshold ``choice`` made on ``threshold_split``, each
    split's report at it (``evaluate.split_report``) and the seconds the predictions took."""

    threshold_split: str
    raw: dict[str, Predictions]
    preds: dict[str, Predictions]
    fit: TemperatureFit | None
    choice: ThresholdChoice
    reports: dict[str, dict[str, Any]]
    seconds: float

    @property
    def temperature(self) -> float:
        return self.fit.temperature if self.fit else 1.0

    def calibration_record(self) -> dict[str, Any]:
        """The fit and, per split, the calibration metrics before and after it (``calibration.calibration_table``)."""
        from deepfake_lib.evaluation.calibration import calibration_table

        return {
            "fit": self.fit.to_dict() if self.fit else None,
            "splits": {s: calibration_table(p.labels, self.raw[s].probs, p.probs) for s, p in self.preds.items()},
        }


def score_splits(
    model: nn.Module,
    data_dir: str | os.PathLike[str],
    splits: list[str],
    settings: EvaluateRecipe,
    threshold_split: str = "val",
    num_workers: int = -1,
    decode: str = "auto",
    progress: bool = True,
) -> Scores:
    """Predict ``splits`` of ``data_dir`` with ``model`` (at its current temperature: set 1.0 for raw scores) and
    ``settings.tta``, fit the temperature on ``threshold_split`` (``settings.calibrate``), choose the threshold there
    by ``settings.threshold_method`` and report every split at it. Writes nothing."""
    from deepfake_lib.evaluation import calibration, evaluate

    start = time.perf_counter()
    raw = evaluate.predict_splits(
        model, data_dir, list(splits), batch_size=settings.batch_size, num_workers=num_workers, tta=settings.tta,
        decode=decode, progress=progress,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    preds, fit = calibration.calibrate_splits(raw, threshold_split, settings.tta, enabled=settings.calibrate)
    chosen = preds[threshold_split]
    choice = evaluate.choose_threshold(
        chosen.labels, chosen.probs, settings.threshold_method, settings.target_fake_recall, settings.fixed_threshold,
        split=threshold_split, target_fpr=settings.target_fpr,
    )  # fmt: skip
    reports = {split: evaluate.split_report(p, choice.threshold) for split, p in preds.items()}
    return Scores(threshold_split, raw, preds, fit, choice, reports, seconds)


@dataclass
class RunEvaluation:
    """A finished ``evaluate_run``: the checkpoint (now holding the temperature and the threshold), the model at the
    fitted temperature, the checkpoint's contents as loaded, the split roles, the scores, the failures mined and the
    ``evaluate`` record written to metrics.json."""

    checkpoint: Path
    model: nn.Module
    ckpt: dict[str, Any]
    plan: SplitPlan
    scores: Scores
    failures: list[dict[str, Any]]
    failures_path: Path
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def report(self) -> dict[str, Any]:
        """The report split's numbers at the chosen threshold."""
        return self.scores.reports[self.plan.report]

    @property
    def final(self) -> Predictions:
        """The report split's (calibrated) predictions."""
        return self.scores.preds[self.plan.report]


def evaluate_run(
    run_dir: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    settings: EvaluateRecipe | None = None,
    threshold_split: str = "val",
    report_split: str = "test",
    failure_split: str = "train",
    device: str = "auto",
    image_size: int | None = None,
    num_workers: int = -1,
    decode: str = "auto",
    progress: bool = True,
) -> RunEvaluation:
    """Evaluate the run's best checkpoint on the data folder (what 01 prepared from ``data_dir`` for this run, if
    it did): ``evaluate.plan_splits`` checks the split roles, ``score_splits`` scores them from the raw logits,
    the temperature and the threshold go into the checkpoint, the misclassified images of ``failure_split`` into
    ``failures.json`` (for fine-tuning) and the numbers into metrics.json's ``evaluate``. ``image_size``: None reads
    it from the checkpoint (a number must match it)."""
    from deepfake_lib.core import runs
    from deepfake_lib.core.device import resolve_device
    from deepfake_lib.evaluation import calibration, evaluate
    from deepfake_lib.models.checkpoint import load_model
    from deepfake_lib.prepare.dataset import data_dir_for_run

    settings = settings or EvaluateRecipe()
    run = runs.run_paths(run_dir)
    data = data_dir_for_run(data_dir, run["root"])
    checkpoint = run["checkpoints"] / runs.BEST_MODEL
    model, ckpt = load_model(checkpoint, resolve_device(device), image_size=image_size)
    model.set_temperature(1.0)  # calibration starts from the raw scores (also when a run is evaluated again)
    plan = evaluate.plan_splits(data, threshold_split, report_split, failure_split)
    scores = score_splits(model, data, plan.splits, settings, plan.threshold, num_workers, decode, progress)
    calibration.store_calibration(checkpoint, scores.fit, settings.tta)
    model.set_temperature(scores.temperature)  # what follows scores as predict will
    evaluate.store_threshold(checkpoint, scores.choice)
    mined = scores.preds[plan.failures]
    failures = evaluate.find_failures(mined, scores.choice.threshold)
    failures_path = evaluate.write_failures(
        run["root"], failures, plan.failures, scores.choice.threshold, data, len(mined), checkpoint
    )
    record = evaluate.evaluation_record(
        plan, scores.choice, scores.reports, failures_path, len(failures), checkpoint, model.config.image_size,
        calibration=scores.calibration_record(), tta=settings.tta,
    )  # fmt: skip
    runs.update_metrics(run["root"], "evaluate", record)
    return RunEvaluation(checkpoint, model, ckpt, plan, scores, failures, failures_path, record)
