"""Video verdicts (``deepfake_lib.predict.video``): frames and clips of one video and how they are pooled, how a
video is cut for a model, ``predict --video`` and videos in folder mode, the videos of a split, and the frame slider."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from deepfake_lib.cli.predict import main
from deepfake_lib.core.video import write_video
from deepfake_lib.data.clips import ClipSettings
from deepfake_lib.models.checkpoint import load_checkpoint, save_checkpoint, save_model
from deepfake_lib.predict.predictors import Predictor
from deepfake_lib.predict.video import (
    IMAGE_MODEL_FRAMES,
    FrameScore,
    NoClipError,
    VideoBatch,
    VideoPrediction,
    frames_figure,
    most_suspicious,
    pool_tracks,
    predict_video,
    predict_videos,
    settings_for,
    split_videos,
    suspicious_frames_figure,
)
from tests.conftest import ASTRONAUT_FACE, LFS_POINTER, iou, read_csv, tiny_model

PNG = b"\x89PNG\r\n\x1a\n"
CLIPS = {"frames": 4, "clips": 2, "stride": None, "size": 32, "faces": None}  # how the clip model's videos were cut
JSON_KEYS = ["decision", "probability", "heatmap", "frames", "clips", "scores", "aggregate", "timeline", "video"]
VIDEO_INFO = {"frames": 10, "fps": 8.0, "duration": 1.25}  # tiny_video_data's videos


def in_process(capsys: pytest.CaptureFixture, *args: str | Path) -> subprocess.CompletedProcess:
    """``main(args)`` in this process, as a ``CompletedProcess`` of its exit code and output."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out, err)


def assert_one_line_error(result: subprocess.CompletedProcess, match: str = "") -> str:
    """Exit 2, nothing on stdout, exactly one ``error:`` line on stderr containing ``match``; returns the line."""
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert match.lower() in lines[0].lower(), lines[0]
    return lines[0]


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def corrupt_video(path: Path) -> Path:
    """Random bytes with a video extension."""
    return _write(path, np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())


def short_video(path: Path, n_frames: int = 3) -> Path:
    """A readable video with fewer frames than one clip of the clip model."""
    frames = [np.full((48, 48, 3), 40 * i, np.uint8) for i in range(n_frames)]
    return write_video(path, frames, fps=8.0)


def is_png(path: str | Path) -> bool:
    with Image.open(path) as img:
        return img.format == "PNG"


# --------------------------------------------------------------------------- shared setup
@pytest.fixture(scope="module")
def clip_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny clip model (T = 4) whose checkpoint says how its training videos were cut (``CLIPS``)."""
    path = tmp_path_factory.mktemp("clip_ckpt") / "clip.pth"
    save_model(tiny_model(frames=4), path, threshold=0.5, clips=dict(CLIPS))
    return path


@pytest.fixture(scope="module")
def image_predictor(tiny_checkpoint: Path) -> Predictor:
    """A tiny image model (T = 1, no clip settings)."""
    return Predictor.from_checkpoint(tiny_checkpoint, "cpu")


@pytest.fixture(scope="module")
def clip_predictor(clip_checkpoint: Path) -> Predictor:
    return Predictor.from_checkpoint(clip_checkpoint, "cpu")


@pytest.fixture(scope="module")
def video(tiny_video_data: Path) -> Path:
    return tiny_video_data / "test" / "fake" / "fake_video_000.mp4"


@pytest.fixture(scope="module")
def clip_result(clip_predictor: Predictor, video: Path) -> VideoPrediction:
    return predict_video(clip_predictor, video, settings_for(clip_predictor))  # the checkpoint's cut: 2 clips of 4


@pytest.fixture(scope="module")
def bad_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad_videos")
    return {"corrupt": corrupt_video(folder / "corrupt.mp4"), "short": short_video(folder / "short.mp4")}


def hand_made(probabilities: list[float], tracks: list[int] | None = None) -> VideoPrediction:
    """A ``VideoPrediction`` with the given frame probabilities (one frame per 0.1 s)."""
    tracks = tracks or [0] * len(probabilities)
    frames = [FrameScore(i, i / 10, p, None, t, 0) for i, (p, t) in enumerate(zip(probabilities, tracks, strict=True))]
    return VideoPrediction(
        path="v.mp4", probability=max(probabilities), decision="FAKE", threshold=0.5, aggregate="frame_mean",
        scores={"lstm": None, "frame_mean": 0.0, "frame_max": max(probabilities)}, frames=frames, clips=[],
    )  # fmt: skip


# --------------------------------------------------------------------------- predict_video
def test_image_model_scores_a_video_by_its_mean_frame_score(image_predictor: Predictor, video: Path) -> None:
    result = predict_video(image_predictor, video, settings_for(image_predictor), heatmap=False)
    probs = [f.probability for f in result.frames]
    assert result.aggregate == "frame_mean" and result.scores["lstm"] is None
    # 10 frames, clips of 8: two overlapping clips cover every frame, and each frame is listed once
    assert [f.index for f in result.frames] == list(range(10)) and len(result.clips) == 2
    assert result.probability == result.scores["frame_mean"] == pytest.approx(np.mean(probs))
    assert result.scores["frame_max"] == max(probs)
    assert result.decision == ("FAKE" if result.probability >= 0.5 else "REAL")
    assert result.top is not None and result.top.heatmap is None
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["scores"]["lstm"] is None and payload["aggregate"] == "frame_mean"
    assert payload["heatmap"] is None and payload["timeline"] is None


def test_clip_model_scores_a_video_by_its_lstm_clip_scores(clip_result: VideoPrediction) -> None:
    r = clip_result
    assert r.aggregate == "lstm" and r.info == VIDEO_INFO
    assert len(r.clips) == 2 and len(r.frames) == 8 and len(r.crops) == 8
    times = [f.time for f in r.frames]
    assert times == pytest.approx([f.index / VIDEO_INFO["fps"] for f in r.frames])
    assert all(a < b for a, b in zip(times, times[1:], strict=False))
    assert [f.clip for f in r.frames] == [0] * 4 + [1] * 4 and {f.track for f in r.frames} == {0}
    assert all(0.0 <= f.probability <= 1.0 for f in r.frames)
    for k, clip in enumerate(r.clips):
        own = [f for f in r.frames if f.clip == k]
        assert clip["start"] == own[0].time and clip["end"] == own[-1].time
        assert 0.0 <= clip["probability"] <= 1.0
    assert r.scores["lstm"] == pytest.approx(np.mean([c["probability"] for c in r.clips]))  # one track
    assert r.probability == r.scores["lstm"]
    assert r.scores["frame_max"] >= r.scores["frame_mean"]
    assert r.scores["frame_max"] == max(f.probability for f in r.frames)
    top = int(np.argmax([f.probability for f in r.frames]))
    assert r.top_frame is r.frames[top]
    assert r.top is not None and r.top.probability == pytest.approx(r.frames[top].probability, abs=1e-6)
    assert r.top.heatmap is not None and r.top.heatmap.shape == r.crops[top].size[::-1] == (32, 32)


def test_predicting_a_video_twice_gives_the_same_result(
    clip_predictor: Predictor, video: Path, clip_result: VideoPrediction
) -> None:
    again = predict_video(clip_predictor, video, settings_for(clip_predictor))
    assert again.to_dict() == clip_result.to_dict()
    assert again.scores == clip_result.scores
    assert np.array_equal(again.top.heatmap, clip_result.top.heatmap)


def test_video_decision_uses_the_checkpoint_video_threshold_unless_one_is_given(
    clip_checkpoint: Path, video: Path, tmp_path: Path
) -> None:
    ckpt = load_checkpoint(clip_checkpoint)
    ckpt.update(threshold=1.0, video_threshold=0.0)  # images: never FAKE; videos: always FAKE
    weights = save_checkpoint(ckpt, tmp_path / "video_threshold.pth")
    stored = predict_video(Predictor.from_checkpoint(weights, "cpu"), video, heatmap=False)
    assert stored.threshold == 0.0 and stored.decision == "FAKE"
    given = predict_video(Predictor.from_checkpoint(weights, "cpu", threshold=1.0), video, heatmap=False)
    assert given.threshold == 1.0 and given.decision == "REAL" and given.probability == stored.probability


def test_pool_tracks_averages_each_track_then_takes_the_most_suspicious() -> None:
    assert pool_tracks([0, 0, 1], [0.2, 0.4, 0.35]) == pytest.approx(0.35)
    assert pool_tracks([0, 0, 1, 1], [0.9, 0.1, 0.6, 0.6]) == pytest.approx(0.6)  # not the single highest score
    assert pool_tracks([3, 3, 3], [0.1, 0.2, 0.6]) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        pool_tracks([0, 1], [0.5])


def test_most_suspicious_lists_frames_highest_first_and_ties_in_time_order() -> None:
    result = hand_made([0.2, 0.9, 0.5, 0.9])
    assert most_suspicious(result, 3) == [1, 3, 2]
    assert most_suspicious(result, 10) == [1, 3, 2, 0]
    assert most_suspicious(result, 1) == [result.frames.index(result.top_frame)]


def test_frame_figures_show_the_sampled_and_the_most_suspicious_frames(
    clip_predictor: Predictor, clip_result: VideoPrediction
) -> None:
    fig = frames_figure(clip_result, max_frames=5)
    assert len([ax for ax in fig.axes if ax.images]) == 5
    plt.close(fig)
    fig = suspicious_frames_figure(clip_predictor, clip_result, n=2)
    assert len([ax for ax in fig.axes if ax.images]) == 2
    plt.close(fig)


# --------------------------------------------------------------------------- settings_for
def test_settings_follow_the_checkpoint_clip_settings(clip_predictor: Predictor) -> None:
    assert settings_for(clip_predictor) == ClipSettings(**CLIPS)
    assert settings_for(clip_predictor, faces=False) == ClipSettings(**CLIPS)
    on = settings_for(clip_predictor, faces=True)
    assert (on.frames, on.clips, on.stride, on.size) == (4, 2, None, 32)
    assert on.faces == {"margin": clip_predictor.face_margin, "keep": "largest", "min_score": 0.9}


def test_settings_for_an_image_model_are_the_defaults_at_its_input_size(image_predictor: Predictor) -> None:
    settings = settings_for(image_predictor)
    assert (
        settings == ClipSettings(frames=IMAGE_MODEL_FRAMES, size=image_predictor.image_size) and settings.faces is None
    )
    assert settings.size == 32
    assert settings_for(image_predictor, faces=True).faces == {"margin": 1.3, "keep": "largest", "min_score": 0.9}


def test_face_trained_models_follow_faces_unless_told_not_to(image_predictor: Predictor) -> None:
    face_model = Predictor(image_predictor.model, 32, faces={"margin": 1.5, "size": 32})
    assert settings_for(face_model).faces == {"margin": 1.5, "keep": "largest", "min_score": 0.9}
    assert settings_for(face_model, faces=False).faces is None
    stored = {**CLIPS, "faces": {"margin": 1.2, "keep": "all", "min_score": 0.8}, "format": 1}
    clip_faces = Predictor(image_predictor.model, 32, clips=stored)
    assert settings_for(clip_faces).faces == stored["faces"]  # the checkpoint's own face settings, kept
    assert settings_for(clip_faces, faces=True).faces == stored["faces"]
    off = settings_for(clip_faces, faces=False)
    assert off.faces is None and (off.frames, off.size) == (4, 32)


# --------------------------------------------------------------------------- predict --video
def test_video_cli_prints_the_verdict_and_writes_heatmap_and_timeline(
    clip_checkpoint: Path, video: Path, clip_result: VideoPrediction, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    result = in_process(capsys, "--video", video, "--weights", clip_checkpoint, "--out", out, "--device", "cpu",
                        "--video-frames", "8")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1 and "error" not in result.stderr
    payload = json.loads(result.stdout)
    assert list(payload) == JSON_KEYS
    assert payload["decision"] == ("FAKE" if payload["probability"] >= 0.5 else "REAL")
    assert payload["probability"] == round(clip_result.probability, 4)
    assert payload["aggregate"] == "lstm" and payload["video"] == VIDEO_INFO
    assert len(payload["frames"]) == 8 and len(payload["clips"]) == 2
    for frame in payload["frames"]:
        assert list(frame) == ["time", "probability", "box", "track"]
        assert isinstance(frame["time"], float) and 0.0 <= frame["probability"] <= 1.0
        assert frame["box"] is None and frame["track"] == 0
    for clip in payload["clips"]:
        assert set(clip) == {"track", "clip", "start", "end", "probability"} and clip["start"] <= clip["end"]
    assert set(payload["scores"]) == {"lstm", "frame_mean", "frame_max", "sbi", "confident_mean"}
    assert all(isinstance(v, float) for v in payload["scores"].values())
    assert payload["heatmap"] == str(out / "gradcam.png") and is_png(payload["heatmap"])
    assert payload["timeline"] == str(out / "timeline.png") and is_png(payload["timeline"])


def test_video_cli_without_heatmap_still_writes_the_timeline(
    clip_checkpoint: Path, video: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    args = ["--video", video, "--weights", clip_checkpoint, "--out", out, "--device", "cpu", "--no-heatmap"]
    result = in_process(capsys, *args)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["heatmap"] is None and not (out / "gradcam.png").exists()
    assert payload["timeline"] == str(out / "timeline.png") and is_png(out / "timeline.png")


UNREADABLE = {  # case: (file name, how to make it from a good video, what the error says)
    "corrupt": ("clip.mp4", lambda p, good: corrupt_video(p), "corrupt"),
    "truncated": ("clip.mp4", lambda p, good: _write(p, good.read_bytes()[: good.stat().st_size // 2]), "corrupt"),
    "empty": ("clip.mp4", lambda p, good: _write(p, b""), "empty file"),
    "lfs pointer": ("clip.mp4", lambda p, good: _write(p, LFS_POINTER), "git lfs pull"),
    "missing": ("clip.mp4", lambda p, good: p, "not found"),
    "image": ("frame.jpg", lambda p, good: _write(p, b"\xff\xd8\xff\xe0" + b"\x00" * 50), "not a video file"),
}


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_unreadable_video_fails_with_one_line_before_the_model_is_loaded(
    case: str, video: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    name, make, match = UNREADABLE[case]
    path = make(tmp_path / "in" / name, video)
    out = tmp_path / "out"
    missing = tmp_path / "no_such_weights.pth"  # loading the model first would fail on this instead
    line = assert_one_line_error(in_process(capsys, "--video", path, "--weights", missing, "--out", out), match)
    assert str(path) in line and str(missing) not in line
    assert not out.exists()


def test_video_shorter_than_one_clip_fails_with_one_line(
    clip_checkpoint: Path, bad_videos: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = bad_videos["short"]
    args = ["--video", path, "--weights", clip_checkpoint, "--out", tmp_path / "out", "--device", "cpu"]
    line = assert_one_line_error(in_process(capsys, *args), "too short")
    assert str(path) in line


def test_folder_given_to_video_fails_with_one_line(
    clip_checkpoint: Path, tiny_video_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    folder = tiny_video_data / "test" / "fake"
    args = ["--video", folder, "--weights", clip_checkpoint, "--out", tmp_path / "out"]
    line = assert_one_line_error(in_process(capsys, *args), "--input")
    assert str(folder) in line


@pytest.mark.parametrize("runtime", [["--runtime", "onnx"], []])
def test_video_with_the_onnx_runtime_fails_with_one_line(
    runtime: list[str], clip_checkpoint: Path, video: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    weights = clip_checkpoint if runtime else tmp_path / "model.onnx"  # a .onnx file picks onnx by itself
    args = ["--video", video, "--weights", weights, "--out", tmp_path / "out", *runtime]
    assert "--runtime torch" in assert_one_line_error(in_process(capsys, *args), "pytorch")


def test_video_truncated_mid_stream_fails_with_only_the_error_line_on_stderr(
    clip_checkpoint: Path, tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    rng = np.random.default_rng(0)
    full = write_video(tmp_path / "full.avi", [rng.integers(0, 256, (48, 48, 3), dtype=np.uint8) for _ in range(10)])
    path = _write(tmp_path / "cut.avi", full.read_bytes()[: int(full.stat().st_size * 0.3)])  # probes, decodes badly
    code = main(
        ["--video", str(path), "--weights", str(clip_checkpoint), "--out", str(tmp_path / "o"), "--device", "cpu"]
    )
    out, err = capfd.readouterr()
    assert code == 2 and f"error: {path}: no clip: truncated" in err
    assert_one_line_error(subprocess.CompletedProcess([], code, out, err), "truncated")


def faceless_video(path: Path) -> Path:
    """10 flat grey frames: no face anywhere."""
    return write_video(path, [np.full((48, 48, 3), 128, np.uint8)] * 10, fps=8.0)


def test_video_cli_detects_faces_with_the_checkpoint_min_score(
    clip_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    ckpt = load_checkpoint(clip_checkpoint)
    ckpt["clips"] = {**CLIPS, "faces": {"margin": 1.3, "keep": "largest", "min_score": 0.5}}
    weights = save_checkpoint(ckpt, tmp_path / "faces.pth")
    path = faceless_video(tmp_path / "grey.mp4")
    with pytest.raises(NoClipError, match="min score 0.50"):  # the library cuts as the training data was cut
        predict_video(Predictor.from_checkpoint(weights, "cpu"), path)
    args = ["--video", path, "--weights", weights, "--out", tmp_path / "out", "--device", "cpu"]
    line = assert_one_line_error(in_process(capsys, *args), "no face found")
    assert "min score 0.50" in line, line


def test_face_margin_without_faces_is_a_usage_error_for_a_whole_frame_video_model(
    clip_checkpoint: Path, video: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = ["--weights", clip_checkpoint, "--out", tmp_path / "out", "--device", "cpu", "--face-margin", "1.5"]
    image = tmp_path / "frame.png"
    Image.new("RGB", (32, 32)).save(image)
    assert_one_line_error(in_process(capsys, "--frame", image, *args), "--face-margin")
    assert_one_line_error(in_process(capsys, "--video", video, *args, "--no-heatmap"), "--face-margin")


# --------------------------------------------------------------------------- folder mode
@pytest.fixture
def media_folder(tiny_video_data: Path, tmp_path: Path) -> Path:
    """Two images, two videos (one in a subfolder) and a corrupt video."""
    folder = tmp_path / "in"
    test = tiny_video_data / "test"
    for rel, src in (
        ("a.jpg", "real/real_0000.jpg"),
        ("sub/b.jpg", "fake/fake_0000.jpg"),
        ("real_clip.mp4", "real/real_video_000.mp4"),
        ("sub/fake_clip.mp4", "fake/fake_video_000.mp4"),
    ):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(test / src, folder / rel)
    corrupt_video(folder / "broken.mp4")
    return folder


def test_folder_mode_scores_images_and_videos_and_lists_the_bad_video(
    clip_checkpoint: Path,
    clip_result: VideoPrediction,
    media_folder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    out = tmp_path / "out"
    args = ["--input", media_folder, "--weights", clip_checkpoint, "--out", out, "--device", "cpu"]
    result = in_process(
        capsys, *args, "--num-workers", "0", "--no-progress", "--batch-size", "4", "--video-frames", "8"
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["scored"] == 4 and summary["bad"] == 1 and summary["fake"] + summary["real"] == 4
    assert result.stderr.strip() == f"warning: 1 file(s) could not be scored; see {out / 'predictions.csv'}"
    rows = {str(Path(r["path"]).relative_to(media_folder)): r for r in read_csv(out / "predictions.csv")}
    assert set(rows) == {"a.jpg", "sub/b.jpg", "real_clip.mp4", "sub/fake_clip.mp4", "broken.mp4"}
    for name in ("a.jpg", "sub/b.jpg", "real_clip.mp4", "sub/fake_clip.mp4"):
        row = rows[name]
        assert 0.0 <= float(row["probability"]) <= 1.0 and row["error"] == ""
        assert row["decision"] == ("FAKE" if float(row["probability"]) >= 0.5 else "REAL")
    for name, stem in (("real_clip.mp4", "real_clip"), ("sub/fake_clip.mp4", "fake_clip")):
        assert rows[name]["heatmap"] == str(out / "heatmaps" / stem / "gradcam.png")
        assert is_png(rows[name]["heatmap"]) and is_png(out / "heatmaps" / stem / "timeline.png")
    assert rows["a.jpg"]["heatmap"] == str(out / "heatmaps" / "a_gradcam.png")
    # the same verdict as predict_video on the same file
    assert float(rows["sub/fake_clip.mp4"]["probability"]) == pytest.approx(clip_result.probability, abs=1e-6)
    broken = rows["broken.mp4"]
    assert broken["probability"] == broken["decision"] == broken["heatmap"] == ""
    assert "corrupt" in broken["error"] and "\n" not in broken["error"]


# --------------------------------------------------------------------------- the videos of a split
@pytest.fixture(scope="module")
def prepared(tiny_video_clips: Path) -> Path:
    """``tiny_video_data`` with its videos cut into clips of 4 frames at 32 px (its splits kept)."""
    return tiny_video_clips


def test_split_videos_finds_each_source_video_once_with_its_label(tiny_video_data: Path, prepared: Path) -> None:
    expected = sorted(
        (tiny_video_data / "test" / name / f"{name}_video_{i:03d}.mp4", int(name == "fake"))
        for name in ("real", "fake")
        for i in range(3)
    )
    assert split_videos(prepared, "test") == expected  # from the clip folders' clip.json, 2 clips per video
    assert split_videos(tiny_video_data, "test") == expected  # the video files themselves
    assert split_videos(prepared, "no_such_split") == []


# --------------------------------------------------------------------------- several videos
def test_predict_videos_goes_on_past_bad_videos(
    clip_predictor: Predictor, tiny_video_data: Path, bad_videos: dict[str, Path], clip_result: VideoPrediction
) -> None:
    fake = tiny_video_data / "test" / "fake" / "fake_video_000.mp4"
    real = tiny_video_data / "test" / "real" / "real_video_000.mp4"
    videos = [(fake, 1), (bad_videos["corrupt"], 0), (bad_videos["short"], 1), (real, 0)]
    batch = predict_videos(clip_predictor, videos, progress=False, video_frames=None)  # the checkpoint's cut
    assert batch and [r.path for r in batch.results] == [str(fake), str(real)] and batch.labels == [1, 0]
    errors = dict(batch.errors)
    assert list(errors) == [str(bad_videos["corrupt"]), str(bad_videos["short"])]
    assert "corrupt" in errors[str(bad_videos["corrupt"])] and "too short" in errors[str(bad_videos["short"])]
    assert batch.results[0].to_dict() == clip_result.to_dict()
    table = batch.table()
    assert list(table.columns) == [
        "video", "label", "decision", "probability", "lstm", "frame_mean", "frame_max", "sbi", "confident_mean",
        "frames", "clips",
    ]  # fmt: skip
    assert table["video"].tolist() == [fake.name, real.name] and table["label"].tolist() == ["fake", "real"]
    assert table["frames"].tolist() == [8, 8] and table["clips"].tolist() == [2, 2]
    assert batch.focus() is batch.results[0]  # the only FAKE-labelled video
    record = json.loads(json.dumps(batch.record()))
    assert len(record["videos"]) == 2
    assert record["errors"][0] == {"path": str(bad_videos["corrupt"]), "reason": errors[str(bad_videos["corrupt"])]}
    assert not VideoBatch([], [], [("x.mp4", "empty file (0 bytes)")])


def test_focus_is_the_most_suspicious_fake_else_the_most_suspicious() -> None:
    low, high, mid = hand_made([0.2]), hand_made([0.9]), hand_made([0.6])
    assert VideoBatch([low, high, mid], [1, 0, 1], []).focus() is mid
    assert VideoBatch([low, high, mid], [0, 0, -1], []).focus() is high
    assert VideoBatch([low, high], [-1, -1], []).table()["label"].tolist() == ["?", "?"]


# --------------------------------------------------------------------------- the frame slider
def test_frame_slider_shows_each_frame_with_its_time_and_probability(clip_result: VideoPrediction) -> None:
    from deepfake_lib.ui.widgets import FrameSlider

    slider = FrameSlider(clip_result)
    assert slider.slider.min == 0 and slider.slider.max == len(clip_result.frames) - 1
    assert slider.slider.value == 0 and bytes(slider.image.value).startswith(PNG)
    first = slider.image.value
    slider.show(3)
    frame = clip_result.frames[3]
    assert slider.slider.value == 3
    assert f"{frame.probability:.3f}" in slider.info.value and f"t = {frame.time:.2f} s" in slider.info.value
    assert f"frame {frame.index}" in slider.info.value and bytes(slider.image.value).startswith(PNG)
    assert slider.image.value != first
    slider.slider.value = 6  # as when dragged in a browser
    frame = clip_result.frames[6]
    assert f"{frame.probability:.3f}" in slider.info.value and f"t = {frame.time:.2f} s" in slider.info.value
    with pytest.raises(ValueError, match="no frames"):
        FrameSlider(replace(hand_made([0.5]), frames=[]))


# --------------------------------------------------------------------------- face tracks
def test_face_tracks_give_boxes_on_the_face(image_predictor: Predictor, tmp_path: Path) -> None:
    """A 12-frame 128 px pan over the astronaut, scored along its face track (MTCNN on CPU)."""
    from deepfake_lib.demo.photos import photo_paths
    from deepfake_lib.demo.videos import ASTRONAUT_KEEP_BOX, camera_path, real_video, render_path

    photo = np.asarray(Image.open(photo_paths()["astronaut"]).convert("RGB"))
    size, n = 128, 12
    frames = real_video(photo, n, size, np.random.default_rng(0))
    windows = camera_path(512, 512, n, np.random.default_rng(0), ASTRONAUT_KEEP_BOX)  # the path real_video took
    assert np.array_equal(np.stack(frames), np.stack(render_path(photo, windows, size)))
    path = write_video(tmp_path / "astronaut.mp4", frames, fps=8.0)
    settings = settings_for(image_predictor, faces=True)
    result = predict_video(image_predictor, path, settings, heatmap=False)
    assert len(result.frames) == 12 and len({f.track for f in result.frames}) == 1  # all 12, each once
    for f in result.frames:
        assert f.box is not None and len(f.box) == 4 and all(isinstance(v, float) for v in f.box)
        x1, y1, x2, _ = windows[f.index]
        scale = size / (x2 - x1)
        face = tuple((v - o) * scale for v, o in zip(ASTRONAUT_FACE, (x1, y1, x1, y1), strict=True))
        assert iou(tuple(f.box), face) > 0.6, (f.index, f.box, face)
