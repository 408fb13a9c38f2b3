"""Demo videos: files, frame count/size/fps, determinism, smooth camera motion, a flickering blend in the fakes,
and the demo dataset build with and without videos."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepfake_lib.cli import demo as demo_cli
from deepfake_lib.core.runs import read_json
from deepfake_lib.demo import images as demo
from deepfake_lib.demo import photos as demo_photos
from deepfake_lib.demo import videos as demo_video
from deepfake_lib.demo.videos import VideoDemoSpec, build_demo_videos, fake_video, fake_video_pair, real_video

TINY_VIDEOS = VideoDemoSpec(counts={"train": {"real": 2, "fake": 2}}, n_frames=6, size=64, fps=5.0, seed=0)


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return {name: np.asarray(Image.open(p).convert("RGB")) for name, p in demo_photos.photo_paths().items()}


def read_video(path: Path) -> tuple[np.ndarray, float]:
    """All frames ``[T, H, W, 3]`` uint8 RGB of ``path`` and its frame rate."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), path
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    return np.stack(frames), fps


def jpg_digest(root: Path) -> dict[str, bytes]:
    """Every JPEG under ``root``: relative path -> bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.jpg"))}


def mad(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two uint8 arrays."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_build_writes_videos_with_frames_size_and_fps(tmp_path: Path, photos: dict[str, np.ndarray]) -> None:
    paths = build_demo_videos(tmp_path, TINY_VIDEOS, photos=photos, progress=False)
    expected = [tmp_path / "train" / label / f"{label}_video_{i:03d}.mp4" for label in ("real", "fake") for i in (0, 1)]
    assert paths == expected and all(p.is_file() for p in paths)
    for p in paths:
        frames, fps = read_video(p)
        assert frames.shape == (6, 64, 64, 3)
        assert fps == pytest.approx(5.0, abs=0.01)


def test_deterministic_for_a_seed(tmp_path: Path, photos: dict[str, np.ndarray]) -> None:
    a = build_demo_videos(tmp_path / "a", TINY_VIDEOS, photos=photos, progress=False)
    b = build_demo_videos(tmp_path / "b", TINY_VIDEOS, photos=photos, progress=False)
    for pa, pb in zip(a, b, strict=True):
        assert np.array_equal(read_video(pa)[0], read_video(pb)[0])
    astronaut = photos["astronaut"]
    for make in (real_video, fake_video):
        one, two = (make(astronaut, 6, 64, np.random.default_rng(3)) for _ in range(2))
        other = make(astronaut, 6, 64, np.random.default_rng(4))
        assert all(np.array_equal(x, y) for x, y in zip(one, two, strict=True))
        assert not all(np.array_equal(x, y) for x, y in zip(one, other, strict=True))


def test_real_video_moves_smoothly_and_keeps_the_astronaut_face(photos: dict[str, np.ndarray]) -> None:
    for name in ("astronaut", "chelsea", "coffee"):
        frames = real_video(photos[name], 8, 64, np.random.default_rng(0))
        assert len(frames) == 8 and all(f.shape == (64, 64, 3) and f.dtype == np.uint8 for f in frames)
        steps = [mad(a, b) for a, b in zip(frames, frames[1:], strict=False)]
        assert min(steps) > 0.2, (name, steps)  # the camera moves in every frame ...
        unrelated = mad(frames[0], np.asarray(Image.fromarray(photos["flower"]).resize((64, 64))))
        assert max(steps) < 0.6 * unrelated, (name, steps, unrelated)  # ... by small steps, no cuts
    for seed in range(20):
        boxes = demo_video.camera_path(512, 512, 24, np.random.default_rng(seed), demo_video.ASTRONAUT_KEEP_BOX)
        x1, y1, x2, y2 = demo_video.ASTRONAUT_FACE_BOX
        assert (boxes[:, :2] <= (x1, y1)).all() and (boxes[:, 2:] >= (x2, y2)).all()
        assert (boxes >= 0).all() and (boxes <= 512).all()
        assert np.allclose(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])  # square windows
    assert demo_video._keep_box(photos["astronaut"], "auto") == demo_video.ASTRONAUT_KEEP_BOX
    assert demo_video._keep_box(photos["chelsea"], "auto") is None


def test_fake_blend_strength_flickers_over_time(photos: dict[str, np.ndarray]) -> None:
    for seed, name in enumerate(("astronaut", "coffee", "chelsea")):
        fake, clean = fake_video_pair(photos[name], 8, 64, np.random.default_rng(seed))
        assert all(
            np.array_equal(a, b)
            for a, b in zip(clean, real_video(photos[name], 8, 64, np.random.default_rng(seed)), strict=True)
        )
        assert all(
            np.array_equal(a, b)
            for a, b in zip(fake, fake_video(photos[name], 8, 64, np.random.default_rng(seed)), strict=True)
        )
        diff = np.array([mad(f, c) for f, c in zip(fake, clean, strict=True)])
        assert (diff > 0.1).all() and diff.max() < 20, diff  # a blended region in every frame, subtle
        assert diff.std() / diff.mean() > 0.05, diff  # its strength varies over the clip ...
        assert np.abs(np.diff(diff)).mean() / diff.mean() > 0.05, diff  # ... and from frame to frame
        changed = [(np.abs(f.astype(int) - c).sum(axis=2) > 10).mean() for f, c in zip(fake, clean, strict=True)]
        assert max(changed) < 0.95, changed  # a region, not the whole frame
    masks = demo_video.drifting_masks(64, 12, np.random.default_rng(0))
    assert masks.shape == (12, 64, 64) and masks.min() >= 0 and masks.max() <= 1
    assert (np.abs(np.diff(masks, axis=0)).mean(axis=(1, 2)) > 1e-3).all()  # the mask moves every frame


def test_photo_order_puts_the_astronaut_first_and_often() -> None:
    order = demo_video.video_photo_order(list(demo_photos.ALL_PHOTOS), 8)
    assert order[0] == "astronaut" and order.count("astronaut") == 4 and len(set(order)) == 5
    assert demo_video.video_photo_order(["chelsea"], 3) == ["chelsea"] * 3


def test_demo_dataset_with_and_without_videos(tmp_path: Path) -> None:
    counts = {"real": 2, "fake": 1}
    images = {"counts": {"train": dict(counts), "val": dict(counts), "test": dict(counts)}, "size": 32}
    videos = VideoDemoSpec(counts={"train": {"real": 1, "fake": 1}, "val": {"real": 1, "fake": 1}}, n_frames=6, size=64)
    a = demo.build_demo_dataset(tmp_path / "a", demo.DemoSpec(**images, videos=videos), progress=False)
    mp4s = sorted(p.relative_to(a).as_posix() for p in a.rglob("*.mp4"))
    assert mp4s == [f"{s}/{c}/{c}_video_000.mp4" for s in ("train", "val") for c in ("fake", "real")]
    manifest = read_json(a / demo.MANIFEST)
    assert manifest["demo_version"] == demo.DEMO_VERSION == 2 and manifest["videos"] == asdict(videos)

    marker = a / "val" / "fake" / "fake_video_000.mp4"
    mtime = marker.stat().st_mtime_ns
    demo.build_demo_dataset(a, demo.DemoSpec(**images, videos=videos), progress=False)
    assert marker.stat().st_mtime_ns == mtime  # a rebuild with the same spec is a no-op

    b = demo.build_demo_dataset(tmp_path / "b", demo.DemoSpec(**images, videos=None), progress=False)
    assert not list(b.rglob("*.mp4")) and read_json(b / demo.MANIFEST)["videos"] is None
    assert jpg_digest(a) == jpg_digest(b)  # the videos leave the images as they were

    c = demo.build_demo_dataset(tmp_path / "c", demo.DemoSpec(**images, seed=1, videos=videos), progress=False)
    assert not np.array_equal(read_video(marker)[0], read_video(c / "val" / "fake" / "fake_video_000.mp4")[0])

    demo.build_demo_dataset(a, demo.DemoSpec(**images, videos=None), progress=False)  # spec changed: rebuilt
    assert not list(a.rglob("*.mp4")) and jpg_digest(a) == jpg_digest(b)


def test_default_specs_and_the_no_videos_flag(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    spec = demo.DemoSpec()
    assert spec.videos == VideoDemoSpec() and spec.videos.size == spec.size == 128
    assert spec.videos.counts == {
        "train": {"real": 8, "fake": 8},
        "val": {"real": 4, "fake": 4},
        "test": {"real": 4, "fake": 4},
    }
    seen: list[demo.DemoSpec] = []
    monkeypatch.setattr(demo_cli, "build_demo_dataset", lambda out, spec, force: seen.append(spec) or Path(out))
    for argv in ([], ["--no-videos"]):
        monkeypatch.setattr(sys, "argv", ["demo", "--out", str(tmp_path), "--seed", "2", *argv])
        demo_cli.main()
    assert seen[0] == demo.DemoSpec(seed=2) and seen[1] == demo.DemoSpec(seed=2, videos=None)
