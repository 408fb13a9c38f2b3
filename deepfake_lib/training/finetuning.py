"""Hard-example fine-tuning: a few low-learning-rate epochs on failures.json mixed with a replay sample.

The replay sample (``replay_ratio`` correctly classified training images per failure, half REAL and half
FAKE where possible) keeps the model from forgetting what it already got right. Training reuses
``train.fit`` (early stopping on the validation loss) in ``<run>/finetune/``; the best epoch is saved as
``<run>/checkpoints/best_model_finetuned.pth`` with a threshold re-chosen on the validation split by
the method that chose the original one, unless it does not beat the original's validation loss (then the
original is kept under that name). Before/after are compared on a split fine-tuning never saw.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn

from deepfake_lib import CLASS_NAMES
from deepfake_lib.core.device import resolve_device
from deepfake_lib.core.recipe import DEFAULT_RECIPE
from deepfake_lib.core.runs import FINETUNED_MODEL, read_json, resolve_path, run_paths
from deepfake_lib.data.datasets import DeepfakeDataset
from deepfake_lib.data.scan import Sample, scan_split
from deepfake_lib.data.transforms import build_transform
from deepfake_lib.evaluation.calibration import TemperatureFit, fit_temperature, rescale
from deepfake_lib.evaluation.evaluate import (
    FAILURES_FILE,
    ThresholdChoice,
    choose_threshold,
    predict_samples,
    predict_split,
    threshold_info,
)
from deepfake_lib.evaluation.inference import Predictions
from deepfake_lib.evaluation.metrics import SUMMARY_KEYS, full_metrics
from deepfake_lib.models.checkpoint import (
    CARRIED_KEYS,
    checkpoint_tta,
    checkpoint_weights_id,
    load_checkpoint,
    load_model,
    model_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
    weights_id,
)
from deepfake_lib.models.detector import EfficientNetLSTM
from deepfake_lib.training.loop import TrainConfig, fit

SUBDIR = "finetune"
COMPARE_KEYS = tuple(k for k in SUMMARY_KEYS if k != "n")  # the before/after table: every headline metric


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


# --------------------------------------------------------------------------- failures
@dataclass
class FailureSet:
    """The content of failures.json: the split the failures came from and the records (hardest first)."""

    split: str
    threshold: float
    records: list[dict[str, Any]]
    source: Path
    missing: list[str] = field(default_factory=list)
    weights_id: str | None = None  # of the checkpoint that was evaluated (None in files written before ids)
    checkpoint: str | None = None

    @property
    def samples(self) -> list[Sample]:
        return [Sample(Path(r["path"]), CLASS_NAMES.index(r["true_label"])) for r in self.records]


def load_failures(run_dir: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None = None) -> FailureSet:
    """Read ``<run_dir>/failures.json`` (written by notebook 03).

    When the data folder moved, paths under the recorded ``data_dir`` are re-rooted at ``data_dir``;
    failures whose file is gone are dropped and listed in ``missing``.
    """
    path = resolve_path(run_dir) / FAILURES_FILE
    payload = read_json(path)
    if payload is None:
        raise FileNotFoundError(f"{path} not found: run notebook 03_evaluate first (it mines the failures)")
    if not isinstance(payload, dict) or "split" not in payload or "failures" not in payload:
        raise ValueError(f"{path}: not a failures file written by deepfake_lib.evaluation.evaluate.write_failures")
    old_root = Path(payload["data_dir"]) if payload.get("data_dir") else None
    new_root = resolve_path(data_dir) if data_dir is not None else None
    records, missing = [], []
    for rec in payload["failures"]:
        p = Path(rec["path"])
        if not p.exists() and old_root is not None and new_root is not None:
            with contextlib.suppress(ValueError):
                p = new_root / p.relative_to(old_root)
        if p.exists():
            records.append({**rec, "path": str(p)})
        else:
            missing.append(rec["path"])
    return FailureSet(
        payload["split"], float(payload["threshold"]), records, path, missing, payload.get("weights_id"),
        payload.get("checkpoint"),
    )  # fmt: skip


class StaleFailuresError(ValueError):
    """failures.json was mined from another model than the one about to be fine-tuned."""


def check_failures_source(failures: FailureSet, model: nn.Module) -> None:
    """Raise ``StaleFailuresError`` when ``failures`` were mined with other weights than ``model``'s (a model
    re-trained after 03 ran): its failures are not this model's. Files written before ids pass unchecked."""
    if failures.weights_id is None:
        return
    current = weights_id(model.state_dict())
    if current != failures.weights_id:
        raise StaleFailuresError(
            f"{failures.source} was mined from other weights ({failures.checkpoint or 'a checkpoint'}, weights id "
            f"{failures.weights_id}) than the model being fine-tuned (weights id {current}): best_model.pth was "
            "re-trained after 03_evaluate ran; run 03_evaluate again first"
        )


def check_splits(failure_split: str, eval_split: str, val_split: str, replay_split: str = "train") -> list[str]:
    """Refuse to report on, or validate on, a split fine-tuning learned from; return warnings for weaker set-ups."""
    for role, split in (("failures", failure_split), ("replay images", replay_split)):
        if eval_split == split:
            raise ValueError(
                f"EVAL_SPLIT '{eval_split}' is where the {role} come from: before/after must be compared on a split "
                f"fine-tuning never saw (for example 'test')"
            )
    for role, split in (("failures", failure_split), ("replay images", replay_split)):
        if val_split == split:
            raise ValueError(
                f"VAL_SPLIT '{val_split}' is where the {role} come from: early stopping, keeping the original and "
                f"the new threshold need images fine-tuning does not train on (for example 'val')"
            )
    warnings = []
    if val_split == eval_split:
        warnings.append(
            f"VAL_SPLIT and EVAL_SPLIT are both '{eval_split}': early stopping and the threshold are tuned on the "
            f"split that reports the comparison, so the 'after' numbers are optimistic"
        )
    return warnings


# --------------------------------------------------------------------------- fine-tuning set
@dataclass
class FinetuneSet:
    failures: list[Sample]
    replay: list[Sample]
    replay_split: str
    wanted_replay: int = 0

    @property
    def samples(self) -> list[Sample]:
        return self.failures + self.replay

    def summary(self) -> dict[str, Any]:
        def counts(samples: list[Sample]) -> dict[str, int]:
            return {name: sum(s.label == i for s in samples) for i, name in enumerate(CLASS_NAMES)}

        return {
            "failures": counts(self.failures),
            "replay": counts(self.replay),
            "n_failures": len(self.failures),
            "n_replay": len(self.replay),
            "wanted_replay": self.wanted_replay,
            "replay_split": self.replay_split,
        }


def select_replay(
    model: nn.Module,
    pool: Sequence[Sample],
    n: int,
    threshold: float,
    exclude: set[str] | None = None,
    seed: int = 0,
    **predict_kwargs: Any,
) -> list[Sample]:
    """A random sample of ``n`` images from ``pool`` that ``model`` classifies correctly at ``threshold``.

    Half REAL and half FAKE where possible (the other class fills up a shortfall). Candidates are checked
    in small random chunks, so only about ``2 n`` images are predicted, not the whole pool.
    """
    exclude = exclude or set()
    rng = random.Random(seed)
    queues: dict[int, list[Sample]] = {}
    for label in range(len(CLASS_NAMES)):
        queues[label] = [s for s in pool if s.label == label and str(s.path) not in exclude]
        rng.shuffle(queues[label])
    chosen: dict[int, list[Sample]] = {label: [] for label in queues}

    def gather(label: int, want: int) -> None:
        while len(chosen[label]) < want and queues[label]:
            k = max(2 * (want - len(chosen[label])), 16)
            chunk, queues[label] = queues[label][:k], queues[label][k:]
            preds = predict_samples(model, chunk, progress=False, **predict_kwargs)
            ok = {
                path for path, y, p in zip(preds.paths, preds.labels, preds.probs, strict=True) if (p >= threshold) == y
            }
            chosen[label] += [s for s in chunk if str(s.path) in ok][: want - len(chosen[label])]

    half = n // 2
    gather(1, half)
    gather(0, n - len(chosen[1]))
    gather(1, n - len(chosen[0]))
    return chosen[0] + chosen[1]


def build_finetune_set(
    model: nn.Module,
    failures: FailureSet,
    data_dir: str | os.PathLike[str],
    config: FinetuneConfig,
    threshold: float | None = None,
    batch_size: int = 64,
    tta: str = "none",
) -> FinetuneSet:
    """The failures plus ``round(replay_ratio * n_failures)`` correctly classified ``replay_split`` images.

    ``tta``: the test-time augmentation the replay candidates are scored with; pass the checkpoint's (``tta``),
    which 03 mined the failures and chose the threshold with.

    Raises ``StaleFailuresError`` when the failures were mined from another model (``check_failures_source``).
    """
    check_failures_source(failures, model)
    fail = failures.samples
    n_replay = round(config.replay_ratio * len(fail))
    replay: list[Sample] = []
    if n_replay and fail:
        pool = scan_split(resolve_path(data_dir), config.replay_split, validate=False).samples
        thr = failures.threshold if threshold is None else threshold
        exclude = {str(s.path) for s in fail}
        replay = select_replay(
            model, pool, n_replay, thr, exclude, config.seed, batch_size=batch_size,
            num_workers=config.num_workers, amp=config.amp, tta=tta,
        )  # fmt: skip
    return FinetuneSet(fail, replay, config.replay_split, n_replay)


# --------------------------------------------------------------------------- training
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
    sub = paths["root"] / SUBDIR
    with frozen_batchnorm(work, cfg.freeze_bn):
        result = fit(work, train_ds, val_ds, sub, tcfg)
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

    method = cfg.threshold_method or info.get("method") or "eer"
    target = cfg.target_fake_recall or info.get("target_fake_recall") or 0.9
    choice = choose_threshold(
        after_val.labels, after_val.probs, method, target, fixed=old_thr, split=val_split,
        target_fpr=info.get("target_fpr") or 0.01,
    )  # fmt: skip
    ckpt = model_checkpoint(
        tuned, threshold=choice.threshold, metrics=best.get("metrics", {}), epoch=best.get("epoch"),
        train_config=best.get("train_config"), threshold_info={**threshold_info(choice), "chosen_by": "04_finetune"},
        finetune={"status": "done", **finetune_info}, tta=predict_kw["tta"],
        **({"calibration": {**calibration.to_dict(), "chosen_by": "04_finetune"}} if calibration else {}),
        **source,
        **{k: checkpoint[k] for k in CARRIED_KEYS if k in checkpoint},
    )  # fmt: skip
    ckpt["config"] = dict(checkpoint["config"])  # the architecture is unchanged; keep the original's record
    save_checkpoint(ckpt, out_path)
    return FinetuneResult("done", out_path, old_thr, choice.threshold, choice, loss_before, loss_after, fit_summary)


# --------------------------------------------------------------------------- before / after
@dataclass
class Comparison:
    """Metrics of the model before and after fine-tuning on ``split``, each at its own stored threshold."""

    split: str
    before: dict[str, Any]
    after: dict[str, Any]
    preds_before: Predictions
    preds_after: Predictions

    def table(self, keys: tuple[str, ...] = COMPARE_KEYS) -> pd.DataFrame:
        """Rows: metrics; columns: before, after, change."""
        df = pd.DataFrame({"before": [self.before[k] for k in keys], "after": [self.after[k] for k in keys]}, keys)
        df["change"] = df["after"] - df["before"]
        return df


def compare_checkpoints(
    before: str | os.PathLike[str],
    after: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    split: str,
    device: str = "auto",
    batch_size: int = 64,
    num_workers: int = 0,
    amp: bool = True,
    progress: bool = True,
) -> Comparison:
    """Predict ``split`` with both checkpoints and compute ``metrics.full_metrics`` at each one's threshold.

    Each checkpoint scores as 03 and ``predict`` do: with its stored test-time augmentation (``tta``) and
    temperature, the scores its threshold was chosen on."""
    dev = resolve_device(device)
    out = {}
    for name, path in (("before", before), ("after", after)):
        model, ckpt = load_model(path, dev)
        tta = checkpoint_tta(ckpt, path)
        preds = predict_split(model, data_dir, split, batch_size, num_workers, amp, progress, tta=tta)
        out[name] = (full_metrics(preds.labels, preds.probs, float(ckpt.get("threshold", 0.5))), preds)
    return Comparison(split, out["before"][0], out["after"][0], out["before"][1], out["after"][1])


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
