"""Data layer: scan ``DATA_DIR/<split>/{real,fake}``, class balance, transforms, Dataset and loaders.

A sample is an image file (a sequence of T = 1) or a clip folder of T video frames (``images.load_clip``);
batches hold samples of one length (``LengthGroupedBatchSampler``).

Labels are REAL = 0 and FAKE = 1 everywhere, taken from the folder name (case-insensitive), never
from alphabetical order.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
)

from deepfake_lib.core.files import is_clip_dir
from deepfake_lib.core.images import (
    ImageLoadError,
    load_clip,
    load_image,
)
from deepfake_lib.data.samplers import (
    LengthGroupedBatchSampler,
    ShardedBatchSampler,
    _length_or_one,
)
from deepfake_lib.data.scan import DataLayoutError, Sample
from deepfake_lib.data.transforms import transform_frames

log = logging.getLogger(__name__)

PREFETCH_BATCHES = 4  # batches each worker keeps ready when feeding an accelerator (DataLoader's default: 2)


# --------------------------------------------------------------------------- dataset
class DeepfakeDataset(Dataset):
    """Images as sequences of length 1, clip folders as sequences of their T frames.

    Item: ``{"x": [T, 3, H, W] float, "y": int, "path": str}``, or ``{"error": (path, reason)}`` for a
    file that fails to load now (use ``collate_skip_bad``, which drops it and reports it in the batch). The
    frames of a clip get the same random augmentation (one draw, replayed per frame), so training sees the
    clip's real temporal changes, not augmentation jitter.
    """

    def __init__(self, samples: Sequence[Sample], transform: Any, group_of: Mapping[str, str] | None = None) -> None:
        self.samples = list(samples)
        self.transform = transform
        self.group_of = dict(group_of or {})
        self._lengths: list[int] | None = None

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> list[int]:
        return [s.label for s in self.samples]

    def group_key(self, path: Path) -> str:
        """The group of the file at ``path`` (``group_of``, keyed by absolute path), else the path itself."""
        key = os.path.abspath(path)
        return self.group_of.get(key, key)

    @property
    def groups(self) -> list[str]:
        """One group key per sample (``group_key``): samples of one key are a real face and its forgeries."""
        return [self.group_key(s.path) for s in self.samples]

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
    collate_fn: Any = collate_skip_bad,
    persistent_workers: bool | None = None,
) -> DataLoader:
    """A DataLoader using ``collate_fn`` (``collate_skip_bad``); batches hold one sequence length (images and
    clips apart).

    Workers of a shuffled (training) loader are re-created each epoch and seeded from torch's global RNG, so an
    epoch's augmentations depend only on the seed set before it (which makes resumed training match an
    uninterrupted run). ``persistent_workers`` (None = automatic): keep the workers between passes, the
    default for unshuffled loaders with workers and pinned memory (an accelerator's validation and prediction),
    which have no draws to reproduce. With pinned memory each worker also prefetches ``PREFETCH_BATCHES``.
    ``shard=(rank, world)``: this process's share of the epoch's batches (``ShardedBatchSampler``); the
    ``sampler`` must then draw the same sequence in every process (a generator seeded alike).
    """
    if persistent_workers is None:
        persistent_workers = bool(num_workers and pin_memory and not shuffle and sampler is None)
    workers_kw: dict[str, Any] = {}
    if num_workers:
        workers_kw = {"worker_init_fn": seed_worker, "persistent_workers": persistent_workers}
        if pin_memory:
            workers_kw["prefetch_factor"] = PREFETCH_BATCHES
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
            collate_fn=collate_fn,
            pin_memory=pin_memory,
            **workers_kw,
        )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else False,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_fn,
        pin_memory=pin_memory,
        drop_last=drop_last,
        **workers_kw,
    )


def resolve_num_workers(num_workers: int, device: torch.device | str | None = None) -> int:
    """``num_workers`` as given, or for -1 (automatic): 0 on the CPU, where worker processes only take cores
    from the model (decoding is ~10% of the work; measured 2x slower with 1-2 workers on 2 cores), else every
    core this process may use but one (the one that drives the accelerator), shared between the processes
    ``torchrun`` starts on the machine (``LOCAL_WORLD_SIZE``)."""
    if num_workers >= 0:
        return num_workers
    if device is None or torch.device(device).type == "cpu":
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    return max(0, cores // local - 1)
