"""Data layer: scan ``DATA_DIR/<split>/{real,fake}``, class balance, transforms, Dataset and loaders.

A sample is an image file (a sequence of T = 1) or a clip folder of T video frames (``images.load_clip``);
batches hold samples of one length (``LengthGroupedBatchSampler``).

Labels are REAL = 0 and FAKE = 1 everywhere, taken from the folder name (case-insensitive), never
from alphabetical order.
"""

from __future__ import annotations

import io
import logging
import os
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
    WeightedRandomSampler,
)
from torchvision import transforms as T
from tqdm.auto import tqdm

from deepfake_lib import CLASS_NAMES
from deepfake_lib.core.files import Skipped, is_clip_dir
from deepfake_lib.core.images import (
    VIDEO_HINT,
    VIDEO_WAY_IN,
    ImageLoadError,
    check_image,
    limit_aspect,
    list_samples,
    load_clip,
    load_image,
    sample_length,
)

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DataLayoutError(ValueError):
    """The data folder does not have the ``<split>/{real,fake}/`` layout; the message says what to fix."""


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int  # REAL = 0, FAKE = 1


@dataclass
class SplitScan:
    """The usable samples of one split, and the files that were skipped with the reason."""

    split: str
    root: Path
    samples: list[Sample]
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def labels(self) -> list[int]:
        return [s.label for s in self.samples]

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(self.labels)
        return {name: c.get(i, 0) for i, name in enumerate(CLASS_NAMES)}

    @property
    def imbalance_ratio(self) -> float:
        """Majority count / minority count (``inf`` when a class is empty)."""
        n = sorted(self.counts.values())
        return float("inf") if n[0] == 0 else n[-1] / n[0]

    def summary(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "counts": self.counts,
            "total": len(self.samples),
            "imbalance_ratio": self.imbalance_ratio,
            "skipped": len(self.skipped),
            "skipped_files": [{"path": str(s.path), "reason": s.reason} for s in self.skipped],
            "warnings": list(self.warnings),
        }


def find_class_dirs(split_dir: Path) -> dict[int, Path]:
    """Map label -> folder for ``real``/``fake`` (any case) inside ``split_dir``."""
    found: dict[int, list[Path]] = {}
    for child in sorted(split_dir.iterdir()):
        if child.is_dir() and child.name.lower() in CLASS_NAMES:
            found.setdefault(CLASS_NAMES.index(child.name.lower()), []).append(child)
    for label, dirs in found.items():
        if len(dirs) > 1:
            names = ", ".join(d.name for d in dirs)
            raise DataLayoutError(
                f"{split_dir}: several folders for class '{CLASS_NAMES[label]}' ({names}); merge them into one"
            )
    return {label: dirs[0] for label, dirs in found.items()}


def scan_split(
    data_dir: str | os.PathLike[str],
    split: str,
    validate: bool = True,
    workers: int = 4,
    required: Sequence[str] = CLASS_NAMES,
) -> SplitScan:
    """Scan ``data_dir/split/{real,fake}``.

    With ``validate`` every image is decoded once; broken files are skipped and listed with the
    reason. Raises ``DataLayoutError`` for a missing split or ``required`` class folder, or a split with no usable
    image; a missing class folder that is not required is a warning (``required=("real",)`` for training on
    self-blended pseudo-fakes, which needs no fakes).
    """
    root = Path(data_dir)
    split_dir = root / split
    if not split_dir.is_dir():
        available = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        hint = f" (found: {', '.join(available)})" if available else ""
        raise DataLayoutError(
            f"split folder '{split_dir}' not found{hint}; expected {root}/{split}/real and {root}/{split}/fake"
        )
    class_dirs = find_class_dirs(split_dir)
    absent = [CLASS_NAMES[i] for i in range(len(CLASS_NAMES)) if i not in class_dirs]
    missing = [name for name in absent if name in required]
    if missing:
        others = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
        raise DataLayoutError(
            f"{split_dir}: missing class folder(s) {', '.join(missing)} (found: {', '.join(others) or 'none'}); "
            f"put real images in {split_dir}/real and fake images in {split_dir}/fake"
        )
    candidates: list[Sample] = []
    skipped: list[Skipped] = []
    for label, folder in sorted(class_dirs.items()):
        files, bad = list_samples(folder)
        candidates += [Sample(p, label) for p in files]
        skipped += bad
    samples = candidates
    if validate and candidates:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            reasons = list(
                tqdm(
                    pool.map(lambda s: check_image(s.path), candidates),
                    total=len(candidates),
                    desc=f"checking {split}",
                    leave=False,
                )
            )
        samples = [s for s, r in zip(candidates, reasons, strict=True) if r is None]
        skipped += [Skipped(s.path, r) for s, r in zip(candidates, reasons, strict=True) if r is not None]
    scan = SplitScan(split=split, root=split_dir, samples=samples, skipped=skipped)
    for s in skipped:
        log.warning("skipped %s: %s", s.path, s.reason)
    for name in absent:
        scan.warnings.append(f"{split}: no '{name}' folder in {split_dir}")
    for name, n in scan.counts.items():
        if n == 0 and name not in absent:
            scan.warnings.append(
                f"{split}: class '{name}' has no usable images in {class_dirs[CLASS_NAMES.index(name)]}"
            )
    if not samples:
        videos = sum(s.reason == VIDEO_HINT for s in skipped)
        hint = "; see the skipped list"
        if videos:
            hint = f"; {videos} of them are videos: cut them into clips first ({VIDEO_WAY_IN})"
        raise DataLayoutError(f"{split_dir}: no usable images or clips ({len(skipped)} skipped){hint}")
    return scan


# --------------------------------------------------------------------------- transforms
class RandomJPEG:
    """Re-encode a PIL image as JPEG at a random quality with probability ``p`` (compression augmentation)."""

    def __init__(self, quality: tuple[int, int] = (50, 95), p: float = 0.5) -> None:
        self.quality, self.p = quality, p

    def __call__(self, img: Image.Image) -> Image.Image:
        if torch.rand(()) >= self.p:
            return img
        q = int(torch.randint(self.quality[0], self.quality[1] + 1, ()))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=q)
        buf.seek(0)
        with Image.open(buf) as out:
            return out.convert("RGB")

    def __repr__(self) -> str:
        return f"RandomJPEG(quality={self.quality}, p={self.p})"


class LimitAspect:
    """Centre-crop the long side to at most ``max_aspect`` times the short side (PIL -> PIL; ``images.limit_aspect``)."""

    def __init__(self, max_aspect: float = 4.0) -> None:
        self.max_aspect = max_aspect

    def __call__(self, img: Image.Image) -> Image.Image:
        return limit_aspect(img, self.max_aspect)

    def __repr__(self) -> str:
        return f"LimitAspect(max_aspect={self.max_aspect})"


def build_transform(image_size: int, train: bool, augment: bool = True) -> T.Compose:
    """PIL RGB image -> normalized tensor ``[3, image_size, image_size]``.

    Eval: resize the short side to ``image_size`` and centre-crop (an image already at that size is left
    untouched: resampling blurs the very artefacts a detector looks for); extreme aspect ratios are first
    cropped to at most 4:1. Train adds, each with some
    probability, a random resized crop, horizontal flip, colour jitter and JPEG re-compression.
    """
    base = [LimitAspect(), T.Resize(image_size, antialias=True), T.CenterCrop(image_size)]
    normalize = [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if not (train and augment):
        return T.Compose([*base, *normalize])
    return T.Compose(
        [
            *base,
            T.RandomApply([T.RandomResizedCrop(image_size, scale=(0.6, 1.0), ratio=(0.9, 1.1), antialias=True)], p=0.3),
            T.RandomHorizontalFlip(),
            T.RandomApply([T.ColorJitter(0.2, 0.2, 0.2, 0.02)], p=0.3),
            RandomJPEG((60, 95), p=0.3),
            *normalize,
        ]
    )


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """Undo ImageNet normalization: ``[..., 3, H, W]`` -> values in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(3, 1, 1)
    return (x * std + mean).clamp(0, 1)


# --------------------------------------------------------------------------- dataset
class DeepfakeDataset(Dataset):
    """Images as sequences of length 1, clip folders as sequences of their T frames.

    Item: ``{"x": [T, 3, H, W] float, "y": int, "path": str}``, or ``{"error": (path, reason)}`` for a
    file that fails to load now (use ``collate_skip_bad``, which drops it and reports it in the batch). The
    frames of a clip get the same random augmentation (one draw, replayed per frame), so training sees the
    clip's real temporal changes, not augmentation jitter.
    """

    def __init__(self, samples: Sequence[Sample], transform: Any) -> None:
        self.samples = list(samples)
        self.transform = transform
        self._lengths: list[int] | None = None

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> list[int]:
        return [s.label for s in self.samples]

    @property
    def lengths(self) -> list[int]:
        """Frames per sample (1 for images), read from the folder listing once."""
        if self._lengths is None:
            self._lengths = [_length_or_one(s.path) for s in self.samples]
        return self._lengths

    @property
    def clip_length(self) -> int:
        """T of the clips in this dataset (1 for images only); ``DataLayoutError`` for clips of several lengths."""
        clip_lengths = sorted({n for n in self.lengths if n > 1})
        if len(clip_lengths) > 1:
            raise DataLayoutError(
                f"clips of different lengths {clip_lengths} in one dataset; prepare all videos with one FRAMES"
            )
        return clip_lengths[0] if clip_lengths else 1

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.samples[index]
        try:
            frames = load_clip(sample.path) if is_clip_dir(sample.path) else [load_image(sample.path)]
        except ImageLoadError as exc:
            log.warning("skipping %s: %s", exc.path, exc.reason)
            return {"error": (str(exc.path), exc.reason)}
        return {"x": transform_frames(self.transform, frames), "y": sample.label, "path": str(sample.path)}


def transform_frames(transform: Any, frames: Sequence[Image.Image]) -> torch.Tensor:
    """``transform`` each frame with the same random draws (RNG state replayed): ``[T, 3, H, W]``."""
    if len(frames) == 1:
        return transform(frames[0]).unsqueeze(0)
    torch_state, py_state = torch.get_rng_state(), random.getstate()
    out = []
    for img in frames:
        torch.set_rng_state(torch_state)
        random.setstate(py_state)
        out.append(transform(img))
    return torch.stack(out)


def _length_or_one(path: Path) -> int:
    try:
        return max(1, sample_length(path))
    except OSError:
        return 1  # unreadable now: it fails to load and is reported in the batch


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Batches of samples with one sequence length, in the order ``sampler`` draws them.

    Each length collects its own batch; a batch is yielded when full, and the partial ones at the end of the
    epoch. ``drop_last`` drops a length's partial batch only when that length filled a batch this epoch, so a few
    clips among many images still train. With one length this is plain batching of ``sampler``.
    """

    def __init__(self, sampler: Any, lengths: Sequence[int], batch_size: int, drop_last: bool = False) -> None:
        self.sampler, self.lengths = sampler, list(lengths)
        self.batch_size, self.drop_last = int(batch_size), drop_last

    def __iter__(self) -> Iterator[list[int]]:
        pending: dict[int, list[int]] = {}
        full: set[int] = set()
        for index in self.sampler:
            length = self.lengths[index]
            bucket = pending.setdefault(length, [])
            bucket.append(index)
            if len(bucket) == self.batch_size:
                yield list(bucket)
                bucket.clear()
                full.add(length)
        for length in sorted(pending):
            if pending[length] and not (self.drop_last and length in full):
                yield pending[length]

    def __len__(self) -> int:
        """An estimate (the exact number depends on the draw): full batches plus one partial per length."""
        n = len(self.sampler)
        groups = len(set(self.lengths)) if self.lengths else 0
        return n // self.batch_size + groups


class ShardedBatchSampler(Sampler[list[int]]):
    """One process's share of an epoch: the batches of ``batches`` dealt round robin over ``world`` processes.

    Every process builds ``batches`` from the same seed, so each sees the same epoch of batches and keeps
    batches ``rank, rank + world, ...``: the shards are disjoint and together are the whole epoch, and global
    step k is the batches ``k * world .. k * world + world - 1`` (for one sequence length: consecutive draws,
    as one process with a ``world`` times larger batch would take them). The epoch is padded with its first
    batches to a multiple of ``world``, so every process takes the same number of steps (collective operations
    need that); ``padding(n_batches, world)`` says how many batches are repeated.
    """

    def __init__(self, batches: Any, rank: int, world: int) -> None:
        if world < 1 or not 0 <= rank < world:
            raise ValueError(f"rank must be in 0..{world - 1} for {world} processes, got {rank}")
        self.batches, self.rank, self.world = batches, rank, world

    @staticmethod
    def padding(n_batches: int, world: int) -> int:
        return (-n_batches) % world if n_batches else 0

    def __iter__(self) -> Iterator[list[int]]:
        epoch = [list(b) for b in self.batches]
        epoch += [epoch[i % len(epoch)] for i in range(self.padding(len(epoch), self.world))]
        yield from epoch[self.rank :: self.world]

    def __len__(self) -> int:
        return -(-len(self.batches) // self.world)


def collate_skip_bad(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack good items into ``x [B, T, 3, H, W]``, ``y [B]``, ``path``; list bad ones under ``bad``."""
    good = [it for it in items if "error" not in it]
    bad = [it["error"] for it in items if "error" in it]
    if not good:
        return {"x": None, "y": None, "path": [], "bad": bad}
    return {
        "x": torch.stack([it["x"] for it in good]),
        "y": torch.tensor([it["y"] for it in good], dtype=torch.long),
        "path": [it["path"] for it in good],
        "bad": bad,
    }


# --------------------------------------------------------------------------- balance
def class_counts(labels: Sequence[int]) -> list[int]:
    c = Counter(labels)
    return [c.get(i, 0) for i in range(len(CLASS_NAMES))]


def make_oversampler(labels: Sequence[int], seed: int = 0, num_samples: int | None = None) -> WeightedRandomSampler:
    """A sampler that draws each class equally often (with replacement); ``num_samples`` defaults to len."""
    counts = class_counts(labels)
    if min(counts) == 0:
        raise DataLayoutError(f"cannot oversample: one class has no samples (counts real/fake = {counts})")
    weights = torch.tensor([1.0 / counts[y] for y in labels], dtype=torch.double)
    gen = torch.Generator().manual_seed(seed)
    return WeightedRandomSampler(weights, num_samples or len(labels), replacement=True, generator=gen)


def pos_weight(labels: Sequence[int]) -> torch.Tensor:
    """BCE ``pos_weight`` = n_real / n_fake, which gives both classes equal total weight in the loss."""
    n_real, n_fake = class_counts(labels)
    if n_fake == 0:
        raise DataLayoutError("cannot weight classes: no FAKE samples")
    return torch.tensor(n_real / n_fake)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed Python's ``random`` from the worker's torch seed."""
    random.seed(torch.initial_seed() % 2**32)


def make_loader(
    dataset: DeepfakeDataset,
    batch_size: int,
    shuffle: bool = False,
    sampler: Any = None,
    num_workers: int = 0,
    pin_memory: bool = False,
    drop_last: bool = False,
    shard: tuple[int, int] | None = None,
) -> DataLoader:
    """A DataLoader using ``collate_skip_bad``; batches hold one sequence length (images and clips apart).

    Workers are re-created each epoch and seeded from torch's global RNG, so an epoch's augmentations
    depend only on the seed set before it (which makes resumed training match an uninterrupted run).
    ``shard=(rank, world)``: this process's share of the epoch's batches (``ShardedBatchSampler``); the
    ``sampler`` must then draw the same sequence in every process (a generator seeded alike).
    """
    lengths = dataset.lengths if isinstance(dataset, DeepfakeDataset) else []
    if shard is not None or len(set(lengths)) > 1:
        if sampler is None:
            sampler = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
        batches: Any = (
            LengthGroupedBatchSampler(sampler, lengths, batch_size, drop_last)
            if len(set(lengths)) > 1
            else BatchSampler(sampler, batch_size, drop_last)
        )
        return DataLoader(
            dataset,
            batch_sampler=batches if shard is None else ShardedBatchSampler(batches, *shard),
            num_workers=num_workers,
            collate_fn=collate_skip_bad,
            pin_memory=pin_memory,
            worker_init_fn=seed_worker if num_workers else None,
        )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else False,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_skip_bad,
        pin_memory=pin_memory,
        drop_last=drop_last,
        worker_init_fn=seed_worker if num_workers else None,
    )


def resolve_num_workers(num_workers: int, device: torch.device | str | None = None) -> int:
    """``num_workers`` as given, or for -1 (automatic): 0 on the CPU, where worker processes only take cores
    from the model (decoding is ~10% of the work; measured 2x slower with 1-2 workers on 2 cores), else up
    to 4 (half the cores) to keep an accelerator fed."""
    if num_workers >= 0:
        return num_workers
    if device is None or torch.device(device).type == "cpu":
        return 0
    n = os.cpu_count() or 1
    return 0 if n <= 1 else min(4, n // 2)


# --------------------------------------------------------------------------- whole dataset
def scan_dataset(
    data_dir: str | os.PathLike[str],
    splits: Sequence[str] = ("train", "val"),
    validate: bool = True,
    required: Sequence[str] = CLASS_NAMES,
) -> dict[str, SplitScan]:
    """``scan_split`` for each split (``required``: the class folders that must exist); raises
    ``DataLayoutError`` naming the first problem found."""
    root = Path(data_dir)
    if not root.is_dir():
        raise DataLayoutError(
            f"data folder {root} not found; expected {root}/<split>/real and {root}/<split>/fake "
            f"(build the demo data with `python -m deepfake_lib.cli.demo --out {root}`)"
        )
    return {split: scan_split(root, split, validate=validate, required=required) for split in splits}


def counts_table(scans: dict[str, SplitScan]) -> list[dict[str, Any]]:
    """One row per split: real, fake, total, fake share, imbalance ratio, skipped files."""
    rows = []
    for split, scan in scans.items():
        c = scan.counts
        total = sum(c.values())
        rows.append(
            {
                "split": split,
                "real": c["real"],
                "fake": c["fake"],
                "total": total,
                "fake_share": c["fake"] / total if total else float("nan"),
                "imbalance_ratio": scan.imbalance_ratio,
                "skipped": len(scan.skipped),
            }
        )
    return rows


def oversampling_preview(labels: Sequence[int], seed: int = 0) -> dict[str, Any]:
    """What one epoch of ``make_oversampler`` draws: per-class draws and how often each image repeats."""
    sampler = make_oversampler(labels, seed)
    drawn = list(sampler)
    per_class = class_counts([labels[i] for i in drawn])
    unique = class_counts([labels[i] for i in set(drawn)])
    counts = class_counts(labels)
    return {
        "epoch_size": len(drawn),
        "available": dict(zip(CLASS_NAMES, counts, strict=True)),
        "drawn": dict(zip(CLASS_NAMES, per_class, strict=True)),
        "distinct_images_drawn": dict(zip(CLASS_NAMES, unique, strict=True)),
        "mean_repeats_per_image": {
            name: (per_class[i] / counts[i] if counts[i] else float("nan")) for i, name in enumerate(CLASS_NAMES)
        },
    }


def sample_paths(scan: SplitScan, per_class: int, seed: int = 0) -> dict[str, list[Path]]:
    """A reproducible random pick of ``per_class`` image paths for each class."""
    rng = random.Random(seed)
    out = {}
    for label, name in enumerate(CLASS_NAMES):
        paths = [s.path for s in scan.samples if s.label == label]
        out[name] = rng.sample(paths, min(per_class, len(paths)))
    return out


def sample_clips(scan: SplitScan, per_class: int, seed: int = 0) -> dict[str, list[Path]]:
    """A reproducible random pick of ``per_class`` clip folders for each class (empty lists for image data)."""
    rng = random.Random(seed)
    out = {}
    for label, name in enumerate(CLASS_NAMES):
        paths = [s.path for s in scan.samples if s.label == label and is_clip_dir(s.path)]
        out[name] = rng.sample(paths, min(per_class, len(paths)))
    return out


def pick_alternating(items: Sequence[tuple[Any, int]], n: int, seed: int = 0) -> list[tuple[Any, int]]:
    """Up to ``n`` of ``(item, label)`` pairs, FAKE and REAL alternating (a reproducible random pick within each
    class)."""
    rng = random.Random(seed)
    by_label = {y: rng.sample([v for v in items if v[1] == y], sum(v[1] == y for v in items)) for y in (1, 0)}
    out: list[tuple[Any, int]] = []
    while len(out) < n and any(by_label.values()):
        for y in (1, 0):
            if by_label[y] and len(out) < n:
                out.append(by_label[y].pop(0))
    return out
