"""``run_bench``: every row of the speed benchmark in one run, as a short sequence of row groups."""

from __future__ import annotations

import sys
from typing import Any

import torch

from deepfake_lib.bench.inputs import FOOTAGE
from deepfake_lib.bench.results import _result
from deepfake_lib.bench.rows import _file_rows, _forward_rows, _multi_process_run, _Rows, _training_rows
from deepfake_lib.core.device import configure_backends, resolve_device


def run_bench(
    image_size: int = 224,
    batch_size: int = 32,
    device: str = "auto",
    threads: int | None = None,
    repeats: int = 5,
    warmup: int = 2,
    n_images: int = 128,
    workers: int = -1,
    amp: bool = True,
    compile_model: bool = False,
    onnx: bool = True,
    n_videos: int = 4,
    processes: int = 2,
    footage_seconds: float = 30.0,
    resolutions: tuple[int, ...] = tuple(FOOTAGE),
) -> dict[str, Any]:
    """Measure every row (row (h) in forked processes); returns the ``bench.json`` dict. ``footage_seconds``:
    length of the camera files of rows (v) at ``resolutions`` (0 skips them)."""
    dev = resolve_device(device)
    if threads:
        torch.set_num_threads(threads)
    configure_backends(dev)
    torch.manual_seed(0)
    multi, multi_skipped = _multi_process_run(processes, image_size, batch_size, dev, amp, warmup, repeats)
    x = torch.randn(batch_size, 1, 3, image_size, image_size, device=dev)
    rec = _Rows(dev)
    print(
        f"benchmarking on {dev} ({torch.get_num_threads()} threads), batch {batch_size}, {image_size}px",
        file=sys.stderr,
    )
    model = _forward_rows(rec, x, image_size, amp, compile_model, {"warmup": warmup, "repeats": repeats})
    folder_kw = {"warmup": 1, "repeats": max(1, repeats // 2)}
    footage = (footage_seconds, tuple(resolutions) if footage_seconds > 0 else ())
    _file_rows(rec, model, image_size, n_images, batch_size, workers, onnx, n_videos, folder_kw, footage)
    train_kw = {"warmup": max(1, warmup), "repeats": repeats}
    _training_rows(rec, x, image_size, amp, train_kw, multi, multi_skipped, processes)
    return _result(rec, image_size, batch_size, amp, repeats)
