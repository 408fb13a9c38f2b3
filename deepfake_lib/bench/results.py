"""The benchmark's result: the ``bench.json`` dict (every row related to the bare backbone) and its Markdown table."""

from __future__ import annotations

import platform
from typing import TYPE_CHECKING, Any

import torch

from deepfake_lib import __version__
from deepfake_lib.bench.timing import peak_rss_mb

if TYPE_CHECKING:
    from deepfake_lib.bench.rows import _Rows


def _result(rec: _Rows, image_size: int, batch_size: int, amp: bool, repeats: int) -> dict[str, Any]:
    """The ``bench.json`` dict: every row with its ratio to the bare backbone (a), and the run's settings."""
    rows, dev = rec.rows, rec.device
    ref = rows["bare_backbone"]["images_per_s"]
    for row in rows.values():
        row["ratio_to_bare"] = row["images_per_s"] / ref
    return {
        "library_version": __version__,
        "torch": torch.__version__,
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu",
        "threads": torch.get_num_threads(),
        "image_size": image_size,
        "batch_size": batch_size,
        "amp": amp and dev.type == "cuda",
        "repeats": repeats,
        "rows": rows,
        "train_speedup_default_vs_full": rows["train_default"]["images_per_s"] / rows["train_full"]["images_per_s"],
        "peak_rss_mb": peak_rss_mb(),
        "peak_gpu_mb": torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None,
    }


def format_table(result: dict[str, Any]) -> str:
    """A Markdown table of images/s and the ratio to the bare backbone."""
    lines = [
        f"device {result['device']} ({result['device_name']}), {result['threads']} threads, "
        f"{result['image_size']}px, batch {result['batch_size']}, AMP {result['amp']}",
        "",
        "| measurement | images/s | ratio to (a) | peak RSS MiB |",
        "|---|---:|---:|---:|",
    ]
    for row in result["rows"].values():
        lines.append(
            f"| {row['label']} | {row['images_per_s']:,.1f} | {row['ratio_to_bare']:.2f}x | {row['peak_rss_mb']:,.0f} |"
        )
    lines += [
        "",
        f"training speed-up, default freezing vs whole backbone: {result['train_speedup_default_vs_full']:.2f}x",
    ]
    for key, row in result["rows"].items():
        if key.startswith("video_") and "timing" in row:
            t = row["timing"]
            lines.append(f"{key}: {t['total']:.2f} s a video ({t['seconds_per_10s']:.2f} s per 10 s of video): decode "
                         f"{t['decode']:.2f} s (OpenCV in order {t['decode_opencv']:.2f} s), faces {t['faces']:.2f} s, "
                         f"model {t['model']:.2f} s")  # fmt: skip
    video = result["rows"].get("video_predict")
    if video:
        split = ", ".join(f"{k} {v:.0%}" for k, v in video["time_split"].items())
        lines.append(f"video scoring time: {split} (images/s there = sampled frames/s)")
    multi = result["rows"].get("train_processes")
    if multi:
        lines.append(
            f"{multi['processes']} training processes ({multi['threads_per_process']} thread(s) each) vs one: "
            f"{multi['ratio_to_one_process']:.2f}x the images/s of (d')"
        )
    compiled = result["rows"].get("full_model_compiled")
    if compiled:
        lines.append(f"torch.compile: {compiled['compile_seconds']:.1f} s to compile before the first batch")
    if result.get("peak_gpu_mb"):
        lines.append(f"peak GPU memory: {result['peak_gpu_mb']:,.0f} MiB")
    return "\n".join(lines)
