"""Export a trained detector to ONNX, checked against PyTorch with onnxruntime; the command line.

    python -m deepfake_lib.cli.export --weights best_model.pth --out model.onnx [--frames T] [--opset N]

The graph takes ``input [batch, T, 3, S, S]`` (ImageNet-normalized, as ``Preprocessing`` describes) and
returns ``logit [batch]`` and ``probability [batch]``. The batch axis is dynamic; the clip length T is fixed
(``--frames``, default 1: images). torch.export unrolls the LSTM over time, so one graph serves one T. The
file's metadata holds the decision threshold, the class names, the
preprocessing, the face-crop settings and the source checkpoint's SHA-256, so ``predict --runtime onnx`` (or any
other consumer) scores exactly as the workbench does. Before the file is written, onnxruntime must reproduce
PyTorch's probabilities on a batch of images (synthetic, or ``--check-images DIR``) within ``--tolerance``.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from deepfake_lib.predict.onnx_predictor import (
    INPUT_NAME,
    ONNX_FORMAT,
    ONNX_FORMAT_VERSION,
    OUTPUT_NAMES,
    OnnxPredictor,
    Preprocessing,
    load_session,
    read_metadata,
)

DEFAULT_OPSET = 18
MIN_OPSET = 18
DEFAULT_TOLERANCE = 1e-4


class ExportError(Exception):
    """Bad input for an export (``exit_code`` 2); a one-line message."""

    exit_code = 2


class ExportFailed(ExportError):
    """The exporter failed, or onnxruntime did not reproduce PyTorch (``exit_code`` 1); nothing was written."""

    exit_code = 1


@dataclass
class ExportResult:
    """What ``export_onnx`` wrote and how closely onnxruntime matched PyTorch."""

    path: Path
    size_bytes: int
    max_abs_diff: float
    checked: int
    check_source: str
    metadata: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        return {
            "onnx": str(self.path),
            "size_mb": round(self.size_bytes / 2**20, 2),
            "max_abs_diff": float(f"{self.max_abs_diff:.3g}"),
            "checked": self.checked,
            "check_images": self.check_source,
            "frames": self.metadata["frames"],
            "image_size": self.metadata["image_size"],
            "threshold": round(float(self.metadata["threshold"]), 6),
            "backbone": self.metadata["backbone"],
        }


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def synthetic_images(n: int, size: int, seed: int = 0) -> list[Image.Image]:
    """``n`` deterministic RGB images with smooth structure and noise, at odd sizes around ``size`` so that the
    check also runs the resize and crop."""
    rng = np.random.default_rng(seed)
    images = []
    for i in range(n):
        h, w = size + 7 * (i % 3), size + 11 * (i % 4)
        yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
        base = np.stack(
            [np.sin((c + 1) * 6.28 * (xx * rng.uniform(0.5, 3) + yy * rng.uniform(0.5, 3))) for c in range(3)]
        )
        pixels = (127.5 + 80 * base.transpose(1, 2, 0) + rng.normal(0, 20, (h, w, 3))).clip(0, 255)
        images.append(Image.fromarray(pixels.astype(np.uint8)))
    return images


def check_images(folder: str | os.PathLike[str] | None, n: int, size: int) -> tuple[list[Image.Image], str]:
    """Up to ``n`` readable images from ``folder`` (recursive, unreadable files skipped), or synthetic ones."""
    if folder is None:
        return synthetic_images(n, size), "synthetic"
    from deepfake_lib.core.images import ImageLoadError, list_image_files, load_image

    root = Path(folder)
    if not root.is_dir():
        raise ExportError(f"--check-images {root}: folder not found")
    images = []
    for path in list_image_files(root)[0]:
        try:
            images.append(load_image(path))
        except ImageLoadError:
            continue
        if len(images) == n:
            break
    if not images:
        raise ExportError(f"--check-images {root}: no readable image found")
    return images, str(root)


def metadata(ckpt: dict[str, Any], weights: Path, frames: int) -> dict[str, Any]:
    """The workbench metadata of an export (plain values; ``write_metadata`` stores each as JSON)."""
    import torch

    from deepfake_lib import __version__
    from deepfake_lib.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    from deepfake_lib.models.checkpoint import checkpoint_tta

    cfg = ckpt["config"]
    size = int(cfg["image_size"])
    return {
        "format_version": ONNX_FORMAT_VERSION,
        "threshold": float(ckpt.get("threshold", 0.5)),
        "temperature": float(ckpt.get("temperature", 1.0)),
        "calibrated": "calibration" in ckpt,
        "tta": checkpoint_tta(ckpt),
        "class_names": list(ckpt.get("class_names", ["real", "fake"])),
        "positive_class": "fake",
        "image_size": size,
        "frames": frames,
        "input": f"{INPUT_NAME} [batch, {frames}, 3, {size}, {size}] float32",
        "outputs": {
            "logit": "[batch] FAKE logit (divided by the calibration temperature; the mean of the TTA views)",
            "probability": "[batch] sigmoid(logit): FAKE when >= threshold",
        },
        "preprocessing": Preprocessing(size, IMAGENET_MEAN, IMAGENET_STD).to_dict(),
        "faces": ckpt.get("faces"),
        "backbone": cfg.get("backbone"),
        "source_checkpoint": weights.name,
        "source_sha256": sha256(weights),
        "library_version": __version__,
        "torch_version": torch.__version__,
    }


def write_metadata(path: Path, meta: dict[str, Any]) -> None:
    """Store ``meta`` (each value JSON-encoded) and the format tag in the ONNX file's ``metadata_props``."""
    import onnx

    model = onnx.load(str(path))
    props = {"format": ONNX_FORMAT} | {k: json.dumps(v) for k, v in meta.items()}
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "deepfake-workbench"
    model.doc_string = "FAKE/REAL face-forgery detector (EfficientNet + LSTM); see metadata_props"
    onnx.save(model, str(path))


def _scored_module(model: Any) -> Any:
    """The detector with a ``probability`` output next to its logit."""
    import torch

    class Scored(torch.nn.Module):
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            logit = self.net(x).float()
            return logit, torch.sigmoid(logit)

    return Scored(model).eval()


def export_example(x: Any) -> Any:
    """The tracing input from check clips ``x [n, T, 3, S, S]``: a batch of 2 (3 when T is 2). torch.export fixes
    an axis of length 1, and would tie a batch axis to an equally long one."""
    b = 3 if x.shape[1] == 2 else 2
    return x[[i % len(x) for i in range(b)]]


def _torch_export(module: Any, example: Any, path: Path, opset: int) -> None:
    import torch

    dims = {0: torch.export.Dim("batch", min=1)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracing chatter
        program = torch.onnx.export(
            module,
            (example,),
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            opset_version=opset,
            dynamo=True,
            dynamic_shapes=(dims,),
            verbose=False,
        )
        program.save(str(path))


def opset_range() -> tuple[int, int]:
    """The ONNX opsets this PyTorch's exporter writes: its dynamo path starts at 18 (an older opset would come
    out as 18 after a failed conversion); the top is the installed torch's newest."""
    try:
        from torch.onnx._constants import ONNX_MAX_OPSET
    except ImportError:  # a private module: fall back to the newest this code was checked with
        ONNX_MAX_OPSET = 23  # noqa: N806
    return MIN_OPSET, int(ONNX_MAX_OPSET)


def export_onnx(
    weights: str | os.PathLike[str],
    out: str | os.PathLike[str],
    frames: int = 1,
    opset: int = DEFAULT_OPSET,
    images: str | os.PathLike[str] | None = None,
    n_check: int = 8,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ExportResult:
    """Export checkpoint ``weights`` to ``out`` and verify it; raises ``ExportError`` (``model.CheckpointError``
    for a checkpoint that is not ours). ``frames``: the clip length T (1: images).

    The check scores ``n_check`` images (from ``images``, else synthetic) both ways: PyTorch with the eval
    transform, onnxruntime on the CPU through ``OnnxPredictor`` (its own numpy preprocessing), as clips of
    ``frames`` frames, in one batch and one by one (the dynamic batch axis). Nothing is written unless the
    largest absolute difference of the probabilities is at most ``tolerance``.
    """
    import torch

    from deepfake_lib.core.runs import atomic_write
    from deepfake_lib.data.transforms import build_transform
    from deepfake_lib.models.checkpoint import checkpoint_tta, load_checkpoint, model_from_checkpoint
    from deepfake_lib.models.tta import with_tta

    src, dst = Path(weights), Path(out)
    if frames < 1:
        raise ExportError(f"--frames must be at least 1, got {frames}")
    low, high = opset_range()
    if not low <= opset <= high:
        raise ExportError(f"--opset {opset}: the exporter (torch.onnx, dynamo) writes opsets {low} to {high}")
    ckpt = load_checkpoint(src)
    model = model_from_checkpoint(ckpt, src).eval()
    model.config.channels_last = False  # a plain NCHW graph; runtimes choose their own layouts
    size = int(ckpt["config"]["image_size"])
    t_clip = int(frames)
    pictures, source = check_images(images, n_check * t_clip, size)
    transform = build_transform(size, train=False)
    n = len(pictures) // t_clip
    if n == 0:
        raise ExportError(f"--check-images: {len(pictures)} image(s), fewer than one clip of {t_clip} frames")
    x = torch.stack([transform(img) for img in pictures[: n * t_clip]]).view(n, t_clip, 3, size, size)
    scored = _scored_module(with_tta(model, checkpoint_tta(ckpt)))  # the graph scores as predict does
    with torch.no_grad():
        expected = scored(x)[1].double().numpy()
    example = export_example(x)
    meta = metadata(ckpt, src, frames)
    diffs: list[float] = []

    def build(tmp: Path) -> None:
        """Export into ``tmp``, add the metadata, then score it with onnxruntime; raise unless it matches."""
        try:
            _torch_export(scored, example, tmp, opset)
        except Exception as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExportFailed(f"{src}: torch.onnx.export failed (opset {opset}): {msg}") from None
        write_metadata(tmp, meta)
        session = load_session(tmp, device="cpu")
        predictor = OnnxPredictor(session, read_metadata(session, tmp), tmp)
        arr = np.stack([predictor.preprocess(img) for img in pictures[: n * t_clip]]).reshape(n, t_clip, 3, size, size)
        got = predictor.score(arr, batch_size=n)
        one_by_one = predictor.score(arr, batch_size=1)
        diff = float(max(np.abs(got - expected).max(), np.abs(one_by_one - expected).max()))
        if not diff <= tolerance:
            raise ExportFailed(
                f"{src}: onnxruntime differs from PyTorch by {diff:.3g} (> tolerance {tolerance:g}) on {n} "
                f"{source} input(s); nothing written"
            )
        diffs.append(diff)

    atomic_write(dst, build)  # a failed check leaves no file (and any earlier one untouched)
    return ExportResult(dst, dst.stat().st_size, diffs[0], n, source, meta)
