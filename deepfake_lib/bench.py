"""Speed benchmark: images/s of the bare EfficientNet backbone (the reference) vs. the workbench, in one run.

    python -m deepfake_lib.bench [--image-size 224] [--batch-size 32] [--device auto] [--threads N]

Rows: (a) bare efficientnet-pytorch forward, (b) full EfficientNetLSTM forward, (b'') the same with the
frequency branch, (c) folder prediction from JPEG files (decode + transforms + model, no heatmaps), (c-device)
the same with the JPEGs decoded on the device (``DECODE="device"``, the default on CUDA), (c') the same
through the exported ONNX model in onnxruntime (when the ``[onnx]`` extra is installed), (e) video scoring,
(f) spectra of a JPEG folder (decode + FFT + DCT, what notebook 07 and the spectral baseline read), (g) training
batches from a JPEG folder as they are, (g-device) decoded and augmented on the device, and (g') as self-blended
pseudo-fakes (``FAKES`` in 02), (d) training
step at the default freezing and with the whole backbone trainable, (d'') the latter with the frequency branch,
(h) the whole-backbone training step on ``--processes`` DDP processes (the same batch per process, as forked by
02's ``NUM_PROCESSES``; on the CPU each process gets one thread), with its throughput as a ratio to (d'); peak memory. Median of ``--repeats`` timed runs after warm-up.
"""

from __future__ import annotations

import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from efficientnet_pytorch import EfficientNet
from PIL import Image
from torch import nn

from deepfake_lib import __version__
from deepfake_lib.core.device import autocast, configure_backends, resolve_device
from deepfake_lib.evaluation.inference import model_device
from deepfake_lib.models.detector import EfficientNetLSTM, ModelConfig
from deepfake_lib.training import distributed


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device, warmup: int, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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


def bench_spectra(image_size: int, n_images: int, batch_size: int, workers: int, device: torch.device, **kw: Any):
    """(f) ``spectral.compute_spectra`` over a folder of ``n_images`` JPEGs (decode, eval transform, FFT, DCT)."""
    from deepfake_lib.data.scan import Sample
    from deepfake_lib.explain.spectra import compute_spectra

    with tempfile.TemporaryDirectory() as tmp:
        samples = [Sample(p, i % 2) for i, p in enumerate(write_jpegs(Path(tmp), n_images, image_size))]

        def run() -> None:
            compute_spectra(samples, image_size, batch_size=batch_size, num_workers=workers, device=device,
                            progress=False)  # fmt: skip

        return timed(run, device, **kw)


def bench_training_batches(
    image_size: int, n_images: int, batch_size: int, workers: int, device: torch.device, blended: bool,
    decode: str = "pil", **kw: Any,
) -> float:  # fmt: skip
    """(g) one epoch of augmented training batches from ``n_images`` JPEGs through the DataLoader, the images as
    they are; (g') ``blended``: each one made into a self-blended pseudo-fake first (template landmarks);
    (g-device) ``decode="device"``: the workers read bytes, ``device`` decodes and augments (``device_decode``)."""
    from deepfake_lib.data.datasets import DeepfakeDataset, resolve_num_workers
    from deepfake_lib.data.device_decode import loader_for
    from deepfake_lib.data.scan import Sample
    from deepfake_lib.data.selfblend import SelfBlendedDataset
    from deepfake_lib.data.transforms import build_transform

    with tempfile.TemporaryDirectory() as tmp:
        samples = [Sample(p, 0) for p in write_jpegs(Path(tmp), n_images, image_size)]
        transform = build_transform(image_size, train=True)
        ds = SelfBlendedDataset([], samples, transform) if blended else DeepfakeDataset(samples, transform)
        loader = loader_for(
            ds, batch_size, device, decode, shuffle=True, num_workers=resolve_num_workers(workers, device),
            pin_memory=device.type == "cuda",
        )  # fmt: skip

        def run() -> None:
            for batch in loader:  # on the device, as training gets them
                if batch["x"] is not None:
                    batch["x"].to(device, non_blocking=True)

        return timed(run, device, **kw)


def write_jpegs(folder: Path, n: int, size: int, seed: int = 0) -> list[Path]:
    """``n`` random photo-like JPEGs (``size`` px plus a margin, so the resize is real work)."""
    rng = np.random.default_rng(seed)
    side = int(size * 1.15)
    base = rng.integers(0, 256, (side // 8, side // 8, 3), dtype=np.uint8)
    paths = []
    for i in range(n):
        img = Image.fromarray(np.roll(base, i, axis=0)).resize((side, side), Image.Resampling.BICUBIC)
        noise = rng.integers(-12, 13, (side, side, 3))
        img = Image.fromarray(np.clip(np.asarray(img, dtype=np.int16) + noise, 0, 255).astype(np.uint8))
        path = folder / f"img_{i:04d}.jpg"
        img.save(path, quality=90)
        paths.append(path)
    return paths


def time_folder(
    predictor: Any, device: torch.device, image_size: int, n_images: int, batch_size: int, workers: int, **kw: Any
) -> float:
    """Seconds for ``predict_folder`` with ``predictor`` over ``n_images`` fresh JPEGs, without heatmaps (decode +
    preprocessing + model + CSV)."""
    from deepfake_lib.predict.folder import predict_folder

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "images"
        src.mkdir()
        write_jpegs(src, n_images, image_size)

        def run() -> None:
            predict_folder(
                predictor, src, Path(tmp) / "out", batch_size=batch_size, num_workers=workers, heatmaps=False,
                progress=False,
            )  # fmt: skip

        return timed(run, device, **kw)


def bench_folder(
    model: EfficientNetLSTM, image_size: int, n_images: int, batch_size: int, workers: int, decode: str = "pil",
    **kw: Any,
) -> float:  # fmt: skip
    """(c) predict_folder over ``n_images`` JPEGs without heatmaps: decode + transform + model + CSV; (c-device)
    ``decode="device"``: the JPEGs decoded on the model's device (``device_decode``)."""
    from deepfake_lib.predict.predictors import Predictor

    predictor = Predictor(model, image_size, decode=decode)
    return time_folder(predictor, model_device(model), image_size, n_images, batch_size, workers, **kw)


def bench_folder_onnx(
    model: EfficientNetLSTM, image_size: int, n_images: int, batch_size: int, workers: int, **kw: Any
) -> tuple[float, str]:
    """(c') ``bench_folder`` through ``export_onnx`` + ``OnnxPredictor``: -> (seconds, execution provider)."""
    from deepfake_lib.deploy.export import export_onnx
    from deepfake_lib.models.checkpoint import save_model
    from deepfake_lib.predict.onnx_predictor import OnnxPredictor

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = save_model(model.cpu(), Path(tmp) / "model.pth")
        predictor = OnnxPredictor.from_file(export_onnx(ckpt, Path(tmp) / "model.onnx").path, "auto")
        seconds = time_folder(predictor, torch.device("cpu"), image_size, n_images, batch_size, workers, **kw)
        return seconds, predictor.session.get_providers()[0]


def write_videos(folder: Path, n: int, size: int = 256, n_frames: int = 48, seed: int = 0) -> list[Path]:
    """``n`` mp4 videos of a camera moving over the astronaut photo's face (``demo_video.real_video``)."""
    from deepfake_lib.core.video import write_video
    from deepfake_lib.demo.photos import photo_paths
    from deepfake_lib.demo.videos import real_video

    photo = np.asarray(Image.open(photo_paths()["astronaut"]).convert("RGB"))
    rng = np.random.default_rng(seed)
    return [write_video(folder / f"video_{i}.mp4", real_video(photo, n_frames, size, rng), fps=24.0) for i in range(n)]


def bench_video(image_size: int, n_videos: int, device: torch.device, frames: int = 8, clips: int = 2,
                **kw: Any) -> dict[str, float]:  # fmt: skip
    """(e) ``predict_video`` with face tracks on ``n_videos`` 256 px videos, without Grad-CAM: seconds in all and
    split into decoding (reading the sampled frames), face detection + tracking + cropping, and the model (each
    sampled frame scored alone and in its clip). Returns ``{"seconds", "frames", "decode", "faces", "model"}``."""
    from deepfake_lib.core.video import probe_video, read_frames
    from deepfake_lib.data.clips import ClipSettings, video_clips
    from deepfake_lib.data.faces import FaceDetector
    from deepfake_lib.predict.predictors import Predictor
    from deepfake_lib.predict.video import predict_video

    model = EfficientNetLSTM(ModelConfig(pretrained=False, image_size=image_size, frames=frames)).to(device).eval()
    face = {"margin": 1.3, "keep": "largest", "min_score": 0.9}
    settings = ClipSettings(frames=frames, clips=clips, size=image_size, faces=face)
    predictor = Predictor(model, image_size, clips=settings.to_dict())
    detector = FaceDetector(str(device))
    with tempfile.TemporaryDirectory() as tmp:
        videos = write_videos(Path(tmp), n_videos)
        indices = {v: settings.sampled_frames(probe_video(v).frames) for v in videos}
        decode = timed(lambda: [read_frames(v, indices=indices[v]) for v in videos], device, **kw)
        cut = timed(lambda: [video_clips(v, settings, detector) for v in videos], device, **kw)
        total = timed(lambda: [predict_video(predictor, v, settings, detector, heatmap=False) for v in videos],
                      device, **kw)  # fmt: skip
    n_frames = sum(len(i) for i in indices.values())
    return {"seconds": total, "frames": n_frames, "decode": decode, "faces": cut - decode, "model": total - cut}


FOOTAGE = {480: (854, 480), 720: (1280, 720), 1080: (1920, 1080)}  # rows (v-480p) ... (v-1080p)


def bench_footage(resolution: int, seconds: float, image_size: int, device: torch.device, repeats: int = 1
                  ) -> dict[str, Any]:  # fmt: skip
    """(v) ``predict_video`` as ``predict --video`` runs it on a ``seconds``-long camera file (``write_footage``,
    H.264) at ``resolution`` lines: ``VIDEO_FRAMES`` frames, face tracks (MTCNN on frames at ``DETECT_LONG_SIDE``),
    a face model of one frame, Grad-CAM of the top frame. ``predict.timing.VideoTiming.to_dict``, plus the
    decode seconds of OpenCV's sequential reader for comparison."""
    from deepfake_lib.core.video import probe_video, read_frames
    from deepfake_lib.data.faces import video_detector
    from deepfake_lib.demo.footage import write_footage
    from deepfake_lib.predict.predictors import Predictor
    from deepfake_lib.predict.timing import time_video
    from deepfake_lib.predict.video import VIDEO_FRAMES, predict_video, settings_for

    model = EfficientNetLSTM(ModelConfig(pretrained=False, image_size=image_size)).to(device).eval()
    predictor = Predictor(model, image_size, faces={"margin": 1.3, "size": image_size})
    settings = settings_for(predictor, True, VIDEO_FRAMES)
    detector = video_detector(str(device))
    with tempfile.TemporaryDirectory() as tmp:
        path = write_footage(Path(tmp) / "footage.mp4", *FOOTAGE[resolution], seconds=seconds)
        predict_video(predictor, path, settings, detector)  # warm-up: MTCNN and the model built
        timing = time_video(predictor, path, settings, detector, repeats=repeats).to_dict()
        info = probe_video(path)
        wanted = settings.sampled_frames(info.frames)
        timing["decode_opencv"] = timed(lambda: read_frames(path, indices=wanted, info=info, reader="opencv"),
                                        device, 0, repeats)  # fmt: skip
    return timing


def onnx_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True


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


if __name__ == "__main__":  # the entry point: the command line lives in the cli stage
    from deepfake_lib.cli.bench import entry_point

    sys.exit(entry_point())
