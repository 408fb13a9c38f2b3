"""What one ``fit`` call trains with (``_Run``), and building it: device, data checks, loaders, loss, optimiser."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from deepfake_lib.core.device import configure_backends, needs_grad_scaler, resolve_device
from deepfake_lib.core.runs import BEST_MODEL, LAST_MODEL, run_paths
from deepfake_lib.data.datasets import DeepfakeDataset, resolve_num_workers
from deepfake_lib.data.device_decode import loader_for
from deepfake_lib.data.samplers import BalancedSampler, class_counts, pos_weight
from deepfake_lib.data.scan import DataLayoutError
from deepfake_lib.models.detector import EfficientNetLSTM
from deepfake_lib.training import distributed
from deepfake_lib.training.ema import WeightEMA
from deepfake_lib.training.optimizers import make_optimizer, make_scheduler

if TYPE_CHECKING:
    from deepfake_lib.training.loop import TrainConfig


def _check_training_data(train_ds: DeepfakeDataset, val_ds: DeepfakeDataset, monitor: str) -> None:
    """Refuse data a detector cannot learn from: one class in training, or one in validation for val AUC."""
    counts = class_counts(train_ds.labels)
    if min(counts) == 0:
        raise DataLayoutError(
            f"training data has one class only (real={counts[0]}, fake={counts[1]}): a detector needs both; "
            "add images to the empty class folder"
        )
    if monitor == "val_auc" and min(class_counts(val_ds.labels)) == 0:
        raise DataLayoutError(
            "monitor='val_auc' needs REAL and FAKE images in the validation split, which has one class only; "
            "add images or use monitor='val_loss' (MONITOR = 'val_loss')"
        )


@dataclass
class _Run:
    """What one ``fit`` call trains with: settings, where it writes, its processes, data and optimiser."""

    cfg: TrainConfig
    model: EfficientNetLSTM  # on ``device`` (with SyncBatchNorm on several GPUs)
    paths: dict[str, Path]
    ranks: distributed.Ranks
    device: torch.device
    workers: int
    sampler: Any  # the oversampler or the shared epoch order; None = the loader shuffles
    train_loader: Any
    val_loader: Any  # built once: on an accelerator its workers persist from epoch to epoch
    criterion: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    extra: dict[str, Any]  # plain values stored in both checkpoints
    ema: WeightEMA | None = None

    @property
    def scored(self) -> EfficientNetLSTM:
        """The model that validation scores and the best checkpoint holds: the weight average, or the model."""
        return self.model if self.ema is None else self.ema.module

    @property
    def best_path(self) -> Path:
        return self.paths["checkpoints"] / BEST_MODEL

    @property
    def last_path(self) -> Path:
        return self.paths["checkpoints"] / LAST_MODEL

    @property
    def global_batch(self) -> int:
        return self.cfg.batch_size * self.ranks.world

    @property
    def progress(self) -> bool:
        return self.cfg.progress and self.ranks.is_main


def _training_groups(train_ds: Any) -> list[str]:
    """``train_ds.groups``, or a ``ValueError`` for a dataset that has none."""
    groups = getattr(train_ds, "groups", None)
    if groups is None:
        raise ValueError(
            f"batch_groups needs a training set with groups (a DeepfakeDataset), got {type(train_ds).__name__}"
        )
    return list(groups)


def _setup(
    model: EfficientNetLSTM,
    train_ds: DeepfakeDataset,
    val_ds: DeepfakeDataset,
    run_dir: str | os.PathLike[str],
    cfg: TrainConfig,
    checkpoint_extra: dict[str, Any] | None,
) -> _Run:
    """Place the model on this process's device, check the data, and build the loader, loss and optimiser."""
    paths = run_paths(run_dir)
    ranks = distributed.current()
    device = distributed.process_device(resolve_device(cfg.device), ranks)
    configure_backends(device)
    model = distributed.use_sync_batchnorm(model, device, ranks)
    model.to(device)
    _check_training_data(train_ds, val_ds, cfg.monitor)
    labels, global_batch = train_ds.labels, cfg.batch_size * ranks.world
    workers = resolve_num_workers(cfg.num_workers, device)
    groups = _training_groups(train_ds) if cfg.batch_groups else None
    sampler: Any = None
    if cfg.balance == "oversample" or groups is not None:
        sampler = BalancedSampler(labels, cfg.seed, groups=groups, balance=cfg.balance == "oversample")
    if sampler is None and ranks.distributed:  # every process must draw the same epoch order
        sampler = torch.utils.data.RandomSampler(train_ds, generator=torch.Generator().manual_seed(cfg.seed))
    train_loader = loader_for(
        train_ds, cfg.batch_size, device, cfg.decode, shuffle=sampler is None, sampler=sampler, num_workers=workers,
        pin_memory=device.type == "cuda", drop_last=len(train_ds) > global_batch,
        shard=(ranks.rank, ranks.world) if ranks.distributed else None,
    )  # fmt: skip
    val_loader = loader_for(
        val_ds, cfg.batch_size * 2, device, cfg.decode, num_workers=workers, pin_memory=device.type == "cuda",
        sampler=distributed.shard_indices(len(val_ds), ranks) if ranks.distributed else None,
    )  # fmt: skip
    if ranks.distributed and ranks.is_main:
        print(
            f"{ranks.world} processes ({distributed.backend()}, {device.type}): {cfg.batch_size} images per process per step, "
            f"global batch {global_batch}"
        )
    weight = pos_weight(labels).to(device) if cfg.balance == "weight" else None
    model.set_temperature(1.0)  # training works on raw logits; 03 calibrates the trained model
    optimizer = make_optimizer(model, cfg)
    return _Run(
        cfg, model, paths, ranks, device, workers, sampler, train_loader, val_loader,
        nn.BCEWithLogitsLoss(pos_weight=weight), optimizer, make_scheduler(optimizer, cfg, max(1, len(train_loader))),
        torch.amp.GradScaler("cuda", enabled=needs_grad_scaler(device, cfg.amp)), dict(checkpoint_extra or {}),
        WeightEMA(model, cfg.ema_decay) if cfg.ema_decay else None,
    )  # fmt: skip
