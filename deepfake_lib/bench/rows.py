"""The benchmark's rows: ``_Rows`` records each measurement (images/s, peak memory) in order, and the row groups
measure them: forward passes, work from files on disk, training steps (and the multi-process row measured first)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from deepfake_lib.bench.file_steps import (
    bench_folder,
    bench_folder_onnx,
    bench_footage,
    bench_spectra,
    bench_training_batches,
    bench_video,
    onnx_available,
)
from deepfake_lib.bench.model_steps import bench_bare_backbone, bench_full_model, bench_processes, bench_training
from deepfake_lib.bench.timing import peak_rss_mb
from deepfake_lib.models.detector import EfficientNetLSTM, ModelConfig


@dataclass
class _Rows:
    """The benchmark's rows in the order they are measured, each with images/s and peak memory."""

    device: torch.device
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, key: str, label: str, seconds: float, images: int) -> dict[str, Any]:
        """Record ``images`` processed in ``seconds`` under ``key`` and print the line; returns the row."""
        row = {"label": label, "seconds": seconds, "images_per_s": images / seconds, "peak_rss_mb": peak_rss_mb()}
        if self.device.type == "cuda":
            row["peak_gpu_mb"] = torch.cuda.max_memory_allocated(self.device) / 2**20
        self.rows[key] = row
        print(f"  {label}: {images / seconds:,.1f} images/s", file=sys.stderr)
        return row


def _multi_process_run(
    processes: int, image_size: int, batch_size: int, dev: torch.device, amp: bool, warmup: int, repeats: int
) -> tuple[dict[str, Any] | None, str | None]:
    """Row (h) measured first (forked processes cannot use CUDA once this process has): (result, skip reason)."""
    gpus = torch.cuda.device_count() if dev.type == "cuda" else 0
    if processes > 1 and dev.type == "cuda" and processes > gpus:
        return None, f"(h) skipped: {processes} processes need {processes} GPUs, this machine has {gpus}"
    if processes > 1:
        return bench_processes(processes, image_size, batch_size, dev, amp, max(1, warmup), repeats), None
    return None, None


def _forward_rows(
    rec: _Rows, x: torch.Tensor, image_size: int, amp: bool, compile_model: bool, kw: dict[str, int]
) -> nn.Module:
    """Rows (a), (b), (b'') and (b'): forward passes on ``x`` (B, 1, 3, H, W); returns the (b) model."""
    dev, batch_size = rec.device, x.shape[0]
    rec.add("bare_backbone", "(a) bare EfficientNet-B0 forward", bench_bare_backbone(x, dev, amp, **kw), batch_size)
    model = EfficientNetLSTM(ModelConfig(pretrained=False, image_size=image_size)).to(dev).eval()
    rec.add("full_model", "(b) EfficientNetLSTM forward", bench_full_model(model, x, dev, amp, **kw), batch_size)
    branch = (
        EfficientNetLSTM(ModelConfig(pretrained=False, image_size=image_size, frequency_branch=True)).to(dev).eval()
    )
    seconds = bench_full_model(branch, x, dev, amp, **kw)
    rec.add("full_model_frequency", "(b'') EfficientNetLSTM + frequency branch forward", seconds, batch_size)
    del branch
    if compile_model:
        compiled = torch.compile(model)
        t0 = time.perf_counter()
        bench_full_model(compiled, x, dev, amp, warmup=0, repeats=1)  # the first call compiles
        compile_s = time.perf_counter() - t0
        seconds = bench_full_model(compiled, x, dev, amp, **kw)
        row = rec.add("full_model_compiled", "(b') EfficientNetLSTM, torch.compile", seconds, batch_size)
        row["compile_seconds"] = compile_s
    return model


def _shares(timing: dict[str, float], stages: tuple[str, ...]) -> dict[str, float]:
    """Each stage's share of their sum: the stages are timed in separate runs, so their sum and the timed total
    differ by the noise (a stage the noise made negative is 0)."""
    total = sum(timing[k] for k in stages) or 1.0
    return {k: timing[k] / total for k in stages}


def _file_rows(
    rec: _Rows, model: nn.Module, image_size: int, n_images: int, batch_size: int, workers: int, onnx: bool,
    n_videos: int, folder_kw: dict[str, int], footage: tuple[float, tuple[int, ...]] = (0.0, ()),
) -> None:  # fmt: skip
    """Rows (c), (c-device), (c'), (e), (f), (g), (g-device) and (g'): work that starts from files on disk (decode included)."""
    from deepfake_lib.data.datasets import resolve_num_workers

    dev = rec.device
    n_workers = resolve_num_workers(workers, dev)
    for key, label, decode in (
        ("folder_predict", f"(c) folder prediction, {n_images} JPEGs, PIL in {n_workers} workers", "pil"),
        ("folder_predict_device", f"(c-device) the same decoded on {dev.type}, {n_workers} workers read", "device"),
    ):
        seconds = bench_folder(model, image_size, n_images, batch_size, workers, decode, **folder_kw)
        rec.add(key, label, seconds, n_images)
    if onnx and onnx_available():
        seconds, provider = bench_folder_onnx(model, image_size, n_images, batch_size, workers, **folder_kw)
        rec.add("folder_predict_onnx", f"(c') folder prediction, onnxruntime ({provider})", seconds, n_images)
        model.to(dev)
    elif onnx:
        print("  (c') skipped: the [onnx] extra is not installed (pip install -e '.[onnx]')", file=sys.stderr)
    for resolution in footage[1]:
        t = bench_footage(resolution, footage[0], image_size, dev, folder_kw["repeats"])
        label = (f"(v-{resolution}p) {t['width']}x{t['height']} {t['duration']:.0f} s video, {t['frames']} frames, faces "
                 f"(decode + faces + model + Grad-CAM)")  # fmt: skip
        row = rec.add(f"video_{resolution}p", label, t["total"], t["frames"])
        row.update(timing=t, time_split=_shares(t, ("decode", "faces", "model")))
    if n_videos:
        video = bench_video(image_size, n_videos, dev, **folder_kw)
        label = f"(e) video scoring, {n_videos} videos, {video['frames']} sampled frames (decode + faces + model)"
        row = rec.add("video_predict", label, video["seconds"], video["frames"])
        row["time_split"] = {k: video[k] / video["seconds"] for k in ("decode", "faces", "model")}
    seconds = bench_spectra(image_size, n_images, batch_size, workers, dev, **folder_kw)
    rec.add("spectra_folder", f"(f) spectra of {n_images} JPEGs (decode + FFT + DCT)", seconds, n_images)
    for key, label, blended, decode in (
        ("train_batches", f"(g) training batches of {n_images} JPEGs (decode + augmentation), {n_workers} workers",
         False, "pil"),
        ("train_batches_device", f"(g-device) the same decoded and augmented on {dev.type}", False, "device"),
        ("train_batches_blended", "(g') the same as self-blended pseudo-fakes (PIL)", True, "pil"),
    ):  # fmt: skip
        seconds = bench_training_batches(image_size, n_images, batch_size, workers, dev, blended, decode, **folder_kw)
        rec.add(key, label, seconds, n_images)


def _training_rows(
    rec: _Rows, x: torch.Tensor, image_size: int, amp: bool, train_kw: dict[str, int],
    multi: dict[str, Any] | None, multi_skipped: str | None, processes: int,
) -> None:  # fmt: skip
    """Rows (d), (d'), (d'') on ``x`` (B, 1, 3, H, W), then (h) from the processes measured first."""
    dev, batch_size = rec.device, x.shape[0]
    rec.add(
        "train_default", "(d) training step, last block trainable (TRAINABLE_BLOCKS 1)",
        bench_training(1, x, dev, amp, image_size, **train_kw), batch_size,
    )  # fmt: skip
    full = rec.add(
        "train_full", "(d') training step, whole backbone trainable (the default, TRAINABLE_BLOCKS -1)",
        bench_training(-1, x, dev, amp, image_size, **train_kw), batch_size,
    )  # fmt: skip
    rec.add(
        "train_full_frequency", "(d'') training step, whole backbone trainable, + frequency branch",
        bench_training(-1, x, dev, amp, image_size, frequency_branch=True, **train_kw), batch_size,
    )  # fmt: skip
    if multi is not None:
        label = f"(h) training step, whole backbone, {processes} processes (DDP), batch {batch_size} per process"
        row = rec.add("train_processes", label, multi["seconds"], batch_size * processes)
        row.update(
            processes=processes, threads_per_process=multi["threads"],
            ratio_to_one_process=row["images_per_s"] / full["images_per_s"],
        )  # fmt: skip
    elif multi_skipped:
        print(f"  {multi_skipped}", file=sys.stderr)
