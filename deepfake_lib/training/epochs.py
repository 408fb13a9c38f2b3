"""The edges of a ``fit`` epoch: seeding and the DDP phase at its start; precise BatchNorm, validation and the
history row at its end."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from deepfake_lib.core.threads import share_cpu
from deepfake_lib.evaluation.inference import predict_loader
from deepfake_lib.evaluation.metrics import basic_metrics
from deepfake_lib.models.detector import EfficientNetLSTM
from deepfake_lib.training import distributed
from deepfake_lib.training.batches import recalibrate_batchnorm
from deepfake_lib.training.run_setup import _Run

if TYPE_CHECKING:
    from deepfake_lib.training.loop import TrainConfig


def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


def _process_seed(seed: int, epoch: int, rank: int) -> int:
    """Torch's seed for an epoch's augmentations on process ``rank`` (rank 0: as with one process)."""
    return _epoch_seed(seed, epoch) + 1_000_003 * rank


def _phase_model(model: EfficientNetLSTM, device: torch.device, ranks: distributed.Ranks) -> nn.Module:
    """The module to train this epoch: ``model``, or with several processes ``model`` in DDP over the parameters
    that train now (head-only warm-up epochs leave the backbone out of gradient averaging)."""
    if not ranks.distributed:
        return model
    model.set_trainable_blocks(model.config.trainable_blocks)
    if model.head_only:
        for p in model.backbone.parameters():
            p.requires_grad = False
    return distributed.wrap(model, device, ranks)


def _start_epoch(run: _Run, net: nn.Module, phase: bool | None, epoch: int) -> tuple[nn.Module, bool | None]:
    """Seed the epoch's randomness from ``(seed, epoch)``, set the head-only warm-up, and return the module to
    train (``model``, or with several processes ``model`` in DDP for this phase) in training mode."""
    cfg, model, ranks = run.cfg, run.model, run.ranks
    if run.device.type == "cpu" and not ranks.distributed:
        share_cpu(0.1)  # as many threads as the cores other processes leave free (threads of several processes: 1)
    torch.manual_seed(_process_seed(cfg.seed, epoch, ranks.rank))
    if run.sampler is not None:
        run.sampler.generator.manual_seed(_epoch_seed(cfg.seed, epoch))
    model.head_only = epoch < cfg.head_warmup_epochs
    if ranks.distributed and model.head_only != phase:
        net, phase = _phase_model(model, run.device, ranks), model.head_only
    net.train()
    return net, phase


def _validate(
    model: nn.Module, loader: Any, device: torch.device, cfg: TrainConfig, ranks: distributed.Ranks
) -> tuple[dict[str, float], list[tuple[str, str]]]:
    """Validation metrics over the whole validation set (``loader``, from ``_setup``); with several processes each
    predicts its shard and the predictions of all are gathered first, so every process computes the same
    metrics."""  # fmt: skip
    val = predict_loader(model, loader, device, cfg.amp, desc="validate", progress=cfg.progress and ranks.is_main)
    parts = distributed.gather((val.labels, val.probs, val.bad), ranks)
    labels = np.concatenate([p[0] for p in parts])
    probs = np.concatenate([p[1] for p in parts])
    return basic_metrics(labels, probs), [b for p in parts for b in p[2]]


def _epoch_row(
    run: _Run, epoch: int, trained: tuple[int, float, int, float], t0: float,
    load_errors: dict[str, str],
) -> dict[str, float]:  # fmt: skip
    """Precise BatchNorm, validation (of the weight average with ``ema_decay``), and the epoch's history row,
    the same on every process."""
    cfg, model, device, ranks = run.cfg, run.scored, run.device, run.ranks
    recalibrate_batchnorm(model, run.train_loader, device, cfg.precise_bn_batches, cfg.amp, ranks)
    distributed.average_batchnorm(model, ranks, device)  # one set of statistics on every process
    vm, val_bad = _validate(model, run.val_loader, device, cfg, ranks)
    n_seen, loss_sum, correct = distributed.sum_values(list(trained[:3]), ranks, device)
    train_time = trained[3]
    for errors in distributed.gather(load_errors, ranks):
        load_errors.update(errors)
    load_errors.update(dict(val_bad))
    row = {
        "epoch": epoch + 1,
        "train_loss": loss_sum / max(n_seen, 1),
        "train_accuracy": correct / max(n_seen, 1),
        "val_loss": vm["log_loss"],
        "val_accuracy": vm["accuracy"],
        "val_balanced_accuracy": vm["balanced_accuracy"],
        "val_auc": vm["auc"],
        "lr": run.optimizer.param_groups[0]["lr"],
        "train_images_per_s": n_seen / train_time if train_time > 0 else math.nan,
        "epoch_seconds": time.perf_counter() - t0,
        "cpu_threads": torch.get_num_threads(),  # sized to the free cores (core.threads): it can change the last digits
    }
    return distributed.broadcast(row, ranks)  # rank 0's timings; every process decides on the same row
