"""The optimiser and learning-rate scheduler ``fit`` trains with, built from a ``TrainConfig``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from deepfake_lib.models.detector import EfficientNetLSTM
from deepfake_lib.training import schedules

if TYPE_CHECKING:
    from deepfake_lib.training.loop import TrainConfig


def make_optimizer(model: EfficientNetLSTM, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with a lower learning rate for trainable backbone blocks than for the LSTM and head."""
    backbone = [p for p in model.backbone.parameters() if p.requires_grad]
    rest = [p for n, p in model.named_parameters() if not n.startswith("backbone.") and p.requires_grad]
    groups = [{"params": rest, "lr": cfg.lr}]
    if backbone:
        backbone_lr = cfg.backbone_lr or (cfg.lr / 10 if model.pretrained_loaded else cfg.lr)
        groups.append({"params": backbone, "lr": backbone_lr})
    return torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int = 1) -> Any:
    """``schedules.make_scheduler`` with ``cfg``'s settings."""
    return schedules.make_scheduler(opt, cfg.scheduler, cfg.epochs, steps_per_epoch, cfg.warmup_epochs, cfg.patience)
