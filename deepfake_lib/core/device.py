"""Device choice, seeding and mixed precision helpers."""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/``None`` -> CUDA when available, else Apple MPS, else CPU; otherwise ``torch.device(device)``.

    CUDA's availability is asked through NVML, which leaves CUDA uninitialised, so a notebook kernel that asked can
    still fork training processes that use the GPUs (``launch.fit_processes``).
    """
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {str(device)!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available; use DEVICE='auto' or 'cpu'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise RuntimeError(f"device {device!r} requested but this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    mps = getattr(torch.backends, "mps", None)
    if dev.type == "mps" and (mps is None or not mps.is_available()):
        raise RuntimeError(f"device {device!r} requested but Apple MPS is not available; use DEVICE='auto' or 'cpu'")
    return dev


def device_problem(device: str | None) -> str | None:
    """Why ``device`` cannot be used on this machine (unknown, no CUDA, no such GPU, no MPS), or None."""
    if device is None or str(device) == "auto":
        return None
    try:
        resolve_device(str(device))
    except (RuntimeError, ValueError) as exc:
        return " ".join(str(exc).split())
    return None


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def autocast(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager:
    """Mixed precision on CUDA (bf16 where supported, else fp16); a no-op elsewhere."""
    if not enabled or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


def needs_grad_scaler(device: torch.device, amp: bool) -> bool:
    """fp16 autocast needs loss scaling; bf16 and fp32 do not."""
    return amp and device.type == "cuda" and not torch.cuda.is_bf16_supported()


def configure_backends(device: torch.device) -> None:
    """cudnn autotuning for fixed-size batches on CUDA."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
