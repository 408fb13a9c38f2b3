"""Learning-rate schedules: cosine per epoch, warm-up then cosine per step, reduce on plateau, none."""

from __future__ import annotations

import math
from typing import Any

import torch

from deepfake_lib.core.choices import SCHEDULERS


def warmup_cosine_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """The learning-rate factor of optimiser step ``step`` (0-based): a linear rise over ``warmup_steps`` to 1,
    then half a cosine down to 0 at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def steps_per_batch(scheduler: str) -> bool:
    """True when ``scheduler`` steps after every optimiser step (else once per epoch)."""
    return scheduler == "warmup_cosine"


def make_scheduler(
    opt: torch.optim.Optimizer,
    scheduler: str,
    epochs: int,
    steps_per_epoch: int = 1,
    warmup_epochs: float = 1.0,
    patience: int = 3,
) -> Any:
    """The scheduler ``scheduler`` (``SCHEDULERS``) for ``opt``, or None for "none".

    "warmup_cosine" counts optimiser steps (``epochs * steps_per_epoch`` in all, the first ``warmup_epochs``
    worth rising linearly); "cosine" anneals once per epoch over ``epochs``; "plateau" cuts the rate by 0.3
    after ``patience // 2`` epochs without a lower val loss.
    """
    if scheduler not in SCHEDULERS:
        raise ValueError(f"scheduler must be one of {', '.join(SCHEDULERS)}, got {scheduler!r}")
    if scheduler == "warmup_cosine":
        total = max(1, epochs * steps_per_epoch)
        warm = min(total, round(warmup_epochs * steps_per_epoch))
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: warmup_cosine_factor(step, warm, total))
    if scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    if scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.3, patience=max(1, patience // 2))
    return None
