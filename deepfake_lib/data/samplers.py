"""Which samples a batch holds: class oversampling, one sequence length per batch, shards for several processes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import (
    Sampler,
    WeightedRandomSampler,
)

from deepfake_lib import CLASS_NAMES
from deepfake_lib.core.images import (
    sample_length,
)
from deepfake_lib.data.scan import DataLayoutError


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
