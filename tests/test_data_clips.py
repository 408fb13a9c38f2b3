"""Clip folders in the data layer: scanning raw and prepared video data, clip tensors with replayed augmentation,
length-grouped batches, clip loading errors and listing (``deepfake_lib.data.datasets``, ``deepfake_lib.core.images``)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deepfake_lib.core import images
from deepfake_lib.core.files import is_clip_dir
from deepfake_lib.core.images import VIDEO_HINT, ImageLoadError, check_image, load_clip, load_image
from deepfake_lib.data.datasets import DeepfakeDataset, make_loader
from deepfake_lib.data.samplers import LengthGroupedBatchSampler, make_oversampler
from deepfake_lib.data.scan import DataLayoutError, Sample, scan_split
from deepfake_lib.data.transforms import build_transform, transform_frames

T = 4  # frames per clip of the prepared data
SIZE = 32


def write_clip(folder: Path, frames: list[np.ndarray]) -> Path:
    """A clip folder ``00.png, 01.png, ...`` (plus a ``clip.json``) of ``[H, W, 3]`` uint8 frames."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{i:02d}.png")
    (folder / "clip.json").write_text("{}")
    return folder


def flat(value: int, size: int = SIZE) -> np.ndarray:
    return np.full((size, size, 3), value, np.uint8)


def noise(seed: int, size: int = SIZE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def prepared(tiny_video_clips: Path) -> Path:
    """``tiny_video_data`` with its videos cut into clips of 4 frames at 32 px (its splits kept)."""
    return tiny_video_clips


@pytest.fixture(scope="module")
def train_set(prepared: Path) -> DeepfakeDataset:
    """The prepared train split: 12 images and 12 clips (3 real and 3 fake videos, 2 clips each)."""
    return DeepfakeDataset(scan_split(prepared, "train").samples, build_transform(SIZE, train=False))


# --------------------------------------------------------------------------- scanning
def test_raw_video_data_skips_videos_with_a_hint_and_keeps_images(tiny_video_data: Path) -> None:
    scan = scan_split(tiny_video_data, "train")
    assert scan.counts == {"real": 8, "fake": 4}
    assert all(s.path.suffix == ".jpg" for s in scan.samples)
    videos = [s for s in scan.skipped if s.path.suffix == ".mp4"]
    assert len(videos) == 6 and len(scan.skipped) == 6
    assert all(s.reason == VIDEO_HINT for s in videos)
    assert {s["reason"] for s in scan.summary()["skipped_files"]} == {VIDEO_HINT}


def test_split_holding_only_videos_raises_and_mentions_videos(tiny_video_data: Path, tmp_path: Path) -> None:
    for label in ("real", "fake"):
        dest = tmp_path / "train" / label
        dest.mkdir(parents=True)
        for video in sorted((tiny_video_data / "train" / label).glob("*.mp4"))[:2]:
            shutil.copy(video, dest / video.name)
    with pytest.raises(DataLayoutError) as info:
        scan_split(tmp_path, "train")
    message = str(info.value)
    assert "4 of them are videos" in message and "cut" in message and "clips" in message


def test_prepared_video_data_lists_clips_as_samples(prepared: Path) -> None:
    scan = scan_split(prepared, "train")
    clips = [s for s in scan.samples if is_clip_dir(s.path)]
    assert len(clips) == 12 and len(scan.samples) == 24 and scan.skipped == []
    assert Counter(s.label for s in clips) == {0: 6, 1: 6}


# --------------------------------------------------------------------------- dataset
def test_dataset_items_are_frame_sequences(train_set: DeepfakeDataset) -> None:
    shapes = Counter()
    for i in range(len(train_set)):
        item = train_set[i]
        assert item["x"].dtype == torch.float32 and item["y"] == train_set.samples[i].label
        expected = (T, 3, SIZE, SIZE) if is_clip_dir(item["path"]) else (1, 3, SIZE, SIZE)
        assert tuple(item["x"].shape) == expected
        shapes[tuple(item["x"].shape)] += 1
    assert shapes == {(1, 3, SIZE, SIZE): 12, (T, 3, SIZE, SIZE): 12}
    assert train_set.lengths == [T if is_clip_dir(s.path) else 1 for s in train_set.samples]
    assert train_set.clip_length == T


def test_clip_length_is_one_for_images_only_and_raises_for_mixed_clip_lengths(tmp_path: Path) -> None:
    img = tmp_path / "a.png"
    Image.fromarray(flat(10)).save(img)
    four = write_clip(tmp_path / "four.clip", [flat(v) for v in range(4)])
    three = write_clip(tmp_path / "three.clip", [flat(v) for v in range(3)])
    tf = build_transform(SIZE, train=False)
    assert DeepfakeDataset([Sample(img, 0)], tf).clip_length == 1
    assert DeepfakeDataset([Sample(img, 0), Sample(four, 1)], tf).clip_length == 4
    mixed = DeepfakeDataset([Sample(img, 0), Sample(four, 1), Sample(three, 0)], tf)
    assert mixed.lengths == [1, 4, 3]
    with pytest.raises(DataLayoutError, match=r"different lengths \[3, 4\]"):
        _ = mixed.clip_length


def test_train_augmentation_is_replayed_on_every_frame_but_differs_between_calls(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "same.clip", [noise(0)] * T)
    ds = DeepfakeDataset([Sample(clip, 1)], build_transform(SIZE, train=True))
    torch.manual_seed(0)
    draws = [ds[0]["x"] for _ in range(8)]
    for x in draws:
        assert x.shape == (T, 3, SIZE, SIZE)
        assert all(torch.equal(x[0], x[t]) for t in range(1, T))  # one draw for the whole clip
    assert any(not torch.equal(draws[0], x) for x in draws[1:])  # but a new draw on each call


def test_transform_frames_applies_the_same_draw_to_different_frames() -> None:
    frames = [Image.fromarray(noise(seed)) for seed in range(3)]
    tf = build_transform(SIZE, train=True)
    for seed in range(4):
        torch.manual_seed(seed)
        out = transform_frames(tf, frames)
        expected = []
        for frame in frames:
            torch.manual_seed(seed)
            expected.append(tf(frame))
        assert torch.equal(out, torch.stack(expected))
    assert transform_frames(tf, frames[:1]).shape == (1, 3, SIZE, SIZE)


# --------------------------------------------------------------------------- batches
def assert_homogeneous(batches: list[dict]) -> list[str]:
    """Every batch holds one sequence length; returns all paths in order."""
    paths = []
    for batch in batches:
        assert batch["bad"] == [] and batch["x"].ndim == 5
        t = batch["x"].shape[1]
        assert all(is_clip_dir(p) == (t == T) for p in batch["path"])
        paths += batch["path"]
    return paths


@pytest.mark.parametrize("shuffle", [False, True])
def test_loader_batches_one_length_and_covers_every_sample_once(train_set: DeepfakeDataset, shuffle: bool) -> None:
    torch.manual_seed(0)
    batches = list(make_loader(train_set, batch_size=5, shuffle=shuffle))
    paths = assert_homogeneous(batches)
    assert sorted(paths) == sorted(str(s.path) for s in train_set.samples)
    assert sorted(len(b["path"]) for b in batches) == [2, 2, 5, 5, 5, 5]  # 12 per length: 5 + 5 + 2 each
    if not shuffle:
        clips = [p for p in paths if is_clip_dir(p)]
        assert clips == [str(s.path) for s in train_set.samples if is_clip_dir(s.path)]  # order kept


def test_loader_drop_last_keeps_only_full_batches(train_set: DeepfakeDataset) -> None:
    batches = list(make_loader(train_set, batch_size=5, shuffle=True, drop_last=True))
    assert_homogeneous(batches)
    assert [len(b["path"]) for b in batches] == [5, 5, 5, 5]


def test_loader_with_an_oversampler_keeps_batches_homogeneous(train_set: DeepfakeDataset) -> None:
    sampler = make_oversampler(train_set.labels, seed=1)
    batches = list(make_loader(train_set, batch_size=4, sampler=sampler))
    paths = assert_homogeneous(batches)
    assert len(paths) == len(train_set)  # one epoch of draws, with replacement
    assert len(set(paths)) < len(paths) and all(p in {str(s.path) for s in train_set.samples} for p in paths)


def test_loader_of_one_length_is_plain_batching(prepared: Path) -> None:
    clips = [s for s in scan_split(prepared, "val").samples if is_clip_dir(s.path)]
    ds = DeepfakeDataset(clips, build_transform(SIZE, train=False))
    loader = make_loader(ds, batch_size=5)
    assert loader.batch_sampler is not None and not isinstance(loader.batch_sampler, LengthGroupedBatchSampler)
    assert [tuple(b["x"].shape) for b in loader] == [
        (5, T, 3, SIZE, SIZE),
        (5, T, 3, SIZE, SIZE),
        (2, T, 3, SIZE, SIZE),
    ]


def test_length_grouped_batch_sampler_keeps_order_within_a_length() -> None:
    lengths = [1, 4, 1, 4, 1, 1, 4]
    sampler = LengthGroupedBatchSampler(list(range(7)), lengths, batch_size=2)
    assert list(sampler) == [[0, 2], [1, 3], [4, 5], [6]]  # full batches as they fill, partial ones at the end
    assert list(LengthGroupedBatchSampler(list(range(7)), lengths, 2, drop_last=True)) == [[0, 2], [1, 3], [4, 5]]
    order = [6, 5, 3, 0, 1, 4, 2]
    assert list(LengthGroupedBatchSampler(order, lengths, batch_size=2)) == [[6, 3], [5, 0], [4, 2], [1]]
    assert list(LengthGroupedBatchSampler(order, lengths, batch_size=10)) == [[5, 0, 4, 2], [6, 3, 1]]  # by length


def test_length_grouped_batch_sampler_with_one_length_is_plain_batching() -> None:
    sampler = LengthGroupedBatchSampler(list(range(7)), [4] * 7, batch_size=3)
    assert list(sampler) == [[0, 1, 2], [3, 4, 5], [6]] and len(sampler) == 3
    assert list(LengthGroupedBatchSampler(list(range(7)), [4] * 7, 3, drop_last=True)) == [[0, 1, 2], [3, 4, 5]]
    assert list(LengthGroupedBatchSampler([], [], batch_size=3)) == []


def test_length_grouped_batch_sampler_len_is_never_under_the_batches_drawn() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(1, 30))
        lengths = [int(v) for v in rng.choice([1, 4, 8], n)]
        for drop_last in (False, True):
            sampler = LengthGroupedBatchSampler(list(rng.permutation(n)), lengths, int(rng.integers(1, 6)), drop_last)
            assert len(list(sampler)) <= len(sampler)


# --------------------------------------------------------------------------- clip folders
def test_load_clip_returns_frames_in_order(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "x.clip", [flat(10 * i) for i in range(5)])
    frames = load_clip(clip)
    assert [f.getpixel((0, 0))[0] for f in frames] == [0, 10, 20, 30, 40]
    assert all(f.mode == "RGB" and f.size == (SIZE, SIZE) for f in frames)
    assert load_image(clip).getpixel((0, 0))[0] == 20  # the middle frame
    assert load_image(write_clip(tmp_path / "even.clip", [flat(10 * i) for i in range(4)])).getpixel((0, 0))[0] == 20
    assert check_image(clip) is None
    assert images.sample_length(clip) == 5 and images.sample_length(tmp_path / "even.clip" / "00.png") == 1


def test_load_clip_errors_name_the_clip_and_the_frame(tmp_path: Path) -> None:
    empty = tmp_path / "empty.clip"
    empty.mkdir()
    (empty / "clip.json").write_text("{}")
    with pytest.raises(ImageLoadError, match="without frames") as info:
        load_clip(empty)
    assert info.value.path == empty
    with pytest.raises(ImageLoadError, match="without frames"):
        load_image(empty)

    corrupt = write_clip(tmp_path / "corrupt.clip", [flat(v) for v in range(3)])
    (corrupt / "01.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(ImageLoadError) as info:
        load_clip(corrupt)
    assert info.value.path == corrupt and "corrupt.clip" in str(info.value)
    assert "frame 01.png" in info.value.reason
    reason = check_image(corrupt)
    assert reason is not None and "01.png" in reason

    mixed = write_clip(tmp_path / "mixed.clip", [flat(0), flat(0, size=16), flat(0)])
    with pytest.raises(ImageLoadError, match="different sizes") as info:
        load_clip(mixed)
    assert info.value.path == mixed
    assert "different sizes" in (check_image(mixed) or "")


def test_dataset_reports_a_broken_clip_in_the_batch(tmp_path: Path) -> None:
    good = write_clip(tmp_path / "good.clip", [flat(v) for v in range(3)])
    bad = write_clip(tmp_path / "bad.clip", [flat(v) for v in range(3)])
    (bad / "02.png").write_bytes(b"")
    ds = DeepfakeDataset([Sample(good, 0), Sample(bad, 1)], build_transform(SIZE, train=False))
    batch = next(iter(make_loader(ds, batch_size=2)))
    assert batch["path"] == [str(good)] and batch["x"].shape == (1, 3, 3, SIZE, SIZE)
    assert len(batch["bad"]) == 1 and batch["bad"][0][0] == str(bad) and "02.png" in batch["bad"][0][1]


def test_listing_does_not_enter_clip_folders(tmp_path: Path) -> None:
    Image.fromarray(flat(1)).save(tmp_path / "a.png")
    write_clip(tmp_path / "sub" / "x.clip", [flat(v) for v in range(3)])
    write_clip(tmp_path / "sub" / "Y.CLIP", [flat(v) for v in range(2)])
    write_clip(tmp_path / ".hidden.clip", [flat(0)])
    Image.fromarray(flat(2)).save(tmp_path / "sub" / "b.jpg")
    (tmp_path / "sub" / "v.mp4").write_bytes(b"\0" * 10)
    samples, skipped = images.list_samples(tmp_path)
    assert samples == [tmp_path / "a.png", tmp_path / "sub" / "Y.CLIP", tmp_path / "sub" / "b.jpg",
                       tmp_path / "sub" / "x.clip"]  # fmt: skip
    assert skipped == [images.Skipped(tmp_path / "sub" / "v.mp4", VIDEO_HINT)]
    with_videos, skipped = images.list_samples(tmp_path, videos=True)
    assert tmp_path / "sub" / "v.mp4" in with_videos and len(with_videos) == 5 and skipped == []
    files, skipped = images.list_image_files(tmp_path)
    assert files == [tmp_path / "a.png", tmp_path / "sub" / "b.jpg"] and skipped == []
