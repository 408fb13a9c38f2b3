"""Single image -> ``{"decision", "probability", "heatmap"}``; a folder -> CSV + heatmaps; the command line.

    python -m deepfake_lib.predict --frame IMG --weights W --out DIR [--threshold T] [--device D]
    python -m deepfake_lib.predict --input FOLDER --weights W --out DIR [--batch-size N] [--no-heatmap]
    python -m deepfake_lib.predict --frame IMG|FOLDER --weights W --out DIR --faces [--face-margin M]
    python -m deepfake_lib.predict --frame IMG|FOLDER --weights model.onnx --out DIR [--runtime onnx]
    python -m deepfake_lib.predict --video FILE --weights W --out DIR [--faces]

With ``--faces`` each detected face is cropped (``faces.crop_face``) and scored on its own; the image's decision
is its most suspicious face's. ``--video`` cuts the video into clips the way the model's training videos were cut
and prints the video's verdict with per-frame scores (``video_predict``); folders may hold videos too. A model
exported with ``deepfake_lib.deploy.export`` scores through onnxruntime
(``onnx_predict.OnnxPredictor``: the same JSON and CSV, no Grad-CAM, no PyTorch needed for whole images).

torch and grad-cam are imported inside the functions that need them, so the command line can re-exec itself
with faster glibc malloc settings (see ``reexec_env``) and reject a bad image before paying for those imports.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import logging
import os
import re
import sys
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from deepfake_lib.cli.argtypes import positive_float, positive_int, unit_interval
from deepfake_lib.core.cpu_env import MALLOC_ENV, NO_REEXEC_ENV, reexec_with_malloc_env
from deepfake_lib.core.files import IMAGE_EXTENSIONS
from deepfake_lib.core.images import ImageLoadError, load_image, to_rgb
from deepfake_lib.core.video import VideoError
from deepfake_lib.data.faces import Face, crop_face, no_face_reason, square_box
from deepfake_lib.predict.video import NoClipError

if TYPE_CHECKING:
    import torch

    from deepfake_lib.data.faces import FaceDetector
    from deepfake_lib.models.detector import EfficientNetLSTM

HEATMAP_FILE = "gradcam.png"
CSV_FILE = "predictions.csv"
HEATMAP_DIR = "heatmaps"
CSV_COLUMNS = ("path", "probability", "decision", "heatmap", "error")
FACE_CSV_COLUMNS = (*CSV_COLUMNS, "n_faces")
DEFAULT_FACE_MARGIN = 1.3


class PredictError(Exception):
    """Bad input for prediction (image, folder, checkpoint, device, output folder); a one-line message."""


class NoFaceError(PredictError):
    """Face mode found no face in the image."""


def decide(probability: float, threshold: float) -> str:
    """``"FAKE"`` when ``probability >= threshold``, else ``"REAL"``."""
    return "FAKE" if probability >= threshold else "REAL"


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """FAKE probabilities from logits (any shape), in float64."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def find_checkpoint(run_dir: str | os.PathLike[str], checkpoint: str | os.PathLike[str] | None = None) -> Path:
    """``checkpoint`` if given, else the run's fine-tuned model when it was fine-tuned from the current
    ``best_model.pth``, else ``best_model.pth`` (a fine-tuned model left over from before a re-training is
    passed over, with a warning that says why)."""
    from deepfake_lib.core.runs import BEST_MODEL, CHECKPOINTS, FINETUNED_MODEL, resolve_path

    if checkpoint is not None:
        return resolve_path(checkpoint)
    folder = resolve_path(run_dir) / CHECKPOINTS
    finetuned, best = folder / FINETUNED_MODEL, folder / BEST_MODEL
    if not finetuned.is_file():
        return best
    if not best.is_file():
        return finetuned
    reason = stale_finetune_reason(finetuned, best)
    if reason:
        warnings.warn(f"using {best.name}, not {finetuned.name}: {reason}", stacklevel=2)
        return best
    return finetuned


def stale_finetune_reason(finetuned: Path, best: Path) -> str | None:
    """Why ``finetuned`` does not derive from the current ``best`` (None when it does): its stored
    ``source_weights_id`` differs from ``best``'s weights, or, for files written before ids, it is older."""
    from deepfake_lib.models.detector import CheckpointError, checkpoint_weights_id, load_checkpoint

    try:
        tuned = load_checkpoint(finetuned)
        source = tuned.get("source_weights_id")
        if source is None:
            if finetuned.stat().st_mtime < best.stat().st_mtime:
                return f"{finetuned.name} is older than {best.name} (re-trained since); run 04_finetune again"
            return None
        current = checkpoint_weights_id(load_checkpoint(best))
    except CheckpointError as exc:
        return str(exc)
    if source != current:
        return (
            f"{finetuned.name} was fine-tuned from other weights (id {source}) than the current {best.name} "
            f"(id {current}), which was re-trained since; run 04_finetune again"
        )
    return None


@dataclass
class Prediction:
    """One image's FAKE probability and decision, with its Grad-CAM heatmap ``[H, W]`` (the image's size)."""

    probability: float
    decision: str
    threshold: float
    heatmap: np.ndarray | None = None
    image: Image.Image | None = None
    path: str | None = None

    def decision_at(self, threshold: float) -> str:
        return decide(self.probability, threshold)

    def overlay(self, alpha: float = 0.5) -> Image.Image:
        """The heatmap over the image (red/yellow = high FAKE evidence, blue = low)."""
        from deepfake_lib.explain.heatmaps import overlay

        if self.heatmap is None or self.image is None:
            raise ValueError("this prediction was made without a heatmap")
        return overlay(self.image, self.heatmap, alpha)

    def to_dict(self, heatmap_path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """The command line's JSON: ``{"decision", "probability" (4 decimals), "heatmap" (path or None)}``."""
        return {
            "decision": self.decision,
            "probability": round(float(self.probability), 4),
            "heatmap": None if heatmap_path is None else str(heatmap_path),
        }


@dataclass
class FaceScore:
    """One face: the detection, its ``square_box`` crop ``(left, top, right, bottom)`` in image pixels, and the
    crop's prediction (heatmap ``[h, w]`` at the scored crop's size)."""

    face: Face
    crop_box: tuple[int, int, int, int]
    prediction: Prediction

    @property
    def probability(self) -> float:
        return self.prediction.probability

    @property
    def decision(self) -> str:
        return self.prediction.decision


@dataclass
class FacePrediction:
    """Every face of one image scored alone; the image's probability and decision are its most suspicious
    face's (highest FAKE probability)."""

    faces: list[FaceScore]
    threshold: float
    image: Image.Image
    path: str | None = None

    @property
    def top(self) -> FaceScore:
        """The most suspicious face."""
        if not self.faces:
            raise ValueError("no face in this prediction")
        return max(self.faces, key=lambda f: f.probability)

    @property
    def probability(self) -> float:
        return self.top.probability

    @property
    def decision(self) -> str:
        return decide(self.probability, self.threshold)

    def overlay(self, alpha: float = 0.5, max_side: int | None = 1024) -> Image.Image:
        """The full image with each face's Grad-CAM overlay pasted into its crop box, every box outlined and
        labelled with its decision and probability (the most suspicious in red, drawn last). Images larger than
        ``max_side`` are shrunk."""
        from PIL import ImageDraw, ImageFont

        from deepfake_lib.explain.heatmaps import overlay, to_image_size

        top = self.top
        ordered = [f for f in self.faces if f is not top] + [top]
        canvas = self.image.convert("RGB")  # a copy
        for fs in ordered:
            if fs.prediction.heatmap is None:
                raise ValueError("this prediction was made without a heatmap")
            region = self.image.crop(fs.crop_box)  # full resolution, whatever size the model saw
            heat = to_image_size(fs.prediction.heatmap, region.width, region.height)
            canvas.paste(overlay(region, heat, alpha, max_side=None), fs.crop_box[:2])
        scale = 1.0
        if max_side and max(canvas.size) > max_side:
            scale = max_side / max(canvas.size)
            size = (max(1, round(canvas.width * scale)), max(1, round(canvas.height * scale)))
            canvas = canvas.resize(size, Image.Resampling.BILINEAR)
        draw = ImageDraw.Draw(canvas)
        font_size = max(10, round(max(canvas.size) / 40))
        try:
            font = ImageFont.load_default(size=font_size)
        except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
            font = ImageFont.load_default()
        for fs in ordered:
            colour = (255, 0, 0) if fs is top else (255, 255, 255)
            box = [round(v * scale) for v in fs.crop_box]
            width = max(2, round(max(canvas.size) / 250)) * (2 if fs is top else 1)
            draw.rectangle([box[0], box[1], box[2] - 1, box[3] - 1], outline=colour, width=width)
            label = f"{fs.decision} {fs.probability:.2f}"
            x0, y0, x1, y1 = draw.textbbox((0, 0), label, font=font)
            text_h = y1 - y0 + 4
            y = box[1] - text_h if box[1] >= text_h else box[1]  # above the box, inside it at the top edge
            draw.rectangle([box[0], y, box[0] + x1 - x0 + 6, y + text_h], fill=colour)
            draw.text((box[0] + 3 - x0, y + 2 - y0), label, fill=(0, 0, 0), font=font)
        return canvas

    def to_dict(self, heatmap_path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """``Prediction.to_dict``'s keys plus ``faces``: ``[{"box" [x1, y1, x2, y2], "score", "probability",
        "decision"}]`` (largest face first)."""
        return {
            "decision": self.decision,
            "probability": round(float(self.probability), 4),
            "heatmap": None if heatmap_path is None else str(heatmap_path),
            "faces": [
                {
                    "box": [round(float(v), 1) for v in fs.face.box],
                    "score": round(float(fs.face.score), 4),
                    "probability": round(float(fs.probability), 4),
                    "decision": fs.decision,
                }
                for fs in self.faces
            ],
        }


@dataclass
class BatchScores:
    """One scored batch: ``probs [B]``, ``heatmaps [B, S, S]`` at the model's input size (or None), files
    that failed to load as ``(path, reason)``."""

    paths: list[str]
    probs: np.ndarray
    heatmaps: np.ndarray | None
    bad: list[tuple[str, str]] = field(default_factory=list)


class BasePredictor:
    """What every scoring runtime shares: the input size, the decision threshold, the face-crop settings and face
    mode on top of ``predict``. Subclasses implement ``predict`` and ``iter_files``."""

    def __init__(
        self,
        image_size: int,
        threshold: float = 0.5,
        checkpoint: Path | None = None,
        faces: dict[str, Any] | None = None,
        clips: dict[str, Any] | None = None,
        video_threshold: float | None = None,
    ) -> None:
        """``faces``: the face-crop settings the model was trained with (a checkpoint's ``faces`` entry:
        ``margin``, ``size``); face mode crops the same way (default margin 1.3, crops resized to ``image_size``).
        ``clips``: how its training videos were cut into clips (a checkpoint's ``clips`` entry), for videos.
        ``video_threshold``: the threshold for a video's pooled score (None: ``threshold``)."""
        self.image_size = int(image_size)
        self.clip_settings = dict(clips) if isinstance(clips, dict) else None
        self.threshold = float(threshold)
        self.video_threshold = self.threshold if video_threshold is None else float(video_threshold)
        self.checkpoint = checkpoint
        self.trained_on_faces = isinstance(faces, dict) and bool(faces)
        faces = faces if isinstance(faces, dict) else {}
        margin = faces.get("margin")
        self.face_margin = DEFAULT_FACE_MARGIN if margin is None else float(margin)
        size = faces.get("size", self.image_size)
        self.face_size = int(size) if size else None  # None: crops at their native resolution

    def decide(self, probability: float, threshold: float | None = None) -> str:
        return decide(probability, self.threshold if threshold is None else threshold)

    def predict(
        self, images: Sequence[Image.Image | str | os.PathLike[str]], heatmaps: bool = True, batch_size: int = 16
    ) -> list[Prediction]:
        """Predict PIL images or image files (raises ``ImageLoadError`` for a bad file)."""
        raise NotImplementedError

    def iter_files(
        self,
        paths: Sequence[str | os.PathLike[str]],
        batch_size: int = 16,
        num_workers: int = -1,
        heatmaps: bool = True,
        progress: bool = True,
        desc: str = "predict",
    ) -> Iterator[BatchScores]:
        """Score image files in batches; unreadable files come back in ``bad``, never raise."""
        raise NotImplementedError

    @staticmethod
    def load_images(
        images: Sequence[Image.Image | str | os.PathLike[str]],
    ) -> tuple[list[Image.Image], list[str | None]]:
        """PIL images (converted to RGB) or image files (loaded; raises ``ImageLoadError``) -> (RGB images, the
        path of each, None for an image given in memory)."""
        pils: list[Image.Image] = []
        paths: list[str | None] = []
        for item in images:
            if isinstance(item, Image.Image):
                pils.append(to_rgb(item))
                paths.append(None)
            else:
                pils.append(load_image(item))
                paths.append(str(item))
        return pils, paths

    def predict_one(self, image: Image.Image | str | os.PathLike[str], heatmap: bool = True) -> Prediction:
        return self.predict([image], heatmap)[0]

    def score_faces(
        self,
        images: Sequence[Image.Image],
        faces: Sequence[Sequence[Face]],
        margin: float | None = None,
        heatmaps: bool = True,
        batch_size: int = 16,
    ) -> list[FacePrediction]:
        """Score the given faces of each image (``faces[i]`` for ``images[i]``), all crops in one batched pass.

        Each face is cropped with ``crop_face(margin, self.face_size)`` (``margin`` None = ``self.face_margin``);
        an image with no face gets a ``FacePrediction`` with ``faces == []``.
        """
        margin = self.face_margin if margin is None else float(margin)
        rgb = [to_rgb(img) for img in images]
        crops = [crop_face(img, f, margin, self.face_size) for img, fs in zip(rgb, faces, strict=True) for f in fs]
        preds = iter(self.predict(crops, heatmaps, batch_size))
        out = []
        for img, fs in zip(rgb, faces, strict=True):
            scored = [FaceScore(f, square_box(f.box, margin, img.width, img.height), next(preds)) for f in fs]
            out.append(FacePrediction(scored, self.threshold, img))
        return out

    def predict_faces(
        self,
        image: Image.Image | str | os.PathLike[str],
        detector: FaceDetector,
        margin: float | None = None,
        heatmap: bool = True,
    ) -> FacePrediction:
        """Detect the faces in ``image`` and score each crop (see ``score_faces``); raises ``NoFaceError`` when
        the detector finds none (and ``ImageLoadError`` for a bad file)."""
        path = None if isinstance(image, Image.Image) else str(image)
        img = to_rgb(image) if isinstance(image, Image.Image) else load_image(image)
        faces = detector.detect(img)
        if not faces:
            raise NoFaceError(no_face_reason(detector.min_score))
        result = self.score_faces([img], [faces], margin, heatmap)[0]
        result.path = path
        return result


class Predictor(BasePredictor):
    """A PyTorch model in eval mode with its eval transform and decision threshold: load once, predict many."""

    def __init__(
        self,
        model: EfficientNetLSTM,
        image_size: int,
        threshold: float = 0.5,
        checkpoint: Path | None = None,
        amp: bool = True,
        compile_model: bool = False,
        faces: dict[str, Any] | None = None,
        clips: dict[str, Any] | None = None,
        video_threshold: float | None = None,
    ) -> None:
        """``amp``: mixed precision on CUDA. ``compile_model``: ``torch.compile`` the model for scoring without
        heatmaps (about 1.2x faster on a CPU once compiled; the first batch pays for the compilation).
        ``faces``: see ``BasePredictor``."""
        from deepfake_lib.data.datasets import build_transform

        super().__init__(image_size, threshold, checkpoint, faces, clips, video_threshold)
        self.model = model.eval()
        self.transform = build_transform(self.image_size, train=False)
        self.amp = amp
        self.compiled = None
        if compile_model:
            import torch

            self.compiled = torch.compile(self.model)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @classmethod
    def from_checkpoint(
        cls,
        weights: str | os.PathLike[str],
        device: str | torch.device = "auto",
        threshold: float | None = None,
        compile_model: bool = False,
    ) -> Predictor:
        """Load ``weights`` (raises ``model.CheckpointError``); ``threshold`` None = the checkpoint's own (its
        ``video_threshold`` for videos, when 03 chose one); a given ``threshold`` is used for videos too."""
        from deepfake_lib.core.device import configure_backends, resolve_device
        from deepfake_lib.models.detector import load_model

        dev = resolve_device(device)
        configure_backends(dev)
        model, ckpt = load_model(weights, dev)
        video_threshold = threshold
        if threshold is None:
            threshold = float(ckpt.get("threshold", 0.5))
            video_threshold = ckpt.get("video_threshold")
        image_size = ckpt["config"]["image_size"]
        return cls(
            model, image_size, threshold, Path(weights), compile_model=compile_model, faces=ckpt.get("faces"),
            clips=ckpt.get("clips"), video_threshold=video_threshold,
        )  # fmt: skip

    def score(
        self, x: torch.Tensor, heatmaps: bool = True, batch_size: int = 16
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``x [B, T, 3, S, S]`` normalized (images: T = 1; heatmaps only for T = 1) -> ``(probs [B], heatmaps
        [B, S, S] in [0, 1] or None)``.

        The probabilities always come from the same forward pass as in evaluation (mixed precision on CUDA),
        with or without heatmaps, so an image's decision does not depend on whether it was explained.
        """
        import torch

        from deepfake_lib.core.device import autocast

        net = self.model if self.compiled is None else self.compiled
        with torch.inference_mode(), autocast(self.device, self.amp):
            logits = torch.cat([net(c.to(self.device, non_blocking=True)).float().cpu() for c in x.split(batch_size)])
        probs = sigmoid(logits.double().numpy())
        if not heatmaps:
            return probs, None
        from deepfake_lib.explain.heatmaps import gradcam

        maps, _ = gradcam(self.model, x, batch_size=batch_size)
        return probs, maps

    def predict(
        self, images: Sequence[Image.Image | str | os.PathLike[str]], heatmaps: bool = True, batch_size: int = 16
    ) -> list[Prediction]:
        """Predict PIL images or image files (raises ``ImageLoadError`` for a bad file); heatmaps at each
        image's own size."""
        import torch

        pils, paths = self.load_images(images)
        if not pils:
            return []
        x = torch.stack([self.transform(img) for img in pils]).unsqueeze(1)
        probs, maps = self.score(x, heatmaps, batch_size)
        if maps is not None:
            from deepfake_lib.explain.heatmaps import to_image_size
        out = []
        for i, (img, path) in enumerate(zip(pils, paths, strict=True)):
            heat = None if maps is None else to_image_size(maps[i], img.width, img.height)
            p = float(probs[i])
            out.append(Prediction(p, self.decide(p), self.threshold, heat, img, path))
        return out

    def iter_files(
        self,
        paths: Sequence[str | os.PathLike[str]],
        batch_size: int = 16,
        num_workers: int = -1,
        heatmaps: bool = True,
        progress: bool = True,
        desc: str = "predict",
    ) -> Iterator[BatchScores]:
        """Score image files in batches (a DataLoader; unreadable files come back in ``bad``, never raise)."""
        from tqdm.auto import tqdm

        from deepfake_lib.data.datasets import DeepfakeDataset, Sample, make_loader, resolve_num_workers

        dataset = DeepfakeDataset([Sample(Path(p), -1) for p in paths], self.transform)  # label unknown: -1
        workers = resolve_num_workers(num_workers, self.device)
        loader = make_loader(dataset, batch_size, num_workers=workers, pin_memory=self.device.type == "cuda")
        with tqdm(total=len(dataset), desc=desc, unit="img", disable=not progress) as bar:
            for batch in loader:
                bad = [(str(p), r) for p, r in batch["bad"]]
                if batch["x"] is None:
                    probs, maps = np.zeros(0), None
                else:
                    probs, maps = self.score(batch["x"], heatmaps, batch_size)
                bar.update(len(batch["path"]) + len(bad))
                yield BatchScores(list(batch["path"]), probs, maps, bad)


# --------------------------------------------------------------------------- folders
@dataclass
class FolderResult:
    """What ``predict_folder`` did: one CSV row per file found (scored or not)."""

    rows: list[dict[str, Any]]
    csv_path: Path
    heatmap_dir: Path | None
    threshold: float

    @property
    def scored(self) -> int:
        return sum(1 for r in self.rows if r["probability"] != "")

    @property
    def bad(self) -> int:
        return sum(1 for r in self.rows if r["probability"] == "")

    @property
    def fake(self) -> int:
        return sum(1 for r in self.rows if r["decision"] == "FAKE")

    def summary(self) -> dict[str, Any]:
        return {
            "scored": self.scored,
            "fake": self.fake,
            "real": self.scored - self.fake,
            "bad": self.bad,
            "threshold": round(self.threshold, 6),
            "csv": str(self.csv_path),
            "heatmaps": None if self.heatmap_dir is None else str(self.heatmap_dir),
        }


def heatmap_names(paths: Sequence[Path], root: Path) -> list[str]:
    """``<stem>_gradcam.png`` per image; a stem shared by several images gets its folder path and extension
    added (``sub__img_jpg_gradcam.png``), and a counter as the last resort, so no two names collide."""
    stems = Counter(p.stem.lower() for p in paths)
    used: set[str] = set()
    names = []
    for p in paths:
        base = p.stem
        if stems[p.stem.lower()] > 1:
            try:
                rel = p.relative_to(root)
            except ValueError:
                rel = Path(p.name)
            base = "__".join([*rel.parent.parts, rel.stem + p.suffix.replace(".", "_")])
        name, i = f"{base}_gradcam.png", 1
        while name.lower() in used:
            i += 1
            name = f"{base}_{i}_gradcam.png"
        used.add(name.lower())
        names.append(name)
    return names


def predict_folder(
    predictor: BasePredictor,
    folder: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    batch_size: int = 16,
    num_workers: int = -1,
    heatmaps: bool = True,
    progress: bool = True,
) -> FolderResult:
    """Score every image under ``folder`` (recursive) in batches, and every video (``video_predict``; with a
    PyTorch model).

    Writes ``out_dir/predictions.csv`` (columns ``path, probability, decision, heatmap, error``: one row
    per file, unusable ones with the reason) and ``out_dir/heatmaps/<stem>_gradcam.png`` per scored image
    (for a video: ``heatmaps/<stem>/gradcam.png`` of its most suspicious frame and ``timeline.png``). Raises ``PredictError`` when the
    folder holds no image or video file at all.
    """
    files, heat_dir, name_of, rows = _folder_plan(folder, out_dir, heatmaps)
    if heat_dir is not None:
        from deepfake_lib.explain.heatmaps import save_overlay, to_image_size

    _score_videos(predictor, Path(folder), rows, heat_dir, progress)

    for scores in predictor.iter_files(files, batch_size, num_workers, heatmaps, progress, desc="scoring"):
        for path, reason in scores.bad:
            rows[path]["error"] = reason
        for i, path in enumerate(scores.paths):
            p = float(scores.probs[i])
            rows[path].update(probability=f"{p:.6f}", decision=predictor.decide(p))
            if scores.heatmaps is None:
                continue
            try:  # decode again: the overlay is drawn on the full-size image
                image = load_image(path)
            except ImageLoadError as exc:
                rows[path]["error"] = f"heatmap not written: {exc.reason}"
                continue
            target = heat_dir / name_of[path]
            save_overlay(image, to_image_size(scores.heatmaps[i], image.width, image.height), target)
            rows[path]["heatmap"] = str(target)
    ordered = list(rows.values())
    csv_path = _write_csv(Path(out_dir) / CSV_FILE, ordered, CSV_COLUMNS)
    return FolderResult(ordered, csv_path, heat_dir, predictor.threshold)


def _folder_plan(
    folder: str | os.PathLike[str], out_dir: str | os.PathLike[str], heatmaps: bool, **extra: Any
) -> tuple[list[Path], Path | None, dict[str, str], dict[str, dict[str, Any]]]:
    """The image files of ``folder``, the heatmap folder (made when ``heatmaps``), each file's heatmap name and
    one CSV row per file (unusable files with their reason; ``extra`` columns in every row)."""
    from deepfake_lib.core.images import list_image_files

    root = Path(folder)
    if not root.is_dir():
        raise PredictError(f"{root}: folder not found")
    from deepfake_lib.core.video import list_video_files

    files, skipped = list_image_files(root)
    if not files and not skipped and not list_video_files(root):
        raise _no_images(root)
    heat_dir = Path(out_dir) / HEATMAP_DIR if heatmaps else None
    if heat_dir is not None:
        heat_dir.mkdir(parents=True, exist_ok=True)
    name_of = dict(zip(map(str, files), heatmap_names(files, root), strict=True))
    rows = {str(p): _row(p) | extra for p in files}
    rows |= {str(s.path): _row(s.path, error=s.reason) | extra for s in skipped}
    return files, heat_dir, name_of, rows


def predict_folder_faces(
    predictor: BasePredictor,
    folder: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    detector: FaceDetector,
    margin: float | None = None,
    batch_size: int = 16,
    heatmaps: bool = True,
    progress: bool = True,
) -> FolderResult:
    """``predict_folder`` in face mode: each image is scored by its most suspicious face.

    The CSV gets an ``n_faces`` column; an image without a face keeps an empty probability and the error
    ``no face found (...)``. Heatmaps show every face's Grad-CAM in its crop box (``FacePrediction.overlay``).
    """
    from tqdm.auto import tqdm

    from deepfake_lib.core.runs import atomic_write

    files, heat_dir, name_of, rows = _folder_plan(folder, out_dir, heatmaps, n_faces="")
    _score_videos(predictor, Path(folder), rows, heat_dir, progress, faces=True)
    reason = no_face_reason(detector.min_score)
    with tqdm(total=len(files), desc="faces", unit="img", disable=not progress) as bar:
        for start in range(0, len(files), batch_size):
            loaded: list[tuple[str, Image.Image]] = []
            for path in files[start : start + batch_size]:
                try:
                    loaded.append((str(path), load_image(path)))
                except ImageLoadError as exc:
                    rows[str(path)]["error"] = exc.reason
            found = detector.detect_batch([img for _, img in loaded])
            scored = predictor.score_faces([img for _, img in loaded], found, margin, heatmaps, batch_size)
            for (path, _), result in zip(loaded, scored, strict=True):
                row = rows[path]
                row["n_faces"] = len(result.faces)
                if not result.faces:
                    row["error"] = reason
                    continue
                row.update(probability=f"{result.probability:.6f}", decision=result.decision)
                if heat_dir is not None:
                    picture = result.overlay()
                    target = atomic_write(heat_dir / name_of[path], lambda tmp, p=picture: p.save(tmp, format="PNG"))
                    row["heatmap"] = str(target)
            bar.update(min(batch_size, len(files) - start))
    ordered = list(rows.values())
    csv_path = _write_csv(Path(out_dir) / CSV_FILE, ordered, FACE_CSV_COLUMNS)
    return FolderResult(ordered, csv_path, heat_dir, predictor.threshold)


def _score_videos(
    predictor: BasePredictor,
    root: Path,
    rows: dict[str, dict[str, Any]],
    heat_dir: Path | None,
    progress: bool,
    faces: bool | None = None,
) -> None:
    """Add one row per video under ``root``: its verdict (``video_predict``; face tracks as ``settings_for``
    decides with ``faces``, detected at the face settings' ``min_score``), or the reason it has none."""
    from tqdm.auto import tqdm

    from deepfake_lib.core.video import list_video_files

    videos = list_video_files(root)
    if not videos:
        return
    if not isinstance(predictor, Predictor):
        for path in videos:
            rows.setdefault(str(path), _row(path))["error"] = "videos need a PyTorch checkpoint (--runtime torch)"
        return
    from deepfake_lib.data.faces import FaceDetector
    from deepfake_lib.predict.video import predict_video, settings_for, write_outputs

    settings = settings_for(predictor, faces)
    detector = None
    if settings.faces is not None:
        detector = FaceDetector(str(predictor.device), min_score=float(settings.faces["min_score"]))
    names = heatmap_names(videos, root)
    for path, name in tqdm(list(zip(videos, names, strict=True)), desc="videos", disable=not progress):
        row = rows.setdefault(str(path), _row(path))
        try:
            result = predict_video(predictor, path, settings, detector, heatmap=heat_dir is not None)
        except (VideoError, NoClipError) as exc:
            row["error"] = getattr(exc, "reason", None) or str(exc).split(": ", 1)[-1]
            continue
        row.update(probability=f"{result.probability:.6f}", decision=result.decision)
        if heat_dir is not None:
            folder = heat_dir / name.removesuffix("_gradcam.png")
            heatmap_path, _ = write_outputs(result, folder)
            row["heatmap"] = str(heatmap_path or "")


def _write_csv(path: Path, rows: list[dict[str, Any]], columns: Sequence[str]) -> Path:
    """Write ``rows`` as CSV with ``columns``, atomically."""
    from deepfake_lib.core.runs import atomic_write

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write(path, lambda tmp: tmp.write_text(buf.getvalue(), encoding="utf-8"))


def _no_images(root: Path) -> PredictError:
    from deepfake_lib.core.files import VIDEO_EXTENSIONS

    looked = ", ".join(sorted(IMAGE_EXTENSIONS | VIDEO_EXTENSIONS))
    return PredictError(f"{root}: no image or video files found (looked for {looked})")


def _row(path: Path, error: str = "") -> dict[str, Any]:
    return {"path": str(path), "probability": "", "decision": "", "heatmap": "", "error": error}


# --------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m deepfake_lib.predict",
        description="Is an image or a video FAKE or REAL? Prints one JSON object and writes a Grad-CAM heatmap. "
        "Given a folder, scores every image and video in it and writes a CSV.",
        epilog=f'Image: prints {{"decision", "probability", "heatmap"}} and writes DIR/{HEATMAP_FILE}. '
        f"Folder: writes DIR/{CSV_FILE} (one row per file, unusable ones with the reason) and "
        f"DIR/{HEATMAP_DIR}/<stem>_gradcam.png, prints a JSON summary. With --faces the JSON also lists the "
        f'faces ("box", "score", "probability", "decision") and the CSV gets an n_faces column. '
        f'Video: also "frames" (time, probability, box per sampled frame), "clips", "scores" and DIR/timeline.png. '
        f"Exit codes: 0 done, 2 bad input or "
        f"usage (one line on stderr), 1 unexpected error. On Linux the command re-execs itself once with glibc "
        f"malloc settings that make CPU inference faster; {NO_REEXEC_ENV}=1 skips that.",
    )
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--frame", metavar="PATH", help="an image file, or a folder of images (folder mode)")
    src.add_argument("--input", metavar="PATH", help="same as --frame")
    src.add_argument(
        "--video",
        metavar="FILE",
        help="a video (mp4, avi, mov, mkv, webm): the video's verdict, per-frame scores and DIR/timeline.png",
    )
    parser.add_argument(
        "--weights", required=True, metavar="W", help="a workbench checkpoint (.pth), or a model exported to ONNX"
    )
    parser.add_argument(
        "--runtime",
        choices=("auto", "torch", "onnx"),
        default="auto",
        help="torch: a .pth checkpoint; onnx: an exported .onnx file through onnxruntime, no Grad-CAM "
        "(default auto: onnx for a .onnx file)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created if needed)")
    parser.add_argument("--threshold", type=unit_interval, metavar="T", help="FAKE when p >= T (default: stored)")
    parser.add_argument("--device", default="auto", metavar="D", help="auto (default), cpu, cuda, cuda:1, mps")
    parser.add_argument("--no-heatmap", action="store_true", help="skip Grad-CAM (faster)")
    parser.add_argument(
        "--batch-size", type=positive_int, default=16, metavar="N", help="folder mode batch size (default 16)"
    )
    parser.add_argument(
        "--num-workers", type=int, default=-1, metavar="N", help="folder mode loader workers (-1: automatic)"
    )
    parser.add_argument("--no-progress", action="store_true", help="folder mode: no progress bar")
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile the model (with --no-heatmap; pays off on large folders)"
    )
    parser.add_argument(
        "--faces",
        action="store_true",
        help="detect faces (MTCNN), score each face crop; the image gets its most suspicious face's decision "
        "(videos: follow face tracks even if the model was trained on whole frames)",
    )
    parser.add_argument(
        "--face-margin",
        type=positive_float,
        metavar="M",
        help="with --faces: crop side / face box side (default: the checkpoint's, else 1.3)",
    )
    parser.add_argument("--debug", action="store_true", help="show warnings, log messages and tracebacks")
    return parser


def _one_line(text: object) -> str:
    return re.sub(r"\s*\n\s*", " ", str(text)).strip()


def _prepare_out(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PredictError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from None
    return out


def _device(args: argparse.Namespace) -> torch.device:
    from deepfake_lib.core.device import resolve_device

    try:
        return resolve_device(args.device)
    except (RuntimeError, ValueError) as exc:
        raise PredictError(f"--device {args.device}: {_one_line(exc)}") from None


def runtime_for(weights: str | os.PathLike[str], runtime: str = "auto") -> str:
    """``torch`` or ``onnx``: ``auto`` picks ONNX for a ``.onnx`` file and PyTorch otherwise."""
    if runtime != "auto":
        return runtime
    return "onnx" if Path(weights).suffix.lower() == ".onnx" else "torch"


def _load_predictor(args: argparse.Namespace) -> BasePredictor:
    if args.runtime == "onnx":  # no torch import on this path
        from deepfake_lib.predict.onnx_predictor import OnnxPredictor

        return OnnxPredictor.from_file(args.weights, args.device, args.threshold)
    from deepfake_lib.models.detector import CheckpointError

    device = _device(args)
    try:
        return Predictor.from_checkpoint(args.weights, device, args.threshold, compile_model=args.compile)
    except CheckpointError as exc:
        raise PredictError(str(exc)) from None


@contextlib.contextmanager
def _quiet(quiet: bool) -> Iterator[None]:
    """Keep stderr to the one-line messages: no Python warnings, no library log records (restored on exit)."""
    if not quiet:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        yield
        return
    logger = logging.getLogger("deepfake_lib")
    handler, propagate = logging.NullHandler(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _detector(args: argparse.Namespace, min_score: float = 0.9) -> FaceDetector:
    from deepfake_lib.data.faces import FaceDetector

    return FaceDetector(device=str(_device(args)), min_score=float(min_score))


def _run_faces(args: argparse.Namespace, source: Path, image: Image.Image, out: Path) -> int:
    """Face mode for one image: detect (before the model is loaded), score each face, write the heatmap."""
    detector = _detector(args)
    faces = detector.detect(image)
    if not faces:
        reason = no_face_reason(detector.min_score)
        raise NoFaceError(f"{source}: {reason}; run without --faces to score the whole image")
    predictor = _load_predictor(args)
    result = predictor.score_faces([image], [faces], args.face_margin, heatmaps=not args.no_heatmap)[0]
    heatmap_path = None
    if not args.no_heatmap:
        from deepfake_lib.core.runs import atomic_write

        picture = result.overlay()
        heatmap_path = atomic_write(out / HEATMAP_FILE, lambda tmp: picture.save(tmp, format="PNG"))
    print(json.dumps(_with_note(result.to_dict(heatmap_path), args)))
    return 0


def _warn_if_trained_on_faces(predictor: BasePredictor) -> None:
    if predictor.trained_on_faces:
        print(
            f"warning: this model was trained on face crops (margin {predictor.face_margin:g}); whole images are "
            "outside what it learned: pass --faces to crop faces the same way",
            file=sys.stderr,
        )


def _with_note(result: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The ONNX runtime says why there is no heatmap."""
    if args.runtime == "onnx":
        from deepfake_lib.predict.onnx_predictor import NO_HEATMAP_NOTE

        result["note"] = NO_HEATMAP_NOTE
    return result


def _run_video(args: argparse.Namespace, source: Path, out: Path) -> int:
    """One video: check it (before the model is loaded), cut it into clips, score, write heatmap and timeline."""
    from deepfake_lib.core.video import probe_video
    from deepfake_lib.predict.video import predict_video, settings_for, write_outputs

    if source.is_dir():
        raise PredictError(f"{source}: --video takes a video file; give a folder with --input")
    if args.runtime == "onnx":
        raise PredictError("--video needs --runtime torch (a .pth checkpoint): clips and Grad-CAM need PyTorch")
    probe_video(source)  # a bad video fails here, before the model is loaded
    _prepare_out(out)
    predictor = _load_predictor(args)
    settings = settings_for(predictor, faces=True if args.faces else None)
    if args.face_margin is not None:
        if settings.faces is None:
            raise PredictError("--face-margin only applies to face tracks (--faces, or a model trained on faces)")
        settings = replace(settings, faces={**settings.faces, "margin": args.face_margin})
    detector = _detector(args, settings.faces["min_score"]) if settings.faces is not None else None
    result = predict_video(predictor, source, settings, detector, heatmap=not args.no_heatmap)
    heatmap_path, timeline = write_outputs(result, out)
    print(json.dumps(result.to_dict(heatmap_path, timeline)))
    return 0


def _run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    args.runtime = runtime_for(args.weights, args.runtime)
    if args.video:
        return _run_video(args, Path(args.video), out)
    source = Path(args.frame or args.input)
    if args.face_margin is not None and not args.faces:
        raise PredictError("--face-margin only applies with --faces")
    if args.runtime == "onnx":
        if args.compile:
            raise PredictError("--compile only applies with --runtime torch")
        args.no_heatmap = True
    if source.is_dir():
        from deepfake_lib.core.images import list_image_files
        from deepfake_lib.core.video import list_video_files

        if list_image_files(source) == ([], []) and not list_video_files(source):
            raise _no_images(source)  # before the model is loaded
        _prepare_out(out)
        predictor = _load_predictor(args)
        if args.faces:
            result = predict_folder_faces(
                predictor,
                source,
                out,
                _detector(args),
                args.face_margin,
                args.batch_size,
                not args.no_heatmap,
                not args.no_progress,
            )
        else:
            _warn_if_trained_on_faces(predictor)
            result = predict_folder(
                predictor, source, out, args.batch_size, args.num_workers, not args.no_heatmap, not args.no_progress
            )
        print(json.dumps(_with_note(result.summary(), args)))
        if result.scored == 0:
            msg = f"error: no image in {source} could be scored ({result.bad} unusable); see {result.csv_path}"
            print(msg, file=sys.stderr)
            return 2
        if result.bad:
            print(f"warning: {result.bad} file(s) could not be scored; see {result.csv_path}", file=sys.stderr)
        return 0
    image = load_image(source)  # a bad image fails here, before the model is loaded
    _prepare_out(out)
    if args.faces:
        return _run_faces(args, source, image, out)
    predictor = _load_predictor(args)
    _warn_if_trained_on_faces(predictor)
    pred = predictor.predict([image], heatmaps=not args.no_heatmap)[0]
    heatmap_path = None
    if pred.heatmap is not None:
        from deepfake_lib.explain.heatmaps import save_overlay

        heatmap_path = out / HEATMAP_FILE
        save_overlay(image, pred.heatmap, heatmap_path)
    print(json.dumps(_with_note(pred.to_dict(heatmap_path), args)))
    return 0


def main(argv: Sequence[str] | None = None, reexec: bool = False) -> int:
    """The command line; returns the exit code: 0 done, 2 bad input or usage, 1 unexpected error.

    ``reexec`` (the ``python -m`` entry point): first re-exec this process once with ``MALLOC_ENV`` added
    when those variables are missing (skip with ``DEEPFAKE_NO_REEXEC=1``).
    """
    if reexec:
        reexec_with_malloc_env()
    args = build_parser().parse_args(argv)
    if args.debug:
        settings = ", ".join(f"{k}={os.environ.get(k, 'unset')}" for k in MALLOC_ENV)
        print(f"debug: {settings}, {NO_REEXEC_ENV}={os.environ.get(NO_REEXEC_ENV, 'unset')}", file=sys.stderr)
    try:
        with _quiet(not args.debug):
            return _run(args)
    except (PredictError, ImageLoadError, VideoError, NoClipError) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        msg = f"error: unexpected {type(exc).__name__}: {_one_line(exc)} (rerun with --debug for details)"
        print(msg, file=sys.stderr)
        return 1


if __name__ == "__main__":
    # run the package's module, not this ``__main__`` copy: other modules raise its PredictError
    from deepfake_lib.predict.predictors import main as package_main

    sys.exit(package_main(reexec=True))
