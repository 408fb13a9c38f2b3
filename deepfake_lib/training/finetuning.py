"""Hard-example fine-tuning: a few low-learning-rate epochs on failures.json mixed with a replay sample.

The replay sample (``replay_ratio`` correctly classified training images per failure, half REAL and half
FAKE where possible) keeps the model from forgetting what it already got right. Training reuses
``train.fit`` (early stopping on the validation loss) in ``<run>/finetune/``; the best epoch is saved as
``<run>/checkpoints/best_model_finetuned.pth`` with a threshold re-chosen on the validation split by
the method that chose the original one, unless it does not beat the original's validation loss (then the
original is kept under that name). Before/after are compared on a split fine-tuning never saw.
"""

import contextlib
import copy
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deepfake_lib import CLASS_NAMES
from deepfake_lib.core.choices import BY_FINETUNING
from deepfake_lib.core.device import resolve_device
from deepfake_lib.core.recipe import DEFAULT_RECIPE
from deepfake_lib.core.runs import FINETUNED_MODEL, run_paths
from deepfake_lib.data.datasets import DeepfakeDataset
from deepfake_lib.data.scan import Sample
from deepfake_lib.data.transforms import build_transform
from deepfake_lib.evaluation.calibration import TemperatureFit, fit_temperature, rescale
from deepfake_lib.evaluation.evaluate import ThresholdChoice, choose_threshold, predict_samples, threshold_info
from deepfake_lib.evaluation.inference import Predictions
from deepfake_lib.evaluation.metrics import full_metrics
from deepfake_lib.models.checkpoint import (
    CARRIED_KEYS,
    checkpoint_tta,
    checkpoint_weights_id,
    load_checkpoint,
    model_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
)
from deepfake_lib.models.detector import EfficientNetLSTM
from deepfake_lib.training.comparison import COMPARE_KEYS, Comparison
from deepfake_lib.training.failures import FailureSet
from deepfake_lib.training.loop import FitResult, TrainConfig, fit
from deepfake_lib.training.replay import FinetuneSet

SUBDIR = "finetune"


_RECIPE = DEFAULT_RECIPE.finetune  # the defaults live in the recipe (core.recipe)


@dataclass
class FinetuneConfig:
    """Fine-tuning options.

    ``lr``: head/LSTM learning rate (the trainable backbone gets ``lr / 10`` with ImageNet weights, as in
    ``train.fit``); 1e-4 is 10x below the default training rate. ``freeze_bn``: BatchNorm layers keep their
    running statistics (the small hard-example batches would shift them). ``threshold_method``: None =
    the method stored with the original threshold (``eer`` when none is stored). ``keep_original_if_worse``:
    the original model counts as epoch 0 of early stopping; when no epoch beats its validation loss, it is kept.
    """

    epochs: int = _RECIPE.epochs
    lr: float = _RECIPE.lr
    backbone_lr: float | None = None
    batch_size: int = _RECIPE.batch_size
    replay_ratio: float = _RECIPE.replay_ratio
    replay_split: str = "train"
    patience: int = _RECIPE.patience
    weight_decay: float = _RECIPE.weight_decay
    monitor: str = _RECIPE.monitor
    balance: str = "none"
    freeze_bn: bool = True
    keep_original_if_worse: bool = True
    threshold_method: str | None = None
    target_fake_recall: float | None = None
    amp: bool = True
    num_workers: int = 0
    seed: int = 0
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.replay_ratio) and self.replay_ratio >= 0):
            raise ValueError(f"replay_ratio must be a finite number >= 0, got {self.replay_ratio}")
        if not (math.isfinite(self.lr) and self.lr >= 0):  # 0: the replay and threshold steps without any change
            raise ValueError(f"lr must be a finite number >= 0, got {self.lr}")


@contextlib.contextmanager
def frozen_batchnorm(model: nn.Module, enabled: bool = True) -> Iterator[None]:
    """Inside the block, BatchNorm layers run in eval mode (running statistics, no updates) even in ``train()``."""
    if not enabled:
        yield
        return

    def to_eval(module: nn.Module, _inputs: Any) -> None:
        module.eval()

    hooks = [
        m.register_forward_pre_hook(to_eval) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    try:
        yield
    finally:
        for h in hooks:
            h.remove()


@dataclass
class FinetuneResult:
    status: str  # "done", "kept_original" or "skipped"
    checkpoint: Path
    threshold_before: float
    threshold_after: float
    threshold: ThresholdChoice | None = None
    val_loss_before: float = math.nan
    val_loss_after: float = math.nan
    fit: dict[str, Any] | None = None
    reason: str | None = None

    @property
    def improved_on_val(self) -> bool:
        return self.val_loss_after < self.val_loss_before

    def summary(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "checkpoint": str(self.checkpoint),
            "threshold_before": self.threshold_before,
            "threshold_after": self.threshold_after,
            "threshold": self.threshold.to_dict() if self.threshold else None,
            "val_loss_before": self.val_loss_before,
            "val_loss_after": self.val_loss_after,
            "improved_on_val": self.improved_on_val,
            "fit": self.fit,
        }


def _val_loss(preds: Predictions) -> float:
    return full_metrics(preds.labels, preds.probs)["log_loss"]


def _recalibrate(
    tuned: EfficientNetLSTM, preds: Predictions, checkpoint: dict[str, Any], split: str, tta: str
) -> tuple[Predictions, TemperatureFit | None]:
    """When the original was calibrated (03), calibrate the fine-tuned weights the same way on ``split``:
    ``tuned`` gets the temperature fitted on its raw ``preds``, which come back rescaled. Else unchanged."""
    if "calibration" not in checkpoint:
        return preds, None
    fit = fit_temperature(preds.logits, preds.labels, split, tta)
    tuned.set_temperature(fit.temperature)
    return rescale(preds, fit.temperature), fit


def _skip_reason(ft_set: FinetuneSet, train_dataset: DeepfakeDataset | None) -> str | None:
    """Why there is nothing to fine-tune on (no failures, or one class only), or None."""
    classes = set(train_dataset.labels if train_dataset is not None else (s.label for s in ft_set.samples))
    if not ft_set.failures:
        return "failures.json lists no failures: nothing to fine-tune on"
    if len(classes) < 2:
        only = CLASS_NAMES[classes.pop()].upper()
        return (
            f"the fine-tuning set holds {only} images only ({len(ft_set.failures)} failures + {len(ft_set.replay)} "
            f"replay): training on one class would push every prediction towards it; raise the replay ratio"
        )
    return None


def _fit_copy(
    work: EfficientNetLSTM,
    ft_set: FinetuneSet,
    val_samples: Sequence[Sample],
    train_dataset: DeepfakeDataset | None,
    cfg: FinetuneConfig,
    device: torch.device,
    size: int,
    sub: Path,
) -> FitResult:
    """Train ``work`` (the copy being fine-tuned) with ``fit`` in ``sub`` on ``train_dataset`` (else ``ft_set``'s
    images), validated on ``val_samples``, with BatchNorm frozen when ``cfg.freeze_bn``."""
    train_ds = (
        train_dataset
        if train_dataset is not None
        else DeepfakeDataset(ft_set.samples, build_transform(size, train=True))
    )
    val_ds = DeepfakeDataset(list(val_samples), build_transform(size, train=False))
    # fine-tuning's own optimisation, not 02's recipe options: a trained head needs no warm-up
    tcfg = TrainConfig(
        epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, backbone_lr=cfg.backbone_lr, patience=cfg.patience,
        weight_decay=cfg.weight_decay, monitor=cfg.monitor, balance=cfg.balance, amp=cfg.amp,
        num_workers=cfg.num_workers, seed=cfg.seed, device=str(device), resume=False, progress=cfg.progress,
        head_warmup_epochs=0, scheduler="cosine", ema_decay=0.0, label_smoothing=0.0, batch_groups=False,
    )  # fmt: skip
    with frozen_batchnorm(work, cfg.freeze_bn):
        return fit(work, train_ds, val_ds, sub, tcfg)


def _rechoose_threshold(
    preds: Predictions, cfg: FinetuneConfig, info: dict[str, Any], old_thr: float, val_split: str
) -> ThresholdChoice:
    """The threshold for the fine-tuned ``preds`` on ``val_split``, by the method that chose the original one
    (``info``) unless ``cfg`` names another."""
    method = cfg.threshold_method or info.get("method") or "eer"
    target = cfg.target_fake_recall or info.get("target_fake_recall") or 0.9
    return choose_threshold(
        preds.labels, preds.probs, method, target, fixed=old_thr, split=val_split,
        target_fpr=info.get("target_fpr") or 0.01,
    )  # fmt: skip


def finetune(
    model: EfficientNetLSTM,
    checkpoint: dict[str, Any],
    ft_set: FinetuneSet,
    val_samples: Sequence[Sample],
    run_dir: str | os.PathLike[str],
    config: FinetuneConfig | None = None,
    val_split: str = "val",
    train_dataset: DeepfakeDataset | None = None,
) -> FinetuneResult:
    """Fine-tune a copy of ``model`` on ``ft_set`` and save ``<run_dir>/checkpoints/best_model_finetuned.pth``.

    ``checkpoint`` is the original's checkpoint dict (its threshold and threshold method are carried over).
    Status "done": the best epoch (lowest validation loss) with a threshold re-chosen on ``val_samples``.
    "kept_original": no epoch lowered the validation loss below the original's (``keep_original_if_worse``),
    so the original weights and threshold are saved. "skipped": no failures, or a set of one class only;
    nothing is trained and the original is saved. The file exists in every case, and says which.
    ``train_dataset``: what to train on instead of ``ft_set``'s images as they are (``selfblend.finetune_dataset``
    adds pseudo-fakes for a model trained on them).
    """
    cfg = config or FinetuneConfig()
    paths = run_paths(run_dir)
    out_path = paths["checkpoints"] / FINETUNED_MODEL
    device = resolve_device(cfg.device)
    old_thr = float(checkpoint.get("threshold", 0.5))
    info = dict(checkpoint.get("threshold_info") or {})
    size = model.config.image_size
    predict_kw = {
        "batch_size": cfg.batch_size * 2, "num_workers": cfg.num_workers, "amp": cfg.amp,
        "tta": checkpoint_tta(checkpoint),
    }  # fmt: skip

    reason = _skip_reason(ft_set, train_dataset)
    source = {"source_weights_id": checkpoint_weights_id(checkpoint)}  # find_checkpoint compares it with best_model
    if reason:
        ckpt = dict(checkpoint, finetune={"status": "skipped", "reason": reason}, **source)
        save_checkpoint(ckpt, out_path)
        return FinetuneResult("skipped", out_path, old_thr, old_thr, reason=reason)

    work = copy.deepcopy(model).to(device)
    before_val = predict_samples(work, list(val_samples), size, progress=cfg.progress, desc="val before", **predict_kw)
    sub = paths["root"] / SUBDIR
    result = _fit_copy(work, ft_set, val_samples, train_dataset, cfg, device, size, sub)
    best = load_checkpoint(result.best_path)
    tuned = model_from_checkpoint(best, result.best_path).to(device).eval()
    after_val = predict_samples(tuned, list(val_samples), size, progress=cfg.progress, desc="val after", **predict_kw)
    after_val, calibration = _recalibrate(tuned, after_val, checkpoint, val_split, predict_kw["tta"])
    for name in ("best_model.pth", "last.pth"):  # the saved copy below is the result; these only duplicate it
        (sub / "checkpoints" / name).unlink(missing_ok=True)
    fit_summary = {k: v for k, v in result.summary().items() if k not in ("best_checkpoint", "last_checkpoint")}
    loss_before, loss_after = _val_loss(before_val), _val_loss(after_val)
    finetune_info = {"config": asdict(cfg), "set": ft_set.summary(), "best_epoch": result.best_epoch}

    if cfg.keep_original_if_worse and not loss_after < loss_before:
        reason = (
            f"fine-tuning did not lower the '{val_split}' loss ({loss_before:.4f} -> {loss_after:.4f} at the best "
            f"epoch): the original model is kept"
        )
        save_checkpoint(
            dict(checkpoint, finetune={"status": "kept_original", "reason": reason, **finetune_info}, **source),
            out_path,
        )
        return FinetuneResult(
            "kept_original", out_path, old_thr, old_thr, None, loss_before, loss_after, fit_summary, reason
        )

    choice = _rechoose_threshold(after_val, cfg, info, old_thr, val_split)
    ckpt = model_checkpoint(
        tuned, threshold=choice.threshold, metrics=best.get("metrics", {}), epoch=best.get("epoch"),
        train_config=best.get("train_config"), threshold_info={**threshold_info(choice), "chosen_by": BY_FINETUNING},
        finetune={"status": "done", **finetune_info}, tta=predict_kw["tta"],
        **({"calibration": {**calibration.to_dict(), "chosen_by": BY_FINETUNING}} if calibration else {}),
        **source,
        **{k: checkpoint[k] for k in CARRIED_KEYS if k in checkpoint},
    )  # fmt: skip
    ckpt["config"] = dict(checkpoint["config"])  # the architecture is unchanged; keep the original's record
    save_checkpoint(ckpt, out_path)
    return FinetuneResult("done", out_path, old_thr, choice.threshold, choice, loss_before, loss_after, fit_summary)


def finetune_record(
    result: FinetuneResult,
    comparison: Comparison,
    failures: FailureSet,
    ft_set: FinetuneSet,
    config: FinetuneConfig,
    val_split: str,
    warnings: list[str] | None = None,
) -> dict[str, Any]:
    """The ``finetune`` section of metrics.json."""
    return {
        **result.summary(),
        "failures_split": failures.split,
        "failures_missing": failures.missing,
        "set": ft_set.summary(),
        "config": asdict(config),
        "val_split": val_split,
        "eval_split": comparison.split,
        "before": comparison.before,
        "after": comparison.after,
        "change": {k: comparison.after[k] - comparison.before[k] for k in COMPARE_KEYS},
        "warnings": list(warnings or []),
    }
