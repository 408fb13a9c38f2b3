"""Score images with an exported ONNX detector through onnxruntime: no PyTorch in this path.

The file's metadata (written by ``deepfake_lib.deploy.export``) holds everything a consumer needs: the input size, the
preprocessing, the decision threshold and the class names. ``OnnxPredictor`` reads it, checks that the graph
fits it, and reproduces the evaluation transform with PIL and numpy (``images.resize_center_crop``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from deepfake_lib.core.files import weights_file_problem
from deepfake_lib.core.images import ImageLoadError, load_image, resize_center_crop, to_rgb
from deepfake_lib.predict.predictors import BasePredictor
from deepfake_lib.predict.results import BatchScores, PredictError, Prediction, decide

ONNX_FORMAT = "deepfake-workbench/onnx"
ONNX_FORMAT_VERSION = 1
INPUT_NAME = "input"
OUTPUT_NAMES = ("logit", "probability")
NO_HEATMAP_NOTE = (
    "no Grad-CAM with --runtime onnx (an ONNX graph has no gradients): use the .pth checkpoint for heatmaps"
)
_EXPORT_HINT = "export one with: python -m deepfake_lib.cli.export --weights best_model.pth --out model.onnx"


class OnnxModelError(PredictError):
    """An ONNX file that this workbench cannot score with; a one-line message naming the file."""


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the model's input: RGB, ``resize_center_crop(size, max_aspect)``, scale to [0, 1],
    subtract ``mean`` and divide by ``std`` per channel, layout ``[3, size, size]``."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    max_aspect: float = 4.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "color": "RGB",
            "resize_short_side": self.size,
            "interpolation": "bilinear (PIL, antialiased)",
            "center_crop": self.size,
            "max_aspect": self.max_aspect,
            "scale": "1/255",
            "mean": list(self.mean),
            "std": list(self.std),
            "layout": "[batch, frames, 3, H, W] float32",
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessing:
        return cls(int(d["center_crop"]), tuple(d["mean"]), tuple(d["std"]), float(d.get("max_aspect", 4.0)))

    def __call__(self, image: Image.Image) -> np.ndarray:
        """A PIL image (any mode) -> ``[3, size, size]`` float32, normalized like the PyTorch eval transform."""
        img = resize_center_crop(to_rgb(image), self.size, self.max_aspect)
        x = np.asarray(img, dtype=np.float32) / np.float32(255.0)
        x = (x - np.asarray(self.mean, dtype=np.float32)) / np.asarray(self.std, dtype=np.float32)
        return np.ascontiguousarray(x.transpose(2, 0, 1))


def _providers(device: str) -> list[str]:
    """onnxruntime execution providers for a ``--device`` value (``auto`` prefers CUDA when installed)."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    device = str(device)
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in available:
            raise PredictError(
                f"--device {device}: this onnxruntime has no CUDA provider (available: {', '.join(available)}); "
                "install onnxruntime-gpu or use --device cpu"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "auto":
        return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    raise PredictError(f"--device {device}: the ONNX runtime takes auto, cpu or cuda")


def _check_file(path: Path) -> None:
    problem = weights_file_problem(path, "ONNX")
    if problem:
        raise OnnxModelError(f"{path}: {problem}")
    with open(path, "rb") as fh:
        if fh.read(4) == b"PK\x03\x04":
            raise OnnxModelError(
                f"{path}: a PyTorch checkpoint, not an ONNX model: use --runtime torch, or {_EXPORT_HINT}"
            )


def load_session(path: str | os.PathLike[str], device: str = "auto", threads: int | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` for ``path``; raises ``OnnxModelError`` for a missing, empty, LFS
    pointer, PyTorch or unreadable (truncated, corrupt) file."""
    p = Path(path)
    _check_file(p)
    try:
        import onnxruntime as ort
    except ImportError:
        raise PredictError("--runtime onnx needs onnxruntime: pip install -e '.[onnx]'") from None
    providers = _providers(device)
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: keep stderr to our own one-line messages
    if threads:
        options.intra_op_num_threads = int(threads)
    try:
        return ort.InferenceSession(str(p), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail / InvalidProtobuf / InvalidGraph types
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OnnxModelError(f"{p}: not a readable ONNX model, truncated or corrupt ({msg[:200]})") from None


def read_metadata(session: Any, path: str | os.PathLike[str] = "<onnx>") -> dict[str, Any]:
    """The workbench metadata of a loaded model, decoded (JSON values parsed), after checking that the graph's
    input and outputs fit it. Raises ``OnnxModelError`` for a model from elsewhere or one that does not fit."""
    raw = dict(session.get_modelmeta().custom_metadata_map)
    inputs = [(i.name, list(i.shape)) for i in session.get_inputs()]
    if raw.get("format") != ONNX_FORMAT:
        shown = ", ".join(f"{n} {s}" for n, s in inputs)
        raise OnnxModelError(
            f"{path}: not a deepfake-workbench detector (no '{ONNX_FORMAT}' metadata; inputs: {shown}); {_EXPORT_HINT}"
        )
    try:
        meta: dict[str, Any] = {k: json.loads(v) for k, v in raw.items() if k != "format"}
    except json.JSONDecodeError as exc:
        raise OnnxModelError(f"{path}: unreadable workbench metadata ({exc})") from None
    meta["format"] = raw["format"]
    version = int(meta.get("format_version", 0))
    if version > ONNX_FORMAT_VERSION:
        raise OnnxModelError(f"{path}: ONNX format v{version} is newer than this library supports")
    for key in ("image_size", "threshold", "preprocessing", "class_names", "frames"):
        if key not in meta:
            raise OnnxModelError(f"{path}: workbench metadata lacks '{key}'; re-export the model")
    threshold = meta["threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 <= threshold <= 1.0:
        raise OnnxModelError(f"{path}: stored threshold {threshold!r} is not a probability in [0, 1]; re-export")
    size, frames = int(meta["image_size"]), int(meta["frames"])
    if len(inputs) != 1 or inputs[0][0] != INPUT_NAME:
        raise OnnxModelError(f"{path}: expected one input named '{INPUT_NAME}', found {inputs}")
    shape = inputs[0][1]
    want = [None, frames, 3, size, size]  # None: the dynamic batch axis
    fits = len(shape) == 5 and all(w is None or s == w for s, w in zip(shape, want, strict=True))
    if not fits:
        raise OnnxModelError(
            f"{path}: its input {shape} does not match its metadata (expected [batch, {frames}, 3, {size}, {size}]);"
            " re-export the model"
        )
    outputs = [o.name for o in session.get_outputs()]
    if "probability" not in outputs:
        raise OnnxModelError(f"{path}: no 'probability' output (outputs: {outputs}); re-export the model")
    return meta


class OnnxPredictor(BasePredictor):
    """An exported detector in onnxruntime: ``predict`` and ``iter_files`` as ``Predictor``'s, without heatmaps.

    A model exported for clips of T = 1 frame scores images (a clip of one frame, as in PyTorch); one exported
    for T > 1 scores clips only (``score``), and refuses images.
    """

    def __init__(self, session: Any, meta: dict[str, Any], path: Path, threshold: float | None = None) -> None:
        t = float(meta["threshold"]) if threshold is None else float(threshold)
        super().__init__(int(meta["image_size"]), t, path, meta.get("faces"))
        self.session = session
        self.meta = meta
        self.preprocess = Preprocessing.from_dict(meta["preprocessing"])
        self.frames = int(meta["frames"])

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        device: str = "auto",
        threshold: float | None = None,
        threads: int | None = None,
    ) -> OnnxPredictor:
        """Load and check an exported model (raises ``OnnxModelError``); ``threshold`` None = the stored one."""
        session = load_session(path, device, threads)
        return cls(session, read_metadata(session, path), Path(path), threshold)

    def _check_images_allowed(self) -> None:
        if self.frames > 1:
            raise PredictError(
                f"{self.checkpoint}: exported for clips of {self.frames} frames, so it cannot score an image; "
                "export with --frames 1 (the default) to score images"
            )

    def score(self, x: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """``x [B, T, 3, S, S]`` float32 (preprocessed) -> FAKE probabilities ``[B]`` (float64)."""
        probs = [
            self.session.run(["probability"], {INPUT_NAME: np.ascontiguousarray(x[i : i + batch_size])})[0]
            for i in range(0, len(x), batch_size)
        ]
        return np.concatenate(probs).astype(np.float64) if probs else np.zeros(0)

    def predict(
        self, images: Sequence[Image.Image | str | os.PathLike[str]], heatmaps: bool = True, batch_size: int = 16
    ) -> list[Prediction]:
        """Predict PIL images or image files (raises ``ImageLoadError`` for a bad file); ``heatmap`` is always
        None (``heatmaps`` is accepted for the common interface)."""
        self._check_images_allowed()
        pils, paths = self.load_images(images)
        if not pils:
            return []
        x = np.stack([self.preprocess(img) for img in pils])[:, None]
        probs = self.score(x, batch_size)
        return [
            Prediction(float(p), decide(float(p), self.threshold), self.threshold, None, img, path)
            for p, img, path in zip(probs, pils, paths, strict=True)
        ]

    def iter_files(
        self,
        paths: Sequence[str | os.PathLike[str]],
        batch_size: int = 16,
        num_workers: int = -1,
        heatmaps: bool = True,
        progress: bool = True,
        desc: str = "predict",
    ) -> Iterator[BatchScores]:
        """Score image files in batches, decoding on a thread pool (``num_workers`` threads, -1: up to 4);
        unreadable files come back in ``bad``. ``heatmaps`` is ignored: never any."""
        from concurrent.futures import ThreadPoolExecutor

        from tqdm.auto import tqdm

        self._check_images_allowed()
        workers = min(4, os.cpu_count() or 1) if num_workers < 0 else max(1, num_workers)

        def load(path: str | os.PathLike[str]) -> tuple[str, np.ndarray | None, str]:
            try:
                return str(path), self.preprocess(load_image(path)), ""
            except ImageLoadError as exc:
                return str(path), None, exc.reason

        with (
            ThreadPoolExecutor(workers) as pool,
            tqdm(total=len(paths), desc=desc, unit="img", disable=not progress) as bar,
        ):
            for start in range(0, len(paths), batch_size):
                loaded = list(pool.map(load, paths[start : start + batch_size]))
                good = [(p, x) for p, x, _ in loaded if x is not None]
                bad = [(p, reason) for p, x, reason in loaded if x is None]
                probs = self.score(np.stack([x for _, x in good])[:, None]) if good else np.zeros(0)
                bar.update(len(loaded))
                yield BatchScores([p for p, _ in good], probs, None, bad)
