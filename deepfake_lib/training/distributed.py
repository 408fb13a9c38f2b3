"""Training on several processes: joining the process group a launcher set up (Hugging Face Accelerate), each
process's device, the collectives ``fit`` needs, the DDP wrapper, and BatchNorm statistics equal on every process.

With one process (``Ranks()``: rank 0 of 1) every helper is a no-op, so ``fit`` runs exactly as it always has.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from deepfake_lib.core.device import resolve_device

T = TypeVar("T")

FORKED_ENV = "DEEPFAKE_FORKED_PROCESS"  # set by launch.run_processes in the processes it forks


@dataclass(frozen=True)
class Ranks:
    """Where this process stands: ``rank`` of ``world`` processes, ``local_rank`` on its machine."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def current() -> Ranks:
    """The ranks of the joined process group, or ``Ranks()`` when there is none."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return Ranks()


def init_processes(device: str = "auto") -> Ranks:
    """Join the process group that ``accelerate launch``, ``torchrun`` or ``notebook_launcher`` described in the
    environment (``WORLD_SIZE``, ``RANK``, ``MASTER_ADDR``...), through Accelerate's ``PartialState``: NCCL when
    ``device`` resolves to CUDA, gloo on the CPU. Without a launcher (``WORLD_SIZE`` unset or 1): ``Ranks()``.

    A process forked from a kernel that already ran multi-threaded CPU work must stay on one CPU thread (GNU
    OpenMP cannot start its thread pool again after a fork and hangs); freshly started processes (``accelerate
    launch``, ``torchrun``) use ``OMP_NUM_THREADS`` or Accelerate's share of the cores.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Ranks()
    on_cpu = resolve_device(device).type != "cuda"
    if on_cpu and os.environ.get(FORKED_ENV):
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)
    from accelerate import PartialState

    state = PartialState(cpu=on_cpu)
    if state.num_processes <= 1:
        return Ranks()
    return Ranks(state.process_index, state.num_processes, state.local_process_index)


def process_device(device: torch.device, ranks: Ranks) -> torch.device:
    """This process's device: its own GPU (``cuda:LOCAL_RANK``) when training on CUDA with several processes."""
    if ranks.distributed and device.type == "cuda":
        if ranks.local_rank >= torch.cuda.device_count():
            raise RuntimeError(
                f"process {ranks.rank} needs GPU {ranks.local_rank} but this machine has {torch.cuda.device_count()}; "
                "start at most one process per GPU (NUM_PROCESSES)"
            )
        device = torch.device("cuda", ranks.local_rank)
        torch.cuda.set_device(device)
    return device


def backend() -> str:
    """The process group's backend ("nccl", "gloo"), or "none"."""
    return str(dist.get_backend()) if dist.is_available() and dist.is_initialized() else "none"


def _comm_device(device: torch.device) -> torch.device:
    """Where collective tensors live: the GPU for NCCL, the CPU for gloo."""
    return device if dist.get_backend() == "nccl" else torch.device("cpu")


def all_true(flag: bool, ranks: Ranks, device: torch.device) -> bool:
    """``flag`` on every process (one all-reduce); with one process, ``flag``."""
    if not ranks.distributed:
        return bool(flag)
    t = torch.tensor([0.0 if flag else 1.0], device=_comm_device(device))
    dist.all_reduce(t)
    return t.item() == 0


def sum_values(values: list[float], ranks: Ranks, device: torch.device) -> list[float]:
    """Element-wise sums of ``values`` over all processes (float64)."""
    if not ranks.distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=_comm_device(device))
    dist.all_reduce(t)
    return t.tolist()


def gather(obj: T, ranks: Ranks) -> list[T]:
    """Every process's ``obj`` (picklable), in rank order, on every process."""
    if not ranks.distributed:
        return [obj]
    out: list[Any] = [None] * ranks.world
    dist.all_gather_object(out, obj)
    return out


def broadcast(obj: T, ranks: Ranks) -> T:
    """Rank 0's ``obj`` on every process."""
    if not ranks.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(ranks: Ranks) -> None:
    if ranks.distributed:
        dist.barrier()


@contextlib.contextmanager
def main_first(ranks: Ranks) -> Iterator[None]:
    """Rank 0 runs the block first (filling caches, downloading weights), then the others."""
    if not ranks.is_main:
        barrier(ranks)
    yield
    if ranks.is_main:
        barrier(ranks)


def shard_indices(n: int, ranks: Ranks) -> list[int]:
    """This process's items of a dataset of ``n`` for evaluation: ``rank, rank + world, ...`` (disjoint, all covered)."""
    return list(range(ranks.rank, n, ranks.world))


def use_sync_batchnorm(model: nn.Module, device: torch.device, ranks: Ranks) -> nn.Module:
    """On several GPUs, BatchNorm layers normalise with the statistics of the global batch (``SyncBatchNorm``);
    the CPU backend has no SyncBatchNorm, and there ``average_batchnorm`` evens the running statistics instead.
    Parameter and buffer names are unchanged, so checkpoints load into a plain model."""
    if ranks.distributed and device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


def wrap(model: nn.Module, device: torch.device, ranks: Ranks) -> nn.Module:
    """``model`` in ``DistributedDataParallel`` (gradients averaged over processes) with several processes, else
    ``model``. DDP tracks the parameters that require gradients now: wrap again when that set changes. BatchNorm
    buffers are not synchronised on every forward pass (``average_batchnorm`` evens them once per epoch)."""
    if not ranks.distributed:
        return model
    ids = [device.index] if device.type == "cuda" else None
    ddp = nn.parallel.DistributedDataParallel
    no_sync = (
        "forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(ddp).parameters else "broadcast_buffers"
    )
    return ddp(model, device_ids=ids, **{no_sync: False})


@torch.no_grad()
def average_batchnorm(model: nn.Module, ranks: Ranks, device: torch.device) -> int:
    """Average the running mean and variance of the BatchNorm layers in training mode over all processes, so
    evaluation and checkpoints use one set of statistics (per-batch averages over every process's batches, as
    precise BatchNorm over one process's batches gives). Returns the number of layers averaged."""
    if not ranks.distributed:
        return 0
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    for m in bns:
        for buf in (m.running_mean, m.running_var):
            if buf is None:
                continue
            t = buf.detach().to(_comm_device(device), torch.float64)
            dist.all_reduce(t)
            buf.copy_((t / ranks.world).to(buf.device, buf.dtype))
    return len(bns)
