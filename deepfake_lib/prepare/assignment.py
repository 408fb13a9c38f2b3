"""The assignment algorithm: each group wholly to one split, stratified by label, deterministic for a seed."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from deepfake_lib import CLASS_NAMES
from deepfake_lib.prepare.grouping import SplitError

SPLIT_NAMES = ("train", "val", "test")
ASSIGN_VERSION = 1  # bump when assign_splits would place the same items differently
FRACTION_TOLERANCE = 1e-3
_MAX_REFINE_PASSES = 20


def _check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    try:
        values = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise SplitError(f"fractions must be numbers, got {fractions!r}") from None
    if len(values) not in (2, 3):
        raise SplitError(f"fractions need 2 (train, val) or 3 (train, val, test) entries, got {len(values)}: {values}")
    if any(not math.isfinite(f) or f < 0 for f in values):
        raise SplitError(f"fractions must be finite and >= 0, got {values}")
    if abs(sum(values) - 1.0) > FRACTION_TOLERANCE:
        raise SplitError(f"fractions must sum to 1, got {values} (sum {sum(values):.6g})")
    if values[0] == 0:
        raise SplitError(f"the train fraction must be > 0, got {values}")
    if sum(f > 0 for f in values) < 2:
        raise SplitError(f"at least two splits need a non-zero fraction (train and val or test), got {values}")
    return values


def _group_sizes(items: list[tuple[str, int, str]]) -> tuple[dict[str, list[int]], dict[str, str]]:
    """Each group's item count per class, and each item's group; ``SplitError`` for a bad label or a repeated key."""
    n_cls = len(CLASS_NAMES)
    sizes: dict[str, list[int]] = {}
    group_of: dict[str, str] = {}
    for key, label, group in items:
        if label not in range(n_cls):
            raise SplitError(f"item {key!r}: label must be 0 ({CLASS_NAMES[0]}) or 1 ({CLASS_NAMES[1]}), got {label!r}")
        if key in group_of:
            raise SplitError(f"item {key!r} is listed twice")
        group_of[key] = group
        sizes.setdefault(group, [0] * n_cls)[label] += 1
    return sizes, group_of


def _class_totals(sizes: dict[str, list[int]], splits: list[str]) -> tuple[list[int], list[int]]:
    """Items per class and groups holding each class; ``SplitError`` when a class is missing or held by fewer groups
    than there are splits."""
    n_cls, n_spl = len(CLASS_NAMES), len(splits)
    totals = [sum(v[c] for v in sizes.values()) for c in range(n_cls)]
    for c, n in enumerate(totals):
        if n == 0:
            raise SplitError(f"no '{CLASS_NAMES[c]}' items: every split needs both {' and '.join(CLASS_NAMES)}")
    with_class = [sum(1 for v in sizes.values() if v[c]) for c in range(n_cls)]
    for c, n in enumerate(with_class):
        if n < n_spl:
            raise SplitError(
                f"too few groups: class '{CLASS_NAMES[c]}' is in only {n} group(s), but each of the {n_spl} splits "
                f"with a non-zero fraction ({', '.join(splits)}) needs at least one; use fewer splits (e.g. "
                f"fractions=(0.8, 0.2)) or finer groups"
            )
    return totals, with_class


@dataclass
class _Assignment:
    """One ``assign_splits`` in progress: the groups in seeded order, per split and class the target and the count
    so far, and the split each placed group is in."""

    sizes: dict[str, list[int]]
    order: list[str]
    rank: dict[str, int]
    target: list[list[float]]
    count: list[list[int]]
    scale: list[float]
    where: dict[str, int] = field(default_factory=dict)

    @classmethod
    def start(cls, sizes: dict[str, list[int]], totals: list[int], weights: list[float], seed: int) -> _Assignment:
        """Nothing placed yet; the groups shuffled with ``seed`` (which breaks ties)."""
        order = sorted(sizes)
        random.Random(seed).shuffle(order)
        return cls(
            sizes=sizes,
            order=order,
            rank={g: i for i, g in enumerate(order)},
            target=[[w * t for t in totals] for w in weights],
            count=[[0] * len(CLASS_NAMES) for _ in weights],
            scale=[(max(totals) / t) ** 2 for t in totals],  # per-class relative deviations, largest class weighs 1
        )

    def cost(self, g: str, s: int, sign: int = 1) -> float:
        """Change of the squared deviation of split ``s`` when group ``g`` is added (sign 1) or removed (-1)."""
        count, target, scale = self.count, self.target, self.scale
        return sum(
            scale[c] * v * (2 * sign * (count[s][c] - target[s][c]) + v) for c, v in enumerate(self.sizes[g]) if v
        )

    def move(self, g: str, s: int, sign: int = 1) -> None:
        for c, v in enumerate(self.sizes[g]):
            self.count[s][c] += sign * v
        if sign > 0:
            self.where[g] = s


def _cover_classes(state: _Assignment, splits: list[str], with_class: list[int]) -> None:
    """Step 1: each split gets each class: the smallest group that covers a missing class without doubling one."""
    sizes, count = state.sizes, state.count
    for s in range(len(splits)):
        for c in sorted(range(len(CLASS_NAMES)), key=lambda c: (with_class[c], c)):
            if count[s][c]:
                continue
            free = [g for g in state.order if g not in state.where and sizes[g][c]]
            if not free:
                raise SplitError(
                    f"too few groups: no group with class '{CLASS_NAMES[c]}' is left for split '{splits[s]}'; "
                    f"use fewer splits (e.g. fractions=(0.8, 0.2)) or finer groups"
                )

            def smallest_first(g: str, s: int = s) -> tuple[int, int, int]:
                doubled = sum(1 for k, v in enumerate(sizes[g]) if v and count[s][k])
                return doubled, sum(sizes[g]), state.rank[g]

            state.move(min(free, key=smallest_first), s)


def _place_rest(state: _Assignment) -> None:
    """Step 2: the rest, largest first, each where it fills the largest deficit."""
    n_spl = len(state.count)
    for g in sorted(
        (g for g in state.order if g not in state.where), key=lambda g: (-sum(state.sizes[g]), state.rank[g])
    ):
        state.move(g, min(range(n_spl), key=lambda s: (state.cost(g, s), s)))


def _refine(state: _Assignment) -> None:
    """Step 3: move single groups while that lowers the deviation and leaves both classes in every split."""
    n_spl = len(state.count)
    for _ in range(_MAX_REFINE_PASSES):
        moved = False
        for g in state.order:
            s = state.where[g]
            if any(v and state.count[s][c] == v for c, v in enumerate(state.sizes[g])):
                continue
            change, dest = min((state.cost(g, s, -1) + state.cost(g, s2), s2) for s2 in range(n_spl) if s2 != s)
            if change < -1e-9:
                state.move(g, s, -1)
                state.move(g, dest)
                moved = True
        if not moved:
            break


def assign_splits(
    items: list[tuple[str, int, str]], fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0
) -> dict[str, str]:
    """Map each item ``(key, label, group)`` to a split name, keeping every group in one split.

    Stratified by label: for each split and class the item count comes as close to ``fraction * class
    total`` as the groups allow. The procedure, deterministic for a seed and independent of item order:
    groups are shuffled with the seed (which breaks ties); first each split with a non-zero fraction gets
    the smallest group holding each class it lacks; the rest go largest first, each to the split where it
    most reduces the squared per-class deviation from the targets (a split's largest deficit for the
    group's classes); last, single groups move between splits while that lowers the deviation and leaves
    every split with both classes. Raises ``SplitError`` for bad fractions or items, and when a class has
    too few groups to appear in every split.
    """
    fracs = _check_fractions(fractions)
    splits = [name for name, f in zip(SPLIT_NAMES, fracs, strict=False) if f > 0]
    weights = [f / sum(fracs) for f in fracs if f > 0]
    sizes, group_of = _group_sizes(items)
    totals, with_class = _class_totals(sizes, splits)
    state = _Assignment.start(sizes, totals, weights, seed)
    _cover_classes(state, splits, with_class)
    _place_rest(state)
    _refine(state)
    return {key: splits[state.where[group]] for key, group in group_of.items()}
