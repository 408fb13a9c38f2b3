"""fit(): AdamW + BCE-with-logits, oversampling, early stopping, best/last checkpoints, resume; on one process or
several (``launch.fit_processes``, ``accelerate launch``, ``torchrun``)."""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from deepfake_lib.core.choices import BALANCES, MONITORS
from deepfake_lib.core.device import autocast
from deepfake_lib.core.recipe import DEFAULT_RECIPE
from deepfake_lib.core.runs import METRICS_FILE, read_json, run_paths, update_metrics, write_json
from deepfake_lib.data.datasets import DeepfakeDataset
from deepfake_lib.data.device_decode import check_decode
from deepfake_lib.models.checkpoint import CheckpointError, load_checkpoint, model_checkpoint, save_checkpoint
from deepfake_lib.models.detector import EfficientNetLSTM, ModelConfig, model_info
from deepfake_lib.training import distributed, schedules, tracking
from deepfake_lib.training.batches import usable_batches
from deepfake_lib.training.epochs import _epoch_row, _start_epoch
from deepfake_lib.training.run_setup import _Run, _setup
from deepfake_lib.training.schedules import SCHEDULERS

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def monitored(row: dict[str, float], monitor: str) -> float:
    """The early-stopping score of a history row, lower is better: the val loss, or minus the val AUC."""
    return row["val_loss"] if monitor == "val_loss" else -row["val_auc"]


_RECIPE = DEFAULT_RECIPE.train  # the defaults live in the recipe (core.recipe)


@dataclass
class TrainConfig:
    """Training options.

    ``balance``: "oversample" (default), "weight" (BCE pos_weight) or "none". ``backbone_lr``: learning rate
    of the trainable backbone layers; None = ``lr / 10`` for ImageNet weights, ``lr`` for a random init.
    ``monitor``: what picks the best epoch and stops early: "val_loss" (ranking and calibration together) or
    "val_auc" (ranking alone; a model that keeps ranking better while growing overconfident is not stopped
    by its rising loss; 03 chooses the decision threshold anyway). ``head_warmup_epochs``: the first epochs train only the LSTM and head on the frozen backbone before the
    configured blocks join (linear probing, then fine-tuning: a random head's large early gradients then do
    not distort the pretrained features). ``num_workers``: DataLoader worker processes, -1 = automatic.
    ``decode``: where JPEGs are decoded and augmented (``device_decode.DECODE_MODES``): "auto" = on a CUDA device
    (nvJPEG; the workers only read bytes), with PIL in the workers elsewhere; "pil" or "device" to choose.
    ``precise_bn_batches``: after each epoch,
    re-estimate the BatchNorm statistics of the trainable layers on up to this many training batches (0 = off).
    ``scheduler``: ``schedules.SCHEDULERS``; "warmup_cosine" rises linearly over ``warmup_epochs`` and then
    follows a cosine, step by step. ``ema_decay``: validate and save an exponential moving average of the
    weights (``ema.WeightEMA``; 0 = off, e.g. 0.999). ``label_smoothing``: train on targets ``y (1 - e) + e / 2``.
    ``batch_groups``: the members of a group of the training set (``DeepfakeDataset.groups``: a real face and its
    face swap from one scene, a real face and its self-blended fake) train in one batch, so the loss compares
    the forgery with its own source, not with other people and scenes (``samplers.BalancedSampler``).
    """

    epochs: int = _RECIPE.epochs
    batch_size: int = _RECIPE.batch_size
    lr: float = _RECIPE.lr
    backbone_lr: float | None = _RECIPE.backbone_lr
    weight_decay: float = _RECIPE.weight_decay
    patience: int = _RECIPE.patience
    min_delta: float = 1e-4
    monitor: str = _RECIPE.monitor
    head_warmup_epochs: int = _RECIPE.head_warmup_epochs
    balance: str = DEFAULT_RECIPE.data.balance
    scheduler: str = _RECIPE.scheduler
    grad_clip: float = 1.0
    precise_bn_batches: int = 16
    warmup_epochs: float = _RECIPE.warmup_epochs
    ema_decay: float = _RECIPE.ema_decay
    label_smoothing: float = _RECIPE.label_smoothing
    batch_groups: bool = DEFAULT_RECIPE.data.batch_groups
    amp: bool = True
    num_workers: int = -1
    decode: str = "auto"
    seed: int = _RECIPE.seed
    device: str = "auto"
    resume: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        numbers = {n: getattr(self, n) for n in ("lr", "weight_decay", "ema_decay", "label_smoothing", "warmup_epochs")}
        if self.backbone_lr is not None:
            numbers["backbone_lr"] = self.backbone_lr
        for name, value in numbers.items():
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")
        if not (self.lr >= 0 and (self.backbone_lr is None or self.backbone_lr >= 0) and self.weight_decay >= 0):
            raise ValueError(f"lr, backbone_lr and weight_decay must be >= 0, got {self.lr}, "
                             f"{self.backbone_lr}, {self.weight_decay}")  # fmt: skip
        if self.balance not in BALANCES:
            raise ValueError(f"balance must be 'oversample', 'weight' or 'none', got {self.balance!r}")
        if self.monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {', '.join(MONITORS)}, got {self.monitor!r}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {', '.join(SCHEDULERS)}, got {self.scheduler!r}")
        if not (self.ema_decay == 0.0 or 0.0 < self.ema_decay < 1.0):
            raise ValueError(f"ema_decay must be 0 (off) or in (0, 1), got {self.ema_decay}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {self.warmup_epochs}")
        check_decode(self.decode)
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")


@dataclass
class FitResult:
    history: list[dict[str, float]]
    best_epoch: int
    best_val_loss: float
    best_path: Path
    last_path: Path
    stopped_early: bool
    resumed_from_epoch: int = 0
    load_errors: list[tuple[str, str]] = field(default_factory=list)
    processes: int = 1
    global_batch_size: int | None = None  # batch_size x processes

    def summary(self) -> dict[str, Any]:
        return {
            "processes": self.processes,
            "global_batch_size": self.global_batch_size,
            "best_epoch": self.best_epoch,
            "best_val_loss": self.best_val_loss,
            "epochs_run": len(self.history),
            "stopped_early": self.stopped_early,
            "resumed_from_epoch": self.resumed_from_epoch,
            "best_checkpoint": str(self.best_path),
            "last_checkpoint": str(self.last_path),
            "load_errors": [{"path": p, "reason": r} for p, r in self.load_errors],
            "history": self.history,
        }


def read_fit_result(run_dir: str | os.PathLike[str]) -> FitResult:
    """The ``FitResult`` a training wrote into ``metrics.json`` (``train``): how a notebook gets the result of
    processes it launched."""
    metrics = run_paths(run_dir)["root"] / METRICS_FILE
    train = (read_json(metrics, default={}) or {}).get("train")
    if not train:
        raise FileNotFoundError(f"{metrics}: no training result (the training processes wrote none)")
    return FitResult(
        history=list(train["history"]),
        best_epoch=int(train["best_epoch"]),
        best_val_loss=float(train["best_val_loss"]),
        best_path=Path(train["best_checkpoint"]),
        last_path=Path(train["last_checkpoint"]),
        stopped_early=bool(train["stopped_early"]),
        resumed_from_epoch=int(train["resumed_from_epoch"]),
        load_errors=[(e["path"], e["reason"]) for e in train["load_errors"]],
        processes=int(train.get("processes", 1)),
        global_batch_size=train.get("global_batch_size"),
    )


def smoothed_targets(y: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Label smoothing for one logit: targets ``y [B]`` (0/1) moved ``smoothing / 2`` towards 0.5."""
    return y * (1.0 - smoothing) + 0.5 * smoothing


@dataclass
class _State:
    """Where training stands: the history and the early-stopping counters (what ``last.pth`` saves)."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_val: float = math.inf
    best_score: float = math.inf  # the monitored score of the best epoch, lower is better
    best_epoch: int = 0
    bad_epochs: int = 0
    start_epoch: int = 0  # the epoch this call resumed after (0: a fresh run)
    load_errors: dict[str, str] = field(default_factory=dict)
    stopped_early: bool = False
    finished: bool = False  # resumed from a run that had already finished

    def result(self, run: _Run) -> FitResult:
        return FitResult(
            list(self.history), self.best_epoch, self.best_val, run.best_path, run.last_path, self.stopped_early,
            self.start_epoch, sorted(self.load_errors.items()), run.ranks.world, run.global_batch,
        )  # fmt: skip


def _resume(run: _Run) -> _State:
    """Load model, optimiser, scheduler, scaler and counters from ``last.pth``; refuse other model settings."""
    cfg, model, last_path = run.cfg, run.model, run.last_path
    state = load_checkpoint(last_path, map_location="cpu")
    ignore = {"pretrained", "weights_path", "pretrained_loaded", "weights_source", "requested_backbone"}
    # settings added since that checkpoint was written count as their defaults
    saved = {k: v for k, v in {**asdict(ModelConfig()), **state["config"]}.items() if k not in ignore}
    current = {k: v for k, v in asdict(model.config).items() if k not in ignore}
    if saved != current:
        changed = sorted(k for k in saved.keys() | current.keys() if saved.get(k) != current.get(k))
        raise CheckpointError(
            f"{last_path}: cannot resume, it was trained with other model settings ({', '.join(changed)}); "
            "pass resume=False (RESUME = False) to start over"
        )
    model.load_state_dict(state["state_dict"])
    run.optimizer.load_state_dict(state["optimizer"])
    if run.scheduler is not None and state.get("scheduler"):
        run.scheduler.load_state_dict(state["scheduler"])
    if state.get("scaler"):
        run.scaler.load_state_dict(state["scaler"])
    if run.ema is not None and state.get("ema"):
        run.ema.load_state_dict(state["ema"])
    best_val = float(state["best_val_loss"])
    resumed = _State(
        history=list(state["history"]), best_val=best_val, best_score=float(state.get("best_score", best_val)),
        best_epoch=int(state["best_epoch"]), bad_epochs=int(state["bad_epochs"]), start_epoch=int(state["epoch"]),
        load_errors=dict(state.get("load_errors", {})),
    )  # fmt: skip
    log.info("resumed from %s after epoch %d", last_path, resumed.start_epoch)
    before = state.get("processes", {"processes": 1, "global_batch_size": cfg.batch_size})
    main, world = run.ranks.is_main, run.ranks.world
    if main and before["processes"] != world:
        print(
            f"resuming a run trained on {before['processes']} process(es) (global batch "
            f"{before['global_batch_size']}) on {world} (global batch {run.global_batch})"
        )
    if state.get("stopped_early") or resumed.start_epoch >= cfg.epochs:
        if main:
            print(
                f"training already finished at epoch {resumed.start_epoch} ({last_path}); pass resume=False to retrain"
            )
        resumed.stopped_early, resumed.finished = bool(state.get("stopped_early")), True
    return resumed


def _train_epoch(run: _Run, net: nn.Module, epoch: int, load_errors: dict[str, str]) -> tuple[int, float, int, float]:
    """One pass over the training loader; batches ``x`` (B, T, 3, H, W), ``y`` (B,). Returns this process's
    (images seen, summed loss, correct decisions, seconds). Raises ``TrainingDiverged`` on a NaN/inf loss."""
    cfg, device, ranks, optimizer, scaler = run.cfg, run.device, run.ranks, run.optimizer, run.scaler
    t0, n_seen, loss_sum, correct = time.perf_counter(), 0, 0.0, 0
    bar = tqdm(run.train_loader, desc=f"epoch {epoch + 1}", leave=False, disable=not run.progress)
    for batch in usable_batches(bar, ranks, device, load_errors):
        x = batch["x"].to(device, non_blocking=True)
        y = batch["y"].to(device, non_blocking=True).float()
        with autocast(device, cfg.amp):
            logits = net(x)
        loss = run.criterion(logits.float(), smoothed_targets(y, cfg.label_smoothing))
        if not distributed.all_true(bool(torch.isfinite(loss)), ranks, device):
            raise TrainingDiverged(
                f"loss became {loss.item()} at epoch {epoch + 1}; training stopped. The last good checkpoints "
                f"are kept ({run.best_path.name}, {run.last_path.name}). Lower the learning rate (LR={cfg.lr}) or "
                "check the data."
            )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.grad_clip:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        if run.ema is not None:
            run.ema.update()
        if run.scheduler is not None and schedules.steps_per_batch(cfg.scheduler):
            run.scheduler.step()
        n_seen += len(y)
        loss_sum += loss.item() * len(y)
        correct += ((logits.detach() > 0).float() == y).sum().item()
        bar.set_postfix(loss=f"{loss.item():.4f}")
    return n_seen, loss_sum, correct, time.perf_counter() - t0


def _record_epoch(run: _Run, state: _State, row: dict[str, float]) -> None:
    """Append ``row``, keep the best checkpoint and early-stopping count, step the scheduler, and (rank 0)
    write ``last.pth``, ``history.json`` and the ``train`` section of ``metrics.json``."""
    cfg, model, epoch = run.cfg, run.model, int(row["epoch"])
    state.history.append(row)
    score = monitored(row, cfg.monitor)
    if score < state.best_score - cfg.min_delta:  # a NaN score (one-class val split) never improves
        state.best_score, state.best_val, state.best_epoch, state.bad_epochs = score, row["val_loss"], epoch, 0
        if run.ranks.is_main:
            save_checkpoint(
                model_checkpoint(run.scored, metrics=row, epoch=epoch, train_config=asdict(cfg), **run.extra),
                run.best_path,
            )
    else:
        state.bad_epochs += 1
    if isinstance(run.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        run.scheduler.step(row["val_loss"])
    elif run.scheduler is not None and not schedules.steps_per_batch(cfg.scheduler):
        run.scheduler.step()
    state.stopped_early = state.bad_epochs >= cfg.patience
    if run.ranks.is_main:
        last = model_checkpoint(
            model, metrics=row, epoch=epoch, train_config=asdict(cfg), optimizer=run.optimizer.state_dict(),
            scheduler=run.scheduler.state_dict() if run.scheduler is not None else None,
            scaler=run.scaler.state_dict(), history=state.history, best_val_loss=state.best_val,
            best_score=state.best_score, best_epoch=state.best_epoch, bad_epochs=state.bad_epochs,
            stopped_early=state.stopped_early, load_errors=state.load_errors,
            ema=run.ema.state_dict() if run.ema is not None else None, **run.extra,
        )  # fmt: skip
        save_checkpoint(last, run.last_path)
        write_json(run.paths["root"] / "history.json", state.history)
        update_metrics(run.paths["root"], "train", {**state.result(run).summary(), "model": model_info(model)})
        tracking.epoch_done(run, state, row)  # progress.json and TensorBoard scalars


def fit(
    model: EfficientNetLSTM,
    train_ds: DeepfakeDataset,
    val_ds: DeepfakeDataset,
    run_dir: str | os.PathLike[str],
    config: TrainConfig | None = None,
    checkpoint_extra: dict[str, Any] | None = None,
    **overrides: Any,
) -> FitResult:
    """Train ``model`` and keep ``checkpoints/best_model.pth`` (lowest val loss) and ``checkpoints/last.pth``.

    Each epoch's randomness depends only on ``(seed, epoch)``, so a run resumed from ``last.pth`` (the
    default when it exists) continues exactly like an uninterrupted one. Writes ``history.json`` and the
    ``train`` section of ``metrics.json`` after every epoch. ``checkpoint_extra``: plain values stored in both
    checkpoints (e.g. ``{"faces": {...}}``: how the training images were cropped, for prediction to repeat).

    Inside a process group of several processes (``launch.fit_processes``, ``accelerate launch``, ``torchrun``)
    each process trains on its shard of every epoch in DDP, ``batch_size`` is per process, validation is
    gathered from all, and rank 0 alone writes; ``last.pth`` resumes on any number of processes.
    """
    cfg = config or TrainConfig(**overrides)
    run = _setup(model, train_ds, val_ds, run_dir, cfg, checkpoint_extra)
    model, ranks = run.model, run.ranks
    state = _resume(run) if cfg.resume and run.last_path.exists() else _State()
    if state.finished:
        return state.result(run)
    tracking.start(run, state)
    run.extra["processes"] = {
        "processes": ranks.world,
        "batch_size": cfg.batch_size,
        "global_batch_size": run.global_batch,
    }
    epochs = tqdm(range(state.start_epoch, cfg.epochs), desc="epochs", disable=not run.progress,
                  initial=state.start_epoch, total=cfg.epochs)  # fmt: skip
    net: nn.Module = model  # with several processes: model in DDP
    phase: bool | None = None
    try:
        for epoch in epochs:
            net, phase = _start_epoch(run, net, phase, epoch)
            t0 = time.perf_counter()
            trained = _train_epoch(run, net, epoch, state.load_errors)
            row = _epoch_row(run, epoch, trained, t0, state.load_errors)
            _record_epoch(run, state, row)
            distributed.barrier(ranks)
            epochs.set_postfix(val_loss=f"{row['val_loss']:.4f}", val_auc=f"{row['val_auc']:.3f}")
            if state.stopped_early:
                if ranks.is_main:
                    print(f"early stopping after epoch {epoch + 1}: no val-loss improvement for {cfg.patience} epochs")
                break
    finally:
        model.head_only = False
        if ranks.distributed:  # the warm-up's frozen backbone trains again
            model.set_trainable_blocks(model.config.trainable_blocks)
    return state.result(run)
