"""Predictors: a trained detector (PyTorch checkpoint) that scores PIL images -> ``Prediction`` (probability,
decision, Grad-CAM heatmap), whole images or per detected face.

``BasePredictor`` holds what every runtime shares (input size, threshold, face-crop settings, face mode);
``Predictor`` scores with PyTorch, ``onnx_predictor.OnnxPredictor`` through onnxruntime. With faces, each
detected face is cropped (``faces.crop_face``) and scored on its own; the image's decision is its most
suspicious face's.

torch and grad-cam are imported inside the functions that need them, so the command line can re-exec itself
with faster glibc malloc settings and reject a bad image before paying for those imports.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from deepfake_lib.core.images import load_image, to_rgb
from deepfake_lib.data.faces import Face, crop_face, no_face_reason, square_box
from deepfake_lib.predict.results import (
    DEFAULT_FACE_MARGIN,
    BatchScores,
    FacePrediction,
    FaceScore,
    NoFaceError,
    Prediction,
    decide,
    sigmoid,
)

if TYPE_CHECKING:
    import torch

    from deepfake_lib.data.faces import FaceDetector
    from deepfake_lib.models.detector import EfficientNetLSTM


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
    from deepfake_lib.models.checkpoint import CheckpointError, checkpoint_weights_id, load_checkpoint

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
        self.video_thresholds: dict[str, float] = {}  # rule -> its threshold (03 chose one per video rule)
        self.checkpoint = checkpoint
        self.trained_on_faces = isinstance(faces, dict) and bool(faces)
        faces = faces if isinstance(faces, dict) else {}
        margin = faces.get("margin")
        self.face_margin = DEFAULT_FACE_MARGIN if margin is None else float(margin)
        size = faces.get("size", self.image_size)
        self.face_size = int(size) if size else None  # None: crops at their native resolution

    def decide(self, probability: float, threshold: float | None = None) -> str:
        return decide(probability, self.threshold if threshold is None else threshold)

    def video_threshold_for(self, rule: str) -> float:
        """The threshold for a video score pooled by ``rule`` (``evaluation.aggregate``): the one 03 chose for it,
        else ``video_threshold``."""
        return float(self.video_thresholds.get(rule, self.video_threshold))

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
        tta: str = "none",
        decode: str = "auto",
    ) -> None:
        """``tta``: test-time augmentation of every score (``models.tta.TTA_MODES``; heatmaps explain the image
        as it is). ``decode``: where ``iter_files`` decodes JPEGs (``data.device_decode.DECODE_MODES``; "auto" = nvJPEG on a
        CUDA device, PIL in the loader workers elsewhere). ``amp``: mixed precision on CUDA. ``compile_model``: ``torch.compile`` the model for scoring without
        heatmaps (about 1.2x faster on a CPU once compiled; the first batch pays for the compilation).
        ``faces``: see ``BasePredictor``."""
        from deepfake_lib.data.transforms import build_transform

        super().__init__(image_size, threshold, checkpoint, faces, clips, video_threshold)
        from deepfake_lib.data.device_decode import check_decode
        from deepfake_lib.models.tta import check_tta

        self.decode = check_decode(decode)
        self.model = model.eval()
        self.tta = check_tta(tta)
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
        tta: str | None = None,
        decode: str = "auto",
    ) -> Predictor:
        """Load ``weights`` (raises ``model.CheckpointError``); ``threshold`` None = the checkpoint's own (its
        ``video_threshold`` for videos, when 03 chose one); a given ``threshold`` is used for videos too.
        ``tta`` None = the checkpoint's (what its calibration and threshold were fitted with; "none" before 03).
        The checkpoint's calibration temperature always applies."""
        from deepfake_lib.core.device import configure_backends, resolve_device
        from deepfake_lib.models.checkpoint import checkpoint_tta, load_model

        dev = resolve_device(device)
        configure_backends(dev)
        model, ckpt = load_model(weights, dev)
        video_threshold = threshold
        own = threshold is None  # the checkpoint's thresholds, not the caller's
        if own:
            threshold = float(ckpt.get("threshold", 0.5))
            video_threshold = ckpt.get("video_threshold")
        image_size = ckpt["config"]["image_size"]
        predictor = cls(
            model, image_size, threshold, Path(weights), compile_model=compile_model, faces=ckpt.get("faces"),
            clips=ckpt.get("clips"), video_threshold=video_threshold, tta=tta or checkpoint_tta(ckpt, weights),
            decode=decode,
        )  # fmt: skip
        if own:
            stored = ckpt.get("video_thresholds") or {}
            predictor.video_thresholds = {k.removeprefix("video_"): float(v) for k, v in stored.items()}
        return predictor

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
        from deepfake_lib.models.tta import with_tta

        net = with_tta(self.model if self.compiled is None else self.compiled, self.tta)
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

        from deepfake_lib.data.datasets import DeepfakeDataset, resolve_num_workers
        from deepfake_lib.data.device_decode import loader_for
        from deepfake_lib.data.scan import Sample

        dataset = DeepfakeDataset([Sample(Path(p), -1) for p in paths], self.transform)  # label unknown: -1
        device = self.device
        workers = resolve_num_workers(num_workers, device)
        loader = loader_for(
            dataset, batch_size, device, self.decode, num_workers=workers, pin_memory=device.type == "cuda"
        )
        with tqdm(total=len(dataset), desc=desc, unit="img", disable=not progress) as bar:
            for batch in loader:
                bad = [(str(p), r) for p, r in batch["bad"]]
                if batch["x"] is None:
                    probs, maps = np.zeros(0), None
                else:
                    probs, maps = self.score(batch["x"], heatmaps, batch_size)
                bar.update(len(batch["path"]) + len(bad))
                yield BatchScores(list(batch["path"]), probs, maps, bad)
