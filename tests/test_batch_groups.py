"""Balanced epochs without replacement, and the members of a group (a real face and its forgery) in one batch."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from deepfake_lib.data import scan_dataset
from deepfake_lib.data.samplers import BalancedSampler
from deepfake_lib.data.selfblend import datasets_for
from deepfake_lib.prepare import make_splits, split_groups
from deepfake_lib.training import TrainConfig, fit
from deepfake_lib.training.run_setup import _setup
from tests.conftest import FIT_FAST, TINY_SIZE, tiny_model, train_val_datasets


def test_a_balanced_epoch_repeats_no_sample_before_its_class_is_used_up() -> None:
    labels = [0] * 90 + [1] * 10
    draws = list(BalancedSampler(labels, seed=1))
    per_sample = Counter(draws)
    assert len(draws) == 100 and sum(labels[i] for i in draws) == 50
    assert {per_sample[i] for i in range(90, 100)} == {5}  # each fake exactly 5 times
    assert max(per_sample[i] for i in range(90)) == 1  # 50 distinct reals, none twice
    assert draws == list(BalancedSampler(labels, seed=1)) != list(BalancedSampler(labels, seed=2))
    uneven = Counter(BalancedSampler([0] * 3 + [1] * 7, seed=0, num_samples=11))
    assert sorted(uneven[i] for i in range(3)) in ([1, 2, 2], [2, 2, 2])  # 5 or 6 draws: whole passes first


def test_groups_reorder_an_epoch_so_that_members_follow_each_other() -> None:
    labels = [0, 1] * 20 + [0] * 4
    groups = [f"scene{i // 2}" for i in range(40)] + ["a", "b", "c", "d"]
    plain = list(BalancedSampler(labels, seed=3))
    paired = list(BalancedSampler(labels, seed=3, groups=groups))
    assert sorted(paired) == sorted(plain)  # the same draws, in another order
    positions: dict[str, list[int]] = {}
    for pos, index in enumerate(paired):
        positions.setdefault(groups[index], []).append(pos)
    split_pairs = [g for g, pos in positions.items() if len(pos) == 2 and pos[1] != pos[0] + 1]
    assert not split_pairs
    unbalanced = list(BalancedSampler(labels, seed=3, groups=groups, balance=False))
    assert sorted(unbalanced) == list(range(44))  # balance off: every sample once
    with pytest.raises(ValueError, match="groups has 3 entries"):
        BalancedSampler(labels, groups=["x"] * 3)


def paired_faces(root: Path, n: int = 10) -> Path:
    """A flat folder of ``n`` scenes: ``real/s<i>.jpg`` and its forgery ``fake/s<i>_swap.jpg``, 32x32."""
    for folder in ("real", "fake"):
        (root / folder).mkdir(parents=True)
    for i in range(n):
        colour = (20 * i % 255, 90, 160)
        Image.new("RGB", (32, 32), colour).save(root / "real" / f"s{i}.jpg")
        Image.new("RGB", (32, 32), colour[::-1]).save(root / "fake" / f"s{i}_swap.jpg")
    return root


def test_a_split_folder_gives_its_groups_to_the_training_set(tmp_path: Path) -> None:
    src = paired_faces(tmp_path / "src")
    splits = make_splits(src, tmp_path / "splits", group_regex=r"^(s\d+)", seed=0, progress=False)
    group_of = split_groups(splits.out_dir)
    assert len(group_of) == 20 and all(Path(p).exists() for p in group_of)
    scans = scan_dataset(splits.out_dir, ["train", "val"])
    train_ds, val_ds, _ = datasets_for(
        scans, "labelled", TINY_SIZE, tmp_path / "run", progress=False, group_of=group_of
    )
    groups = train_ds.groups
    assert all(Counter(groups)[g] == 2 for g in groups)  # each scene's real face and its swap share a key
    assert {Path(s.path).stem.split("_")[0] for s in train_ds.samples} == set(groups)
    assert len(set(val_ds.groups)) == len(val_ds)  # validation carries no groups: each file its own
    assert split_groups(tmp_path / "src") == {}  # a folder split by hand has none

    cfg = TrainConfig(epochs=1, batch_groups=True, **{**FIT_FAST, "batch_size": 4})
    run = _setup(tiny_model(), train_ds, val_ds, tmp_path / "run", cfg, None)
    batches = [[Path(p).stem.split("_")[0] for p in batch["path"]] for batch in run.train_loader]
    assert batches and all(Counter(b)[g] == 2 for b in batches for g in b)  # whole pairs in every batch


def test_self_blended_fakes_share_their_source_group(tiny_data: Path, tmp_path: Path) -> None:
    scans = scan_dataset(tiny_data, ["train", "val"])
    train_ds, _, _ = datasets_for(scans, "both", TINY_SIZE, tmp_path / "run", progress=False)
    groups, n = train_ds.groups, len(train_ds.samples)
    assert len(groups) == len(train_ds)
    assert groups[n:] == [str(s.path.absolute()) for s in train_ds.sources]  # pseudo-fake j: its source's key
    assert set(groups[n:]) <= set(groups[:n])
    order = list(BalancedSampler(train_ds.labels, groups=groups, balance=False))
    where = {index: pos for pos, index in enumerate(order)}
    for j, source in enumerate(train_ds.sources):  # each real right next to its self-blended fake
        real = next(i for i, s in enumerate(train_ds.samples) if s.path == source.path)
        assert abs(where[real] - where[n + j]) == 1


def test_fit_with_batch_groups_trains_and_refuses_a_set_without_groups(tmp_path: Path, tiny_data: Path) -> None:
    train_ds, val_ds = train_val_datasets(tiny_data)
    result = fit(tiny_model(), train_ds, val_ds, tmp_path / "run", epochs=1, batch_groups=True, **FIT_FAST)
    assert result.best_path.is_file() and len(result.history) == 1

    class NoGroups(list):
        labels = [0, 1]

    with pytest.raises(ValueError, match="batch_groups needs a training set with groups"):
        fit(tiny_model(), NoGroups([0, 1]), val_ds, tmp_path / "run2", epochs=1, batch_groups=True, **FIT_FAST)
