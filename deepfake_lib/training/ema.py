"""An exponential moving average of a model's weights (``torch.optim.swa_utils.AveragedModel``), with warm-up."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


def ema_decay_at(decay: float, n_averaged: int) -> float:
    """The decay of the update after ``n_averaged`` earlier ones: ``min(decay, (1 + n) / (10 + n))``, so the
    average follows the fast-changing weights of the first steps and settles to ``decay`` later (a small
    dataset never reaches a horizon of ``1 / (1 - decay)`` steps otherwise)."""
    return min(decay, (1.0 + n_averaged) / (10.0 + n_averaged))


class WeightEMA:
    """``module``: a copy of the model whose parameters and buffers are the moving average of the model's.

    ``update()`` after each optimiser step; ``module`` is what validation scores and the best checkpoint holds.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.model = model
        self.averaged = AveragedModel(model, avg_fn=self._average, use_buffers=True)

    def _average(self, averaged: torch.Tensor, current: torch.Tensor, n_averaged: torch.Tensor) -> torch.Tensor:
        d = ema_decay_at(self.decay, int(n_averaged))
        return averaged * d + current * (1.0 - d)

    @property
    def module(self) -> nn.Module:
        """The averaged model, with the live model's frozen-layer settings (head-only warm-up) and every
        submodule in the live one's train/eval mode (frozen BatchNorm layers stay frozen)."""
        module = self.averaged.module
        if hasattr(self.model, "head_only"):
            module.head_only = self.model.head_only
        for averaged, live in zip(module.modules(), self.model.modules(), strict=True):
            averaged.training = live.training
        return module

    @torch.no_grad()
    def update(self) -> None:
        self.averaged.update_parameters(self.model)

    def state_dict(self) -> dict[str, Any]:
        return self.averaged.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.averaged.load_state_dict(state)
