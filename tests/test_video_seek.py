"""Reading sampled frames by seeking (PyAV, ``core.video_seek``): the plan, frames identical to sequential
decoding on every kind of video the tests make (and the DFDC samples when present), the fallback to reading in
order, and the reader setting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepfake_lib.core import video as video_mod
from deepfake_lib.core import video_seek
from deepfake_lib.core.video import iter_frames, probe_video, read_frames, resolve_reader, sample_indices, write_video
from deepfake_lib.core.video_seek import FrameIndex, SeekError, decoded_frame_count, index_frames, plan_runs

pytestmark = pytest.mark.skipif(not video_seek.pyav_available(), reason="PyAV (av) is not installed")
DFDC = Path(__file__).resolve().parents[2] / "shared" / "data" / "dfdc_video_samples" / "fake"


def frames_of(path: Path, reader: str, **kw) -> list[tuple[int, np.ndarray]]:
    return [(f.index, np.asarray(f.image)) for f in read_frames(path, reader=reader, **kw)]


def assert_same(a: list[tuple[int, np.ndarray]], b: list[tuple[int, np.ndarray]]) -> None:
    assert [i for i, _ in a] == [i for i, _ in b]
    for (i, x), (_, y) in zip(a, b, strict=True):
        assert x.shape == y.shape and np.array_equal(x, y), f"frame {i} differs"


# --------------------------------------------------------------------------- the plan
def test_plan_seeks_only_where_that_decodes_fewer_frames() -> None:
    keys = [0, 50, 100]
    runs = plan_runs([5, 10, 60, 61, 140], keys, seek_cost=12)
    assert runs == [(-1, [5, 10]), (50, [60, 61]), (100, [140])]
    assert decoded_frame_count(runs) == 11 + 12 + 41  # frames 0-10, 50-61, 100-140
    assert decoded_frame_count([(-1, [5, 10, 60, 61, 140])]) == 141  # reading through
    assert plan_runs([5, 10, 60, 61, 140], keys, seek_cost=1000) == [(-1, [5, 10, 60, 61, 140])]
    assert plan_runs([60, 70], [0], seek_cost=0) == [(-1, [60, 70])]  # one keyframe: nothing to seek to
    assert plan_runs([55], keys, seek_cost=12) == [(50, [55])]  # even the first run may start with a seek
    assert plan_runs([], keys) == []


def test_index_lists_frames_by_timestamp_and_the_keyframes(footage: dict[int, Path]) -> None:
    import av

    with av.open(str(footage[720])) as container:
        index = index_frames(container, container.streams.video[0])
    assert isinstance(index, FrameIndex) and index.frames == probe_video(footage[720]).frames == 75
    assert index.pts == sorted(index.pts) and len(set(index.pts)) == 75
    assert index.keyframes == [0, 50]  # a keyframe every 2 s at 25 fps


# --------------------------------------------------------------------------- the same frames as in order
@pytest.mark.parametrize("pattern", [{"num": 8}, {"num": 32}, {"every": 7}, {"indices": [2, 60, 61, 74, 90]}])
def test_seeking_gives_the_frames_of_sequential_decoding_on_real_resolution_footage(
    footage: dict[int, Path], pattern: dict
) -> None:
    for path in footage.values():
        assert_same(frames_of(path, "pyav", **pattern), frames_of(path, "opencv", **pattern))


def test_the_footage_plan_does_seek(footage: dict[int, Path]) -> None:
    """Frames 2 and 60 of a file with keyframes at 0 and 50: the second run starts with a seek to 50."""
    assert plan_runs([2, 60, 61, 74], [0, 50]) == [(-1, [2]), (50, [60, 61, 74])]


def test_seeking_gives_the_frames_of_sequential_decoding_on_small_and_old_formats(
    tiny_video_data: Path, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (64, 96, 3), dtype=np.uint8) for _ in range(40)]
    paths = [write_video(tmp_path / "a.mp4", frames), write_video(tmp_path / "b.avi", frames)]  # MPEG-4 2, MJPG
    paths += sorted(tiny_video_data.rglob("*.mp4"))[:2]  # the demo's camera videos
    for path in paths:
        for pattern in ({"num": 6}, {"every": 3}, {"indices": [0, 39, 1000]}):
            assert_same(frames_of(path, "pyav", **pattern), frames_of(path, "opencv", **pattern))


@pytest.mark.skipif(not DFDC.is_dir(), reason=f"{DFDC} not present")
def test_seeking_gives_the_frames_of_sequential_decoding_on_real_dfdc_footage() -> None:
    for path in sorted(DFDC.glob("*.mp4")):
        n = probe_video(path).frames
        for wanted in (sample_indices(n, num=32), [3, n // 2 + 20, n - 5]):  # the second crosses a keyframe
            assert_same(frames_of(path, "pyav", indices=wanted), frames_of(path, "opencv", indices=wanted))


# --------------------------------------------------------------------------- fallback and settings
def test_a_failed_seek_reads_the_remaining_frames_in_order(footage: dict[int, Path], monkeypatch, caplog) -> None:
    path = footage[720]
    expected = frames_of(path, "opencv", indices=[2, 60, 61, 74])
    real = video_seek._decode_run

    def fail_after_seek(container, stream, where, start, frames):
        if start >= 0:
            raise SeekError(f"a seek to frame {start} landed on frame {start + 3}")
        yield from real(container, stream, where, start, frames)

    monkeypatch.setattr(video_seek, "_decode_run", fail_after_seek)
    with caplog.at_level("INFO", logger="deepfake_lib.core.video"):
        got = frames_of(path, "pyav", indices=[2, 60, 61, 74])
    assert_same(got, expected)
    assert "landed on frame 53; decoding the remaining frames in order" in caplog.text


def test_a_file_pyav_cannot_index_is_read_in_order(footage: dict[int, Path], monkeypatch) -> None:
    def no_index(container, stream):
        raise SeekError("a packet without a presentation timestamp")

    monkeypatch.setattr(video_seek, "index_frames", no_index)
    path = footage[720]
    assert_same(frames_of(path, "pyav", num=5), frames_of(path, "opencv", num=5))


def test_frames_beyond_the_end_keep_the_early_end_warning(footage: dict[int, Path], caplog) -> None:
    path = footage[720]
    info = probe_video(path)
    with caplog.at_level("WARNING", logger="deepfake_lib.core.video"):
        got = list(iter_frames(path, indices=[10, 74, 75, 200], info=info, reader="pyav"))
    assert [f.index for f in got] == [10, 74]
    assert "got 2 of 4 sampled frames" in caplog.text


def test_reader_setting(monkeypatch) -> None:
    monkeypatch.delenv("DEEPFAKE_VIDEO_READER", raising=False)
    assert resolve_reader(None) == "pyav" and resolve_reader("opencv") == "opencv"
    monkeypatch.setenv("DEEPFAKE_VIDEO_READER", "opencv")
    assert resolve_reader(None) == "opencv" and resolve_reader("auto") == "pyav"
    with pytest.raises(ValueError, match="one of auto, pyav, opencv"):
        resolve_reader("ffmpeg")
    monkeypatch.setattr(video_seek, "pyav_available", lambda: False)
    assert resolve_reader("auto") == "opencv"
    with pytest.raises(ValueError, match="pip install av"):
        resolve_reader("pyav")
    assert video_mod.VIDEO_READERS == ("auto", "pyav", "opencv")
