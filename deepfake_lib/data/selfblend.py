"""Training on self-blended pseudo-fakes: which fakes a run trains on, face landmarks for the masks, the datasets.

``FAKES`` (notebook 02) picks the training fakes:

- ``"labelled"``: the images in the ``fake`` folders (the default before this mode existed);
- ``"self-blended"``: none of them; every real training face also appears as a pseudo-fake (``blend.self_blend``,
  made afresh each time it is drawn), so a detector learns from real faces alone. Validation then uses the
  validation reals and a fixed pseudo-fake of each, so no labelled fake picks the epoch either;
- ``"both"``: the labelled fakes plus one pseudo-fake per real face, in training and validation.

The masks follow the face's five MTCNN landmarks, found once per image and cached (``find_landmarks``); an image
without a detected face gets ``blend.TEMPLATE``, the mean layout of the face step's centred crops.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from deepfake_lib import CLASS_NAMES, FAKE, REAL
from deepfake_lib.core.choices import FAKES_MODES
from deepfake_lib.core.files import is_clip_dir
from deepfake_lib.core.images import ImageLoadError, clip_frame_files, load_clip, load_image
from deepfake_lib.core.runs import read_json, write_json
from deepfake_lib.data.blend import TEMPLATE, PseudoFake, self_blend
from deepfake_lib.data.datasets import DeepfakeDataset
from deepfake_lib.data.scan import Sample, SplitScan
from deepfake_lib.data.transforms import build_transform, transform_frames

PSEUDO_TAG = "#self-blended"  # appended to a source's path in batches and predictions
LANDMARKS_VERSION = 1
LANDMARKS_FILE = "landmarks.json"  # in RUN/blend/
LANDMARK_CHUNK = 16


def check_fakes_mode(mode: str) -> str:
    """``mode`` if it is one of ``FAKES_MODES``, else ``ValueError`` naming them."""
    if mode not in FAKES_MODES:
        raise ValueError(f"FAKES must be one of {', '.join(repr(m) for m in FAKES_MODES)}, got {mode!r}")
    return mode


def required_classes(mode: str) -> tuple[str, ...]:
    """The class folders a data set must have for ``mode``: only ``real`` for self-blended training."""
    return ("real",) if check_fakes_mode(mode) == "self-blended" else CLASS_NAMES


def training_labels(labels: Sequence[int], mode: str) -> list[int]:
    """The labels one training epoch draws from under ``mode``: labelled fakes dropped for "self-blended", one
    pseudo-fake (FAKE) per REAL added for "self-blended" and "both"."""
    check_fakes_mode(mode)
    if mode == "labelled":
        return list(labels)
    kept = [y for y in labels if y == REAL] if mode == "self-blended" else list(labels)
    return kept + [FAKE] * sum(y == REAL for y in labels)


# --------------------------------------------------------------------------- landmarks
def landmarks_file(run_dir: str | os.PathLike[str]) -> Path:
    """Where a run caches its faces' landmarks (01, 02 and 04 share it): ``run_dir/blend/landmarks.json``."""
    return Path(run_dir) / "blend" / LANDMARKS_FILE


def _stamp(path: Path) -> list[int]:
    """``[size, mtime_ns]`` of an image, or of a clip folder's middle frame (what ``load_image`` reads)."""
    if is_clip_dir(path):
        frames = clip_frame_files(path)
        path = frames[len(frames) // 2] if frames else path
    st = path.stat()
    return [int(st.st_size), int(st.st_mtime_ns)]


def find_landmarks(
    paths: Sequence[str | os.PathLike[str]],
    cache_file: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    detector: Any = None,
    progress: bool = True,
) -> dict[str, np.ndarray | None]:
    """The five landmarks of the largest face in each image (a clip folder: its middle frame), as fractions of
    the image's width and height ``[5, 2]``; ``None`` where MTCNN finds no face or the file cannot be read.

    ``cache_file`` (JSON) keeps them keyed by path, size and mtime: a re-run detects only new or changed files (a
    damaged cache is rebuilt).
    ``detector``: a ``faces.FaceDetector`` to reuse (default: MTCNN on ``device``, min score 0.9).
    """
    from deepfake_lib.data.faces import DETECTOR_NAME, FaceDetector

    cache_path = Path(cache_file) if cache_file else None
    try:
        cached = read_json(cache_path, default=None) if cache_path else None
    except (OSError, ValueError):  # a damaged cache is rebuilt
        cached = None
    valid = isinstance(cached, dict) and cached.get("version") == LANDMARKS_VERSION
    entries: dict[str, Any] = (
        dict(cached.get("entries", {})) if valid and cached.get("detector") == DETECTOR_NAME else {}
    )
    out: dict[str, np.ndarray | None] = {}
    todo: list[tuple[str, Path, list[int]]] = []
    for raw in paths:
        path = Path(raw)
        key = str(path)
        try:
            stamp = _stamp(path)
        except OSError:
            out[key] = None
            continue
        hit = entries.get(key)
        if hit is not None and hit.get("stamp") == stamp:
            out[key] = None if hit.get("points") is None else np.asarray(hit["points"], dtype=np.float64)
        else:
            todo.append((key, path, stamp))
    if todo:
        det = detector if detector is not None else FaceDetector(device)
        for start in tqdm(
            range(0, len(todo), LANDMARK_CHUNK), desc="face landmarks", disable=not progress, leave=False
        ):
            chunk = todo[start : start + LANDMARK_CHUNK]
            images: list[Image.Image | None] = []
            for _, path, _ in chunk:
                try:
                    images.append(load_image(path))
                except ImageLoadError:
                    images.append(None)
            readable = [i for i, img in enumerate(images) if img is not None]
            found = det.detect_batch([images[i] for i in readable]) if readable else []
            faces_of = dict(zip(readable, found, strict=True))
            for i, (key, _, stamp) in enumerate(chunk):
                faces = faces_of.get(i) or []
                img = images[i]
                points = None
                if img is not None and faces and faces[0].landmarks is not None:
                    # rounded as the cache keeps them, so a re-run blends exactly as the first run did
                    points = (np.asarray(faces[0].landmarks) / np.array(img.size, dtype=np.float64)).round(5)
                out[key] = points
                if img is not None:  # unreadable files are retried next time
                    entries[key] = {"stamp": stamp, "points": None if points is None else points.tolist()}
        if cache_path is not None:
            write_json(cache_path, {"version": LANDMARKS_VERSION, "detector": DETECTOR_NAME, "entries": entries})
    return out


def landmark_summary(landmarks: Mapping[str, np.ndarray | None]) -> dict[str, Any]:
    """How many images had a face with landmarks, and the mean landmarks (fractions) of those."""
    found = [v for v in landmarks.values() if v is not None]
    return {
        "images": len(landmarks),
        "with_landmarks": len(found),
        "mean_landmarks": np.mean(found, axis=0).round(4).tolist() if found else None,
    }


# --------------------------------------------------------------------------- datasets
class SelfBlendedDataset(DeepfakeDataset):
    """``samples`` as they are, then one pseudo-fake (label FAKE) of each of the REAL ``sources``.

    Item ``i < len(samples)``: as ``DeepfakeDataset``. Item ``len(samples) + j``: ``blend.self_blend`` of source
    ``j`` with its landmarks (all frames of a clip blended alike), then ``transform``; its path is the source's
    plus ``PSEUDO_TAG``. ``fixed_seed`` None: a new pseudo-fake each time (drawn from torch's RNG, so an epoch's
    seed fixes them); a number: the same one every time (validation).
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        sources: Sequence[Sample],
        transform: Any,
        landmarks: Mapping[str, np.ndarray | None] | None = None,
        fixed_seed: int | None = None,
        group_of: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(samples, transform, group_of)
        self.sources = list(sources)
        if any(s.label != REAL for s in self.sources):
            raise ValueError("pseudo-fakes are made from REAL samples only")
        self.landmarks = dict(landmarks or {})
        self.fixed_seed = fixed_seed
        self._source_lengths = DeepfakeDataset(self.sources, transform)

    def __len__(self) -> int:
        return len(self.samples) + len(self.sources)

    @property
    def labels(self) -> list[int]:
        return [s.label for s in self.samples] + [FAKE] * len(self.sources)

    @property
    def lengths(self) -> list[int]:
        return super().lengths + self._source_lengths.lengths

    @property
    def groups(self) -> list[str]:
        """A pseudo-fake is in its source's group: with ``TrainConfig.batch_groups`` they share a batch."""
        return super().groups + [self.group_key(s.path) for s in self.sources]

    def points(self, path: Path, size: tuple[int, int]) -> np.ndarray:
        """The landmarks of ``path`` in pixels of an image of ``size`` (width, height): ``[5, 2]``."""
        fractions = self.landmarks.get(str(path))
        return (TEMPLATE if fractions is None else fractions) * np.asarray(size, dtype=np.float64)

    def pseudo_fake(self, j: int, seed: int | None = None) -> tuple[list[Image.Image], list[PseudoFake]]:
        """Source ``j``'s frames and their pseudo-fakes (one per frame, made with the same draws); ``seed``
        default: ``fixed_seed``'s, else a fresh one from torch's RNG. Raises ``ImageLoadError``."""
        path = self.sources[j].path
        frames = load_clip(path) if is_clip_dir(path) else [load_image(path)]
        if seed is None:
            seed = (
                int(np.random.SeedSequence([self.fixed_seed, j]).generate_state(1)[0])
                if self.fixed_seed is not None
                else int(torch.randint(0, 2**62, ()))
            )
        fakes = [self_blend(f, self.points(path, f.size), np.random.default_rng(seed)) for f in frames]
        return frames, fakes

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index < len(self.samples):
            return super().__getitem__(index)
        j = index - len(self.samples)
        tagged = f"{self.sources[j].path}{PSEUDO_TAG}"
        try:
            _, fakes = self.pseudo_fake(j)
        except ImageLoadError as exc:
            return {"error": (tagged, exc.reason)}
        frames = [Image.fromarray(f.image) for f in fakes]
        return {"x": transform_frames(self.transform, frames), "y": FAKE, "path": tagged}


def training_sets(
    train: Sequence[Sample],
    val: Sequence[Sample],
    mode: str,
    image_size: int,
    landmarks: Mapping[str, np.ndarray | None] | None = None,
    seed: int = 0,
    augment: bool | str = True,
    group_of: Mapping[str, str] | None = None,
) -> tuple[DeepfakeDataset, DeepfakeDataset]:
    """The training and validation datasets of ``mode`` (``FAKES_MODES``): see the module docstring.
    ``group_of``: the training files' groups (``prepare.split_groups``), for ``TrainConfig.batch_groups``."""
    check_fakes_mode(mode)
    train_tf, val_tf = (
        build_transform(image_size, train=True, augment=augment),
        build_transform(image_size, train=False),
    )
    if mode == "labelled":
        return DeepfakeDataset(train, train_tf, group_of), DeepfakeDataset(val, val_tf)
    keep = (lambda s: s.label == REAL) if mode == "self-blended" else (lambda s: True)
    train_reals, val_reals = [s for s in train if s.label == REAL], [s for s in val if s.label == REAL]
    return (
        SelfBlendedDataset([s for s in train if keep(s)], train_reals, train_tf, landmarks, group_of=group_of),
        SelfBlendedDataset([s for s in val if keep(s)], val_reals, val_tf, landmarks, fixed_seed=seed),
    )


def datasets_for(
    scans: Mapping[str, SplitScan],
    mode: str,
    image_size: int,
    run_dir: str | os.PathLike[str],
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    augment: bool | str = True,
    group_of: Mapping[str, str] | None = None,
) -> tuple[DeepfakeDataset, DeepfakeDataset, dict[str, Any]]:
    """Notebook 02's training and validation sets for ``mode`` from the ``train`` and ``val`` scans, and their
    ``fakes`` record; landmarks of the REAL faces are cached in ``run_dir/blend/landmarks.json``. ``augment``:
    the training augmentation recipe (``augment.AUGMENTATIONS``; True = "basic"). ``group_of``: the training
    files' groups (``prepare.split_groups``)."""
    check_fakes_mode(mode)
    train, val = scans["train"].samples, scans["val"].samples
    landmarks: dict[str, np.ndarray | None] = {}
    if mode != "labelled":
        reals = [s.path for s in (*train, *val) if s.label == REAL]
        landmarks = find_landmarks(reals, landmarks_file(run_dir), device, progress=progress)
    train_ds, val_ds = training_sets(train, val, mode, image_size, landmarks, seed, augment, group_of)
    return train_ds, val_ds, fakes_record(mode, train_ds, val_ds, landmarks)


def finetune_dataset(
    samples: Sequence[Sample],
    mode: str,
    image_size: int,
    run_dir: str | os.PathLike[str],
    device: str = "cpu",
    progress: bool = True,
    augment: bool | str = True,
) -> DeepfakeDataset:
    """Notebook 04's training set for a model trained with ``mode``: the failures and replay images as they are,
    plus (for "self-blended" and "both") a pseudo-fake of each REAL one, so fine-tuning keeps what the model
    learnt from them. Labelled fakes among the failures are kept in every mode: they are what 04 learns from."""
    transform = build_transform(image_size, train=True, augment=augment)
    if check_fakes_mode(mode) == "labelled":
        return DeepfakeDataset(samples, transform)
    reals = [s for s in samples if s.label == REAL]
    landmarks = find_landmarks([s.path for s in reals], landmarks_file(run_dir), device, progress=progress)
    return SelfBlendedDataset(samples, reals, transform, landmarks)


def fakes_record(
    mode: str, train: DeepfakeDataset, val: DeepfakeDataset, landmarks: Mapping[str, Any]
) -> dict[str, Any]:
    """The ``fakes`` section of metrics.json: the mode and what each split trained and validated on."""

    def counts(ds: DeepfakeDataset) -> dict[str, int]:
        pseudo = len(getattr(ds, "sources", []))
        labels = ds.labels
        return {"real": labels.count(REAL), "labelled_fake": labels.count(FAKE) - pseudo, "pseudo_fake": pseudo}

    return {"mode": mode, "train": counts(train), "val": counts(val), "landmarks": landmark_summary(landmarks)}


@dataclass(frozen=True)
class PreviewRow:
    """One real face and a pseudo-fake of it: ``real`` ``[H, W, 3]`` uint8 (a clip: its middle frame), ``points``
    the landmarks used ``[5, 2]`` (pixels), ``detected`` False where they are the fallback layout."""

    path: Path
    real: np.ndarray
    fake: PseudoFake
    points: np.ndarray
    detected: bool


def preview(
    samples: Sequence[Sample],
    n: int = 6,
    seed: int = 0,
    cache_file: str | os.PathLike[str] | None = None,
    device: str = "cpu",
) -> list[PreviewRow]:
    """Up to ``n`` REAL samples (a reproducible pick) with a pseudo-fake each, as training would make them;
    landmarks found as in training (``cache_file`` shared with it). Unreadable files are left out."""
    reals = [s for s in samples if s.label == REAL]
    picked = [reals[i] for i in np.random.default_rng(seed).permutation(len(reals))[: n + 4]]
    landmarks = find_landmarks([s.path for s in picked], cache_file, device, progress=False)
    ds = SelfBlendedDataset([], picked, None, landmarks, fixed_seed=seed)
    out: list[PreviewRow] = []
    for j, sample in enumerate(picked):
        if len(out) >= n:
            break
        try:
            frames, fakes = ds.pseudo_fake(j)
        except ImageLoadError:
            continue
        mid = len(frames) // 2
        points = ds.points(sample.path, frames[mid].size)
        detected = landmarks.get(str(sample.path)) is not None
        out.append(PreviewRow(sample.path, np.asarray(frames[mid].convert("RGB")), fakes[mid], points, detected))
    return out
