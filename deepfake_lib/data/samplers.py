"""Which samples a batch holds: balanced epochs, groups kept together, one sequence length, shards for processes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Sampler

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


def _permutation(n: int, gen: torch.Generator) -> list[int]:
    return torch.randperm(n, generator=gen).tolist()


class BalancedSampler(Sampler[int]):
    """An epoch that draws each class equally often, without replacement within a class.

    Each class gets ``num_samples // n_classes`` draws (the remainder goes to classes picked at random): a larger
    class gives that many distinct samples (a fresh random subset each epoch), a smaller one is repeated in whole
    reshuffled passes, so every sample of it appears ``quota // count`` or one more times. Unlike drawing with
    replacement, no sample of a class is repeated before every other one has been drawn. ``groups`` (one
    hashable key per sample, e.g. the source video of a real face and of its face swap): after a sample is
    drawn, the other not yet drawn members of its group follow it, so a group trains in one batch. The epoch's
    draws are the same with or without groups, only their order changes. ``generator`` makes an epoch
    reproducible (training re-seeds it every epoch).
    """

    def __init__(
        self,
        labels: Sequence[int],
        seed: int = 0,
        num_samples: int | None = None,
        groups: Sequence[Any] | None = None,
        balance: bool = True,
    ) -> None:
        self.labels = list(labels)
        counts = class_counts(self.labels)
        if balance and min(counts) == 0:
            raise DataLayoutError(f"cannot oversample: one class has no samples (counts real/fake = {counts})")
        if groups is not None and len(groups) != len(self.labels):
            raise ValueError(f"groups has {len(groups)} entries for {len(self.labels)} samples")
        self.num_samples = int(num_samples or len(self.labels))
        self.balance = balance
        self.by_class = [[i for i, y in enumerate(self.labels) if y == c] for c in range(len(CLASS_NAMES))]
        self.partners: list[list[int]] | None = None  # per sample: the members of its group (one list per group)
        if groups is not None:
            members: dict[Any, list[int]] = {}
            for i, g in enumerate(groups):
                members.setdefault(g, []).append(i)
            self.partners = [members[g] for g in groups]
        self.generator = torch.Generator().manual_seed(seed)

    def _draws(self) -> list[int]:
        gen = self.generator
        if not self.balance:
            n = len(self.labels)
            return [i for _ in range(-(-self.num_samples // n)) for i in _permutation(n, gen)][: self.num_samples]
        quota = [self.num_samples // len(self.by_class)] * len(self.by_class)
        for c in _permutation(len(self.by_class), gen)[: self.num_samples % len(self.by_class)]:
            quota[c] += 1
        draws: list[int] = []
        for members, q in zip(self.by_class, quota, strict=True):
            passes = -(-q // len(members))
            draws += [members[i] for _ in range(passes) for i in _permutation(len(members), gen)][:q]
        return [draws[i] for i in _permutation(len(draws), gen)]

    def __iter__(self) -> Iterator[int]:
        draws = self._draws()
        if self.partners is None:
            yield from draws
            return
        left = Counter(draws)
        for index in draws:
            if not left[index]:
                continue  # already drawn as a partner
            left[index] -= 1
            yield index
            partners = self.partners[index]
            for j in (partners[k] for k in _permutation(len(partners), self.generator)):
                if j != index and left[j]:
                    left[j] -= 1
                    yield j

    def __len__(self) -> int:
        return self.num_samples


def make_oversampler(labels: Sequence[int], seed: int = 0, num_samples: int | None = None) -> BalancedSampler:
    """A sampler that draws each class equally often (``BalancedSampler``); ``num_samples`` defaults to len."""
    return BalancedSampler(labels, seed, num_samples)


def pos_weight(labels: Sequence[int]) -> torch.Tensor:
    """BCE ``pos_weight`` = n_real / n_fake, which gives both classes equal total weight in the loss."""
    n_real, n_fake = class_counts(labels)
    if n_fake == 0:
        raise DataLayoutError("cannot weight classes: no FAKE samples")
    return torch.tensor(n_real / n_fake)
