"""Rows that start from files on disk (decoding included): folder prediction (PIL, on the device, ONNX), video
scoring, camera footage, spectra and training batches."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from deepfake_lib.bench.inputs import FOOTAGE, write_jpegs, write_videos
from deepfake_lib.bench.timing import timed
from deepfake_lib.evaluation.inference import model_device
from deepfake_lib.models.detector import EfficientNetLSTM, ModelConfig


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
