"""Start ``fit`` on several processes from a notebook cell, through Hugging Face Accelerate's ``notebook_launcher``.

Processes are forked from the kernel, so they start with the model and the datasets the notebook built; each
joins the process group (gloo on the CPU, NCCL on GPUs), trains its shard, and rank 0 writes the run folder,
from which the notebook then reads the result. From a shell or a cluster job, ``deepfake_lib.cli.train`` under
``accelerate launch`` or ``torchrun`` runs the same training without notebooks.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import torch
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, record

from deepfake_lib.core.device import resolve_device
from deepfake_lib.training import distributed
from deepfake_lib.training.loop import FitResult, TrainConfig, fit, read_fit_result


class LaunchError(RuntimeError):
    """The training processes could not be started, or one of them failed (its error is in the message)."""


def check_num_processes(num_processes: int, device: str = "auto") -> int:
    """``num_processes`` if it can run here: >= 1, and on CUDA at most one process per GPU (counted without
    initialising CUDA in this process, which forked processes could then not use)."""
    if not isinstance(num_processes, int) or num_processes < 1:
        raise ValueError(f"NUM_PROCESSES must be an integer >= 1, got {num_processes!r}")
    if num_processes > 1 and resolve_device(device).type == "cuda":
        gpus = torch.cuda.device_count()
        if num_processes > gpus:
            raise ValueError(
                f"NUM_PROCESSES = {num_processes} but this machine has {gpus} GPU(s): one process per GPU "
                f"(NUM_PROCESSES = {gpus}), or DEVICE = 'cpu' to train on CPU processes"
            )
    return num_processes


def kernel_device(device: str, num_processes: int) -> str:
    """The device for the notebook kernel's own work before a launch (the face landmarks of self-blended
    training): the CPU when several processes will train, so the kernel never initialises CUDA (forked
    processes cannot use CUDA once their parent has)."""
    return "cpu" if num_processes > 1 else str(resolve_device(device))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the process group's rendezvous, a test server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@record
def _fit_in_process(
    model: Any, train_ds: Any, val_ds: Any, run_dir: str, config: TrainConfig, extra: dict[str, Any] | None
) -> None:
    """One launched process: join the process group, train (rank 0 writes the run folder)."""
    distributed.init_processes(config.device)
    fit(model, train_ds, val_ds, run_dir, config, checkpoint_extra=extra)
    torch.distributed.destroy_process_group()


def run_processes(function: Any, args: tuple[Any, ...], num_processes: int) -> None:
    """``function(*args)`` on ``num_processes`` processes forked from this one by ``notebook_launcher``; each must
    join the process group (``distributed.init_processes``). Raises ``LaunchError`` with the failing process's
    error."""
    if torch.cuda.is_initialized():
        raise LaunchError(
            "CUDA is already in use in this kernel, and processes forked from it cannot use it: restart the kernel "
            "and run the notebook from the top without moving anything to the GPU before this cell"
        )
    from accelerate import notebook_launcher

    previous = os.environ.get(distributed.FORKED_ENV)
    os.environ[distributed.FORKED_ENV] = "1"
    try:
        notebook_launcher(function, args, num_processes=num_processes, use_port=str(free_port()))
    except (ChildFailedError, RuntimeError) as exc:
        raise LaunchError(f"{num_processes} processes failed: {_root_cause(exc)}") from exc
    finally:
        if previous is None:
            os.environ.pop(distributed.FORKED_ENV, None)
        else:
            os.environ[distributed.FORKED_ENV] = previous


def fit_processes(
    model: Any,
    train_ds: Any,
    val_ds: Any,
    run_dir: str | os.PathLike[str],
    config: TrainConfig,
    checkpoint_extra: dict[str, Any] | None = None,
    num_processes: int = 1,
) -> FitResult:
    """``fit`` on ``num_processes`` processes (1: in this process, exactly ``fit``). ``config.batch_size`` is per
    process: the global batch is ``batch_size * num_processes``. Raises ``LaunchError`` with the failing
    process's error."""
    check_num_processes(num_processes, config.device)
    if num_processes == 1:
        return fit(model, train_ds, val_ds, run_dir, config, checkpoint_extra=checkpoint_extra)
    run_processes(_fit_in_process, (model, train_ds, val_ds, str(run_dir), config, checkpoint_extra), num_processes)
    return read_fit_result(Path(run_dir))


def _root_cause(exc: BaseException) -> str:
    """The first failing process's error message from an elastic launch error, else ``exc``'s text."""
    while exc.__cause__ is not None and not isinstance(exc, ChildFailedError):
        exc = exc.__cause__
    if isinstance(exc, ChildFailedError):
        rank, failure = exc.get_first_failure()
        message = failure.message
        if isinstance(message, dict):
            message = message.get("message", message)
        if "autograd's threading in combination with fork" in str(message):
            return (
                f"process {rank}: this kernel has run work that started autograd's worker threads (an ONNX export "
                "followed by a training does), and processes forked from it can no longer train: restart the kernel "
                "and run 02 from the top (or train from a shell with torchrun / accelerate launch, see docs/scale-out.md)"
            )
        return f"process {rank}: {message}"
    return str(exc)
