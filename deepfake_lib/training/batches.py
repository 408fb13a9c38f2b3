"""Which batches can train (two or more good images, skipped together on every process), and precise BatchNorm."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from deepfake_lib.core.device import autocast
from deepfake_lib.training import distributed


def usable_batches(
    batches: Any,
    ranks: distributed.Ranks | None = None,
    device: torch.device | None = None,
    errors: dict[str, str] | None = None,
) -> Any:
    """The batches of ``batches`` that can train: two or more good items (BatchNorm cannot train on one image);
    unreadable files go into ``errors``. With several processes a batch is skipped on all of them together
    (one all-reduce), so DDP's and SyncBatchNorm's collectives stay matched."""
    ranks = ranks or distributed.Ranks()
    for batch in batches:
        if errors is not None:
            errors.update(dict(batch["bad"]))
        ok = batch["x"] is not None and len(batch["y"]) >= 2
        if distributed.all_true(ok, ranks, device or torch.device("cpu")):
            yield batch


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module,
    loader: Any,
    device: torch.device,
    max_batches: int,
    amp: bool,
    ranks: distributed.Ranks | None = None,
) -> int:
    """Precise BatchNorm: recompute the running statistics of BatchNorm layers in training mode as exact
    averages over up to ``max_batches`` batches of ``loader`` (frozen layers, in eval mode, are untouched).

    The running averages lag behind the weights (momentum 0.1, a handful of steps per epoch on a small
    dataset), and a backbone trained from scratch then collapses in eval mode; exact statistics fix that.
    With several processes each uses up to ``max_batches`` of its own batches (skipping a batch together; then
    ``distributed.average_batchnorm`` evens the statistics). Returns the number of batches this process used.
    """
    ranks = ranks or distributed.Ranks()
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    if not bns or max_batches <= 0:
        return 0
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    used = 0
    for batch in usable_batches(loader, ranks, device):
        with autocast(device, amp):
            model(batch["x"].to(device, non_blocking=True))
        used += 1
        if used >= max_batches:
            break
    for m, momentum in zip(bns, momenta, strict=True):
        m.momentum = momentum
    return used
