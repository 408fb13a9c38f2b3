"""Rows measured on in-memory batches: forward passes of the bare backbone and of the detector, training steps, and
training steps on several DDP processes."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from efficientnet_pytorch import EfficientNet
from torch import nn

from deepfake_lib.bench.timing import _sync, timed
from deepfake_lib.core.device import autocast, configure_backends, resolve_device
from deepfake_lib.models.detector import EfficientNetLSTM, ModelConfig
from deepfake_lib.training import distributed


def bench_bare_backbone(x: torch.Tensor, device: torch.device, amp: bool, **kw: Any) -> float:
    """(a) The reference: efficientnet-pytorch B0 as a user would run it (eval, no_grad, its own classifier)."""
    net = EfficientNet.from_name("efficientnet-b0", image_size=x.shape[-1]).to(device).eval()
    frames = x[:, 0]

    def run() -> None:
        with torch.no_grad(), autocast(device, amp):
            net(frames)

    return timed(run, device, **kw)


def bench_full_model(model: nn.Module, x: torch.Tensor, device: torch.device, amp: bool, **kw: Any) -> float:
    """(b) EfficientNetLSTM forward under inference_mode (channels_last backbone)."""

    def run() -> None:
        with torch.inference_mode(), autocast(device, amp):
            model(x)

    return timed(run, device, **kw)


def bench_training(
    trainable_blocks: int,
    x: torch.Tensor,
    device: torch.device,
    amp: bool,
    image_size: int,
    frequency_branch: bool = False,
    **kw: Any,
) -> float:
    """(d) One optimizer step (forward, BCE, backward, AdamW) on a batch."""
    model = EfficientNetLSTM(
        ModelConfig(
            pretrained=False, image_size=image_size, trainable_blocks=trainable_blocks,
            frequency_branch=frequency_branch,
        )
    )  # fmt: skip
    model.to(device).train()
    return timed(training_step(model, model, x, device, amp), device, **kw)


def training_step(model: nn.Module, net: nn.Module, x: torch.Tensor, device: torch.device, amp: bool) -> Callable:
    """One optimizer step (forward through ``net``, BCE, backward, AdamW on ``model``'s trainable parameters) on the
    batch ``x`` ``[B, 1, 3, H, W]`` with alternating labels; ``net`` is ``model`` or ``model`` in DDP."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    y = (torch.arange(len(x)) % 2).float().to(device)
    loss_fn = nn.BCEWithLogitsLoss()

    def step() -> None:
        with autocast(device, amp):
            logits = net(x)
        loss = loss_fn(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _train_steps_in_process(
    image_size: int, batch_size: int, device: str, amp: bool, warmup: int, repeats: int, out: str
) -> None:
    """One of the processes of row (h): DDP training steps like 02's on ``batch_size`` random images; rank 0
    writes the wall time of ``repeats`` steps (after ``warmup``, all processes in step) to ``out``."""
    ranks = distributed.init_processes(device)
    dev = distributed.process_device(resolve_device(device), ranks)
    configure_backends(dev)
    torch.manual_seed(ranks.rank)
    model = EfficientNetLSTM(ModelConfig(pretrained=False, image_size=image_size, trainable_blocks=-1))
    model = distributed.use_sync_batchnorm(model, dev, ranks).to(dev).train()
    x = torch.randn(batch_size, 1, 3, image_size, image_size, device=dev)
    step = training_step(model, distributed.wrap(model, dev, ranks), x, dev, amp)
    for _ in range(warmup):
        step()
    _sync(dev)
    distributed.barrier(ranks)
    t0 = time.perf_counter()
    for _ in range(repeats):
        step()
    _sync(dev)
    distributed.barrier(ranks)
    if ranks.is_main:
        Path(out).write_text(json.dumps({"seconds": time.perf_counter() - t0, "threads": torch.get_num_threads()}))
    torch.distributed.destroy_process_group()


def bench_processes(
    n: int, image_size: int, batch_size: int, device: torch.device, amp: bool, warmup: int, repeats: int
) -> dict[str, Any]:
    """(h) ``n`` forked DDP processes (before this process touches CUDA): seconds per step, threads per process."""
    from deepfake_lib.training.launch import run_processes

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "h.json"
        args = (image_size, batch_size, str(device), amp, warmup, repeats, str(out))
        run_processes(_train_steps_in_process, args, n)
        result = json.loads(out.read_text())
    return {"seconds": result["seconds"] / repeats, "threads": result["threads"]}
