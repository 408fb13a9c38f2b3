"""Reading videos: probe, frame sampling, sequential decoding, and clear errors for broken files."""

from __future__ import annotations

import logging
import wave
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from deepfake_lib.core import video
from deepfake_lib.core.files import Skipped
from deepfake_lib.core.video import (
    VideoError,
    VideoInfo,
    check_video,
    iter_frames,
    list_video_files,
    probe_video,
    read_frames,
    sample_indices,
    scan_videos,
    write_video,
)

N, H, W, FPS = 20, 48, 64, 10.0
LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 123\n"


def coded_frames(n: int = N, step: int = 10) -> list[np.ndarray]:
    """Frame ``i``: ``[H, W, 3]`` RGB with red ``step * i`` (the frame number), green 80, blue 160."""
    return [np.dstack([np.full((H, W), v, np.uint8) for v in (step * i, 80, 160)]) for i in range(n)]


def decoded_index(image: Image.Image, step: int = 10) -> int:
    """The frame number a decoded frame encodes (red mean / step; compression shifts it by a few levels)."""
    rgb = np.asarray(image, dtype=np.float64)
    assert abs(rgb[..., 2].mean() - 160) < 12, "blue channel off: BGR/RGB mix-up?"
    return round(rgb[..., 0].mean() / step)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("videos")
    return {ext: write_video(root / f"clip.{ext}", coded_frames(), fps=FPS) for ext in ("mp4", "avi")}


def write_wav(path: Path) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 4000)
    return path


def assert_error(path: Path, fragment: str, fn: Any = probe_video) -> VideoError:
    with pytest.raises(VideoError) as info:
        fn(path)
    assert path.name in str(info.value) and info.value.path == path
    assert fragment in info.value.reason, info.value.reason
    return info.value


@pytest.mark.parametrize("ext", ["mp4", "avi"])
def test_probe_reports_frames_fps_size_and_duration(videos: dict[str, Path], ext: str) -> None:
    info = probe_video(videos[ext])
    assert info == VideoInfo(videos[ext], frames=N, fps=FPS, width=W, height=H)
    assert info.duration == pytest.approx(2.0)


def test_sample_indices_uniform_every_and_caps() -> None:
    assert sample_indices(100, num=4) == [12, 37, 62, 87]  # centres of 4 equal segments
    assert sample_indices(20, num=20) == list(range(20))
    assert sample_indices(5, num=8) == [0, 1, 2, 3, 4]  # shorter video: every frame, once
    assert sample_indices(0, num=3) == []
    assert sample_indices(100, num=10, max_frames=2) == [25, 75]
    assert sample_indices(10, num=np.int64(2)) == [2, 7]
    for n, k in [(7, 3), (1000, 999), (31, 30)]:
        got = sample_indices(n, num=k)
        assert got == sorted(set(got)) and len(got) == k and got[0] >= 0 and got[-1] < n
    assert sample_indices(10, every=3) == [0, 3, 6, 9]
    assert sample_indices(10, every=3, max_frames=2) == [0, 3]
    assert sample_indices(10, every=1, max_frames=50) == list(range(10))


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"num": 2, "every": 2}, {"num": 0}, {"every": -1}, {"every": 2, "max_frames": 0}, {"num": 2.5}],
)
def test_sample_indices_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        sample_indices(10, **kwargs)


@pytest.mark.parametrize("ext", ["mp4", "avi"])
def test_read_frames_uniform_gives_the_right_frames_times_and_images(videos: dict[str, Path], ext: str) -> None:
    frames = read_frames(videos[ext], num=4)
    assert [f.index for f in frames] == [2, 7, 12, 17]
    assert [f.time for f in frames] == pytest.approx([0.2, 0.7, 1.2, 1.7])  # index / fps
    for f in frames:
        assert f.image.mode == "RGB" and f.image.size == (W, H)
        assert decoded_index(f.image) == f.index


def test_read_frames_every_k_and_max_frames(videos: dict[str, Path]) -> None:
    frames = read_frames(videos["mp4"], every=6)
    assert [f.index for f in frames] == [0, 6, 12, 18]
    assert [decoded_index(f.image) for f in frames] == [0, 6, 12, 18]
    assert [f.index for f in iter_frames(videos["avi"], every=5, max_frames=2)] == [0, 5]
    assert len(read_frames(videos["mp4"], num=100)) == N


def test_read_frames_at_given_indices(videos: dict[str, Path]) -> None:
    frames = read_frames(videos["avi"], indices=[15, 3, 3, 9])
    assert [f.index for f in frames] == [3, 9, 15]
    assert [decoded_index(f.image) for f in frames] == [3, 9, 15]
    assert [f.index for f in read_frames(videos["avi"], indices=range(20), max_frames=2)] == [0, 1]
    assert read_frames(videos["avi"], indices=[]) == []
    for bad in ({"indices": [1], "num": 2}, {"indices": [-1]}):
        with pytest.raises(ValueError):
            read_frames(videos["avi"], **bad)


def test_truncated_mp4_cannot_be_opened(videos: dict[str, Path], tmp_path: Path) -> None:
    # OpenCV's mp4v writer puts the index (moov atom) at the end: half a file has none, FFMPEG refuses it.
    cut = tmp_path / "cut.mp4"
    data = videos["mp4"].read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    assert_error(cut, "no video stream that OpenCV/FFMPEG can decode")
    assert "corrupt" in (check_video(cut) or "")


def test_truncated_avi_gives_the_frames_before_the_cut_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # An AVI header (~5 kB with OpenCV's padding) still claims 40 frames; half the bytes hold the first ~11.
    data = write_video(tmp_path / "full.avi", coded_frames(40, step=6), fps=FPS).read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    assert probe_video(cut).frames == 40  # over-reported: the container cannot know
    with caplog.at_level(logging.WARNING, logger="deepfake_lib.core.video"):
        frames = read_frames(cut, num=8)
    assert [f.index for f in frames] == [2, 7]
    assert [decoded_index(f.image, step=6) for f in frames] == [2, 7]
    assert "cut.avi" in caplog.text and "ended early" in caplog.text and "2 of 8" in caplog.text

    cut.write_bytes(data[: int(len(data) * 0.4)])  # the first few frames, none of those sampled
    reason = assert_error(cut, "truncated: the file ends after", lambda p: read_frames(p, num=8)).reason
    assert "of the 40 frames it reports, before the first sampled frame (2)" in reason
    assert check_video(cut) is None  # its first frame decodes

    cut.write_bytes(data[: data.index(b"movi") + 64])  # the header, and no whole frame
    assert_error(cut, "truncated or corrupt: no frame could be decoded", lambda p: read_frames(p, every=1))
    assert check_video(cut) == "truncated or corrupt: no frame could be decoded"


def test_broken_files_raise_video_error_naming_the_file(tmp_path: Path) -> None:
    junk = tmp_path / "random.mp4"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    assert_error(junk, "no video stream that OpenCV/FFMPEG can decode (corrupt, audio-only or unsupported codec)")
    empty = tmp_path / "empty.mp4"
    empty.touch()
    assert_error(empty, "empty file (0 bytes)")
    lfs = tmp_path / "pointer.mp4"
    lfs.write_text(LFS_POINTER)
    assert "git lfs pull" in assert_error(lfs, "Git LFS pointer").reason
    for name in ("audio.mkv", "audio.mp4"):
        assert_error(write_wav(tmp_path / name), "audio-only")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert "supported: .avi, .m4v, .mkv" in assert_error(notes, "not a video file (extension .txt)").reason
    assert_error(tmp_path / "missing.mp4", "file not found")
    assert_error(empty, "empty file", lambda p: read_frames(p, every=1))


def test_check_video(videos: dict[str, Path], tmp_path: Path) -> None:
    assert check_video(videos["mp4"]) is None and check_video(videos["avi"]) is None
    assert check_video(tmp_path / "missing.avi") == "file not found"


class Misreporting:
    """A real capture whose container reports a zero frame rate and ``count`` frames (0: unknown)."""

    def __init__(self, cap: Any, count: int) -> None:
        self.cap, self.count = cap, count

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FPS: 0.0, cv2.CAP_PROP_FRAME_COUNT: float(self.count)}.get(prop, self.cap.get(prop))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cap, name)


@pytest.mark.parametrize("count", [0, -1, 30])
def test_missing_or_wrong_counts_and_fps_fall_back(
    videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, count: int
) -> None:
    real_open = video._open
    monkeypatch.setattr(video, "_open", lambda p: Misreporting(real_open(p), count))
    with caplog.at_level(logging.WARNING, logger="deepfake_lib.core.video"):
        info = probe_video(videos["mp4"])
        frames = read_frames(videos["mp4"], every=4)
    assert info.fps == video.DEFAULT_FPS and info.fps_assumed and "assuming 25.0 fps" in caplog.text
    assert info.frames == (N if count <= 0 else count)  # unknown: counted by grabbing
    assert [f.index for f in frames] == [0, 4, 8, 12, 16]
    assert frames[1].time == pytest.approx(4 / 25)
    assert ("ended early" in caplog.text) == (count > N)


def test_list_and_scan_keep_going_past_bad_files(videos: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    (folder / "sub").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    good_a = folder / "a.mp4"
    good_a.write_bytes(videos["mp4"].read_bytes())
    good_b = folder / "sub" / "b.avi"
    good_b.write_bytes(videos["avi"].read_bytes())
    (folder / "c_empty.mkv").touch()
    (folder / "d_noise.webm").write_bytes(b"\x00\x01" * 500)
    (folder / "sub" / "e_lfs.mov").write_text(LFS_POINTER)
    (folder / "readme.txt").write_text("not a video")
    (folder / ".tmp.mp4").touch()
    (folder / ".hidden" / "x.mp4").touch()
    files = list_video_files(folder)
    assert [p.relative_to(folder).as_posix() for p in files] == [
        "a.mp4",
        "c_empty.mkv",
        "d_noise.webm",
        "sub/b.avi",
        "sub/e_lfs.mov",
    ]
    good, bad = scan_videos([*files, folder / "readme.txt"])
    assert [i.path for i in good] == [good_a, good_b] and all(i.frames == N for i in good)
    reasons = {s.path.name: s.reason for s in bad}
    assert all(isinstance(s, Skipped) for s in bad)
    assert reasons.keys() == {"c_empty.mkv", "d_noise.webm", "e_lfs.mov", "readme.txt"}
    assert "empty file" in reasons["c_empty.mkv"] and "no video stream" in reasons["d_noise.webm"]
    assert "git lfs pull" in reasons["e_lfs.mov"] and "not a video file" in reasons["readme.txt"]
