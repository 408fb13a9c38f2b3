"""Video-level evaluation (``deepfake_lib.evaluation.video``): clip and frame scores pooled per video, the five levels'
reports, and the video figures of ``deepfake_lib.report`` (``video_plots``, ``plots``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from deepfake_lib.core.files import is_clip_dir
from deepfake_lib.core.images import clip_frame_files
from deepfake_lib.evaluation.aggregate import VIDEO_SCORES
from deepfake_lib.evaluation.evaluate import predict_split
from deepfake_lib.evaluation.inference import Predictions
from deepfake_lib.evaluation.video import LEVEL_NAMES, LEVELS, VideoEvaluation, evaluate_videos, pool_videos
from deepfake_lib.models.detector import EfficientNetLSTM
from deepfake_lib.predict.predictors import Predictor
from deepfake_lib.predict.video import predict_video, settings_for
from deepfake_lib.report import plots, video_plots
from tests.conftest import tiny_model

T = 4
SIZE = 32
CLIPS = {"frames": T, "clips": 2, "stride": None, "size": SIZE, "faces": None}  # as ``prepared`` cut the videos
VIDEO_COLUMNS = ["video", "label", "clips", "frames", "lstm", "frame_mean", "frame_max", "sbi", "confident_mean"]


@pytest.fixture(scope="module")
def prepared(tiny_video_clips: Path) -> Path:
    """``tiny_video_data`` with its videos cut into clips of 4 frames at 32 px (its splits kept)."""
    return tiny_video_clips


@pytest.fixture(scope="module")
def clip_model() -> EfficientNetLSTM:
    return tiny_model(frames=T)


@pytest.fixture(scope="module")
def split_preds(clip_model: EfficientNetLSTM, prepared: Path) -> Predictions:
    """The prepared test split (8 real + 4 fake images, 3 real + 3 fake videos of 2 clips) as 03 predicts it."""
    return predict_split(clip_model, prepared, "test", batch_size=16, progress=False)


@pytest.fixture(scope="module")
def evaluation(clip_model: EfficientNetLSTM, split_preds: Predictions) -> VideoEvaluation:
    result = evaluate_videos(clip_model, split_preds, 0.5, batch_size=16, progress=False)
    assert result is not None
    return result


def clip_rows(rows: list[tuple[str, int, int, float]]) -> pd.DataFrame:
    """Clip rows ``(video, track, label, probability)``."""
    return pd.DataFrame(
        [{"clip": f"{v}_t{t}_c{i}", "video": v, "track": t, "label": y, "probability": p}
         for i, (v, t, y, p) in enumerate(rows)]
    )  # fmt: skip


def frame_rows(rows: list[tuple[str, int, int, float]]) -> pd.DataFrame:
    """Frame rows ``(video, track, label, probability)``."""
    return pd.DataFrame(
        [{"frame": f"{v}/{i:02d}.png", "clip": v, "label": y, "probability": p, "video": v, "track": t}
         for i, (v, t, y, p) in enumerate(rows)]
    )  # fmt: skip


# --------------------------------------------------------------------------- pool_videos
def test_pool_videos_averages_per_track_then_takes_the_most_suspicious_track() -> None:
    clips = clip_rows([("a", 0, 1, 0.2), ("a", 0, 1, 0.4), ("a", 1, 1, 0.5), ("b", 0, 0, 0.1), ("b", 0, 0, 0.3)])
    frames = frame_rows(
        [("a", 0, 1, 0.1), ("a", 0, 1, 0.3), ("a", 0, 1, 0.5), ("a", 0, 1, 0.7), ("a", 1, 1, 0.2), ("a", 1, 1, 0.2),
         ("b", 0, 0, 0.1), ("b", 0, 0, 0.9), ("b", 0, 0, 0.2)]
    )  # fmt: skip
    videos = pool_videos(clips, frames)
    assert list(videos.columns) == VIDEO_COLUMNS and videos["video"].tolist() == ["a", "b"]
    a, b = videos.to_dict(orient="records")
    assert (a["label"], a["clips"], a["frames"]) == (1, 3, 6) and (b["label"], b["clips"], b["frames"]) == (0, 2, 3)
    assert a["lstm"] == pytest.approx(0.5) and b["lstm"] == pytest.approx(0.2)  # track 1's 0.5 beats track 0's 0.3
    assert a["frame_mean"] == pytest.approx(0.4) and b["frame_mean"] == pytest.approx(0.4)
    assert a["frame_max"] == pytest.approx(0.7) and b["frame_max"] == pytest.approx(0.9)


def test_pool_videos_without_frames_gives_nan_frame_scores() -> None:
    videos = pool_videos(clip_rows([("a", 0, 1, 0.6)]), frame_rows([("other", 0, 1, 0.5)]))
    row = videos.iloc[0]
    assert row["frames"] == 0 and row["lstm"] == pytest.approx(0.6)
    assert math.isnan(row["frame_mean"]) and math.isnan(row["frame_max"])


def test_video_with_clips_of_both_labels_is_an_error() -> None:
    clips = clip_rows([("a", 0, 1, 0.6), ("a", 1, 0, 0.4)])
    with pytest.raises(ValueError, match="both labels"):
        pool_videos(clips, frame_rows([("a", 0, 1, 0.5)]))


# --------------------------------------------------------------------------- evaluate_videos
def test_evaluate_videos_scores_frames_clips_and_videos(evaluation: VideoEvaluation, split_preds: Predictions) -> None:
    clip_paths = sorted(str(p) for p in split_preds.paths if is_clip_dir(p))
    assert len(clip_paths) == 12  # 6 videos x 2 clips; the 12 images are left out
    assert sorted(evaluation.clips["clip"]) == clip_paths
    assert len(evaluation.frames) == T * len(clip_paths)
    assert sorted(evaluation.frames["frame"].map(str)) == sorted(
        str(f) for c in clip_paths for f in clip_frame_files(c)
    )
    assert (evaluation.frames.groupby("clip").size() == T).all()
    videos = evaluation.videos
    assert list(videos.columns) == VIDEO_COLUMNS and len(videos) == 6
    assert sorted(videos["label"]) == [0, 0, 0, 1, 1, 1]
    assert all(Path(v).name.startswith(("real_video", "fake_video")) for v in videos["video"])
    assert (videos["clips"] == 2).all() and (videos["frames"] == 2 * T).all()
    for column in ("lstm", "frame_mean", "frame_max"):
        assert videos[column].between(0, 1).all()
    assert (videos["frame_max"] >= videos["frame_mean"]).all()
    by_video = evaluation.clips.groupby("video")["probability"].mean()
    assert videos.set_index("video")["lstm"].to_dict() == pytest.approx(by_video.to_dict())  # one track per video


def test_evaluation_reports_every_level(evaluation: VideoEvaluation) -> None:
    reports = evaluation.reports()
    assert list(reports) == list(LEVELS)
    assert {k: r["n"] for k, r in reports.items()} == {
        "frame": 48, "clip": 12, "video_lstm": 6, "video_frame_mean": 6, "video_frame_max": 6, "video_sbi": 6,
        "video_confident_mean": 6,
    }  # fmt: skip
    for report in reports.values():
        assert {"n", "auc", "balanced_accuracy", "accuracy", "eer"} <= set(report)
        assert math.isnan(report["auc"]) or 0.0 <= report["auc"] <= 1.0
        assert 0.0 <= report["accuracy"] <= 1.0
    scores = evaluation.level_scores()
    assert {k: len(y) for k, (y, _) in scores.items()} == {k: r["n"] for k, r in reports.items()}
    table = evaluation.table()
    assert table.index.tolist() == [LEVEL_NAMES[k] for k in LEVELS]
    record = evaluation.to_record()
    assert json.loads(json.dumps(record))["levels"].keys() == set(LEVELS)
    assert record["status"] == "done" and record["threshold"] == 0.5 and len(record["videos"]) == 6


def test_video_scores_match_predict_video_on_the_source_videos(
    evaluation: VideoEvaluation, clip_model: EfficientNetLSTM
) -> None:
    """The evaluation's clips (prepared folders) and ``predict_video`` (the file) cut and score the same frames."""
    predictor = Predictor(clip_model, SIZE, 0.5, clips=CLIPS)
    row = evaluation.videos.iloc[0]
    result = predict_video(predictor, row["video"], settings_for(predictor), heatmap=False)  # the prepared cut
    for rule in VIDEO_SCORES:
        assert result.scores[rule] == pytest.approx(row[rule], abs=1e-5), rule


def test_overlapping_clip_windows_count_each_frame_once(clip_model: EfficientNetLSTM, tmp_path: Path) -> None:
    """A 6-frame video cut into 2 clips of 4 overlaps on frames 2 and 3: the frame level and the frame scores of
    the video count each frame once, as ``predict_video`` does."""
    from deepfake_lib.core.video import write_video
    from deepfake_lib.data.clips import ClipSettings
    from deepfake_lib.data.scan import Sample
    from deepfake_lib.evaluation.evaluate import predict_samples
    from deepfake_lib.prepare.clips import prepare_clips

    rng = np.random.default_rng(0)
    for label in ("real", "fake"):
        frames = [rng.integers(0, 256, (40, 40, 3), dtype=np.uint8) for _ in range(6)]
        write_video(tmp_path / "src" / label / "v.mp4", frames, fps=6.0)
    out = prepare_clips(tmp_path / "src", tmp_path / "out", ClipSettings(frames=T, clips=2, size=SIZE), progress=False)
    clips = sorted(p for p in out.out_dir.rglob("*.clip"))
    assert len(clips) == 4
    samples = [Sample(c, int(c.parent.name == "fake")) for c in clips]
    preds = predict_samples(clip_model, samples, progress=False)
    result = evaluate_videos(clip_model, preds, 0.5, progress=False)
    assert len(result.frames) == 12 and len(result.clips) == 4  # 6 distinct frames per video, not 8
    predictor = Predictor(clip_model, SIZE, 0.5, clips={**CLIPS, "size": SIZE})
    for _, row in result.videos.iterrows():
        video = predict_video(predictor, row["video"], settings_for(predictor), heatmap=False)
        assert len(video.frames) == row["frames"] == 6
        assert video.scores["frame_mean"] == pytest.approx(row["frame_mean"], abs=1e-5)
        assert video.scores["lstm"] == pytest.approx(row["lstm"], abs=1e-5)


def test_evaluate_videos_is_none_without_clips(clip_model: EfficientNetLSTM, tiny_video_data: Path) -> None:
    images_only = predict_split(clip_model, tiny_video_data, "test", batch_size=16, progress=False)  # raw: no clip
    assert len(images_only) == 12
    assert evaluate_videos(clip_model, images_only, 0.5, progress=False) is None


# --------------------------------------------------------------------------- figures
def test_video_timeline_draws_frames_per_track_and_clips() -> None:
    frames = [{"time": t / 8, "probability": p, "track": k} for k in (0, 1) for t, p in enumerate((0.2, 0.6, 0.4))]
    clips = [{"start": 0.0, "end": 0.25, "probability": 0.5, "track": 0}, {"start": 0.1, "end": 0.1,
                                                                          "probability": 0.7, "track": 1}]  # fmt: skip
    fig = video_plots.video_timeline(frames, clips, threshold=0.5, probability=0.55, title="t")
    ax = fig.axes[0]
    assert len(ax.lines) >= 2 and ax.get_title() == "t"
    plt.close(fig)
    fig = video_plots.video_timeline(frames[:1])  # one frame, no clips, no video score
    plt.close(fig)


def test_frame_strip_shows_one_frame_per_panel() -> None:
    images = [Image.new("RGB", (16, 16), (40 * i, 0, 0)) for i in range(3)]
    fig = video_plots.frame_strip(images, [0.1, 0.5, 0.9], [0.0, 0.5, 1.0], threshold=0.5)
    assert len([ax for ax in fig.axes if ax.images]) == 3
    plt.close(fig)
    fig = video_plots.frame_strip([], [], [])
    plt.close(fig)


def test_roc_levels_draws_two_class_levels_and_leaves_out_one_class_levels(evaluation: VideoEvaluation) -> None:
    fig = plots.roc_levels(evaluation.level_scores(), LEVEL_NAMES)
    plt.close(fig)
    one_class = {"frame": (np.ones(4, int), np.array([0.1, 0.4, 0.6, 0.9])), "clip": (np.zeros(2, int), [0.2, 0.3])}
    fig = plots.roc_levels(one_class)
    assert fig.axes[0].get_legend() is None or not fig.axes[0].get_legend().get_texts()
    plt.close(fig)
    two = {"frame": ([0, 1, 0, 1], [0.1, 0.9, 0.3, 0.6]), "clip": ([1, 1], [0.5, 0.6])}
    fig = plots.roc_levels(two)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("frame" in t for t in labels) and not any("clip" in t for t in labels)
    plt.close(fig)


def test_clip_strips_show_one_row_per_clip(prepared: Path) -> None:
    clips = {
        name: sorted(p for p in (prepared / "test" / name).iterdir() if is_clip_dir(p))[:2] for name in ("real", "fake")
    }
    fig = plots.clip_strips(clips, max_frames=3)
    assert len([ax for ax in fig.axes if ax.images]) == 4 * 3
    plt.close(fig)
