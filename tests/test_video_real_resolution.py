"""Videos at the sizes users have (720p and 1080p H.264 camera files, ``demo.footage``): faces found on
downscaled frames and mapped back, 32 frames scored by default, every aggregation rule reported and chosen from
the command line, per-rule video thresholds, and the stage timing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepfake_lib.cli.predict import main as predict_main
from deepfake_lib.core.video import probe_video, read_frames
from deepfake_lib.data.faces import DETECT_LONG_SIDE, VIDEO_MIN_FACE, FaceDetector
from deepfake_lib.evaluation.aggregate import FRAME_RULES, VIDEO_SCORES
from deepfake_lib.models.checkpoint import load_checkpoint, save_checkpoint, save_model
from deepfake_lib.predict.predictors import Predictor
from deepfake_lib.predict.timing import time_video
from deepfake_lib.predict.video import VIDEO_FRAMES, predict_video, settings_for
from tests.conftest import FOOTAGE_SECONDS, iou, tiny_model

pytestmark = pytest.mark.slow
FACE = {"margin": 1.3, "size": 32}


@pytest.fixture(scope="module")
def face_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny single-frame model trained (so the checkpoint says) on 32 px face crops."""
    path = save_model(tiny_model(), tmp_path_factory.mktemp("face_model") / "model.pth")
    ckpt = load_checkpoint(path)
    ckpt["faces"] = FACE
    return save_checkpoint(ckpt, path)


@pytest.fixture(scope="module")
def predictor(face_checkpoint: Path) -> Predictor:
    return Predictor.from_checkpoint(face_checkpoint, "cpu")


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(min_face_share=VIDEO_MIN_FACE)


def test_the_footage_is_real_resolution_h264_with_the_face_in_every_frame(footage: dict[int, Path]) -> None:
    for height, path in footage.items():
        info = probe_video(path)
        assert (info.width, info.height) == {720: (1280, 720), 1080: (1920, 1080)}[height]
        assert info.frames == round(FOOTAGE_SECONDS * 25) and info.fps == pytest.approx(25.0)
        faces = FaceDetector().detect_batch([f.image for f in read_frames(path, num=6)])
        assert all(len(f) >= 1 for f in faces), height


def test_faces_are_found_on_downscaled_frames_and_mapped_back(footage: dict[int, Path]) -> None:
    frames = [f.image for f in read_frames(footage[1080], num=3)]
    full = FaceDetector(work_size=None).detect_batch(frames)
    small = FaceDetector().detect_batch(frames)  # at DETECT_LONG_SIDE = 960: half the pixels each way
    assert DETECT_LONG_SIDE == 960
    for a, b, image in zip(full, small, frames, strict=True):
        assert iou(a[0].box, b[0].box) > 0.85  # the same face, in the 1920x1080 frame's pixels
        x1, y1, x2, y2 = b[0].box
        assert 0 <= x1 < x2 <= image.width and 0 <= y1 < y2 <= image.height and x2 - x1 > 150
        eyes = np.asarray(b[0].landmarks[:2])
        assert (eyes[:, 0] > x1).all() and (eyes[:, 0] < x2).all() and (eyes[:, 1] > y1).all()
    with pytest.raises(ValueError, match="work_size"):
        FaceDetector(work_size=8)


def test_video_frames_search_only_faces_of_a_useful_size(footage: dict[int, Path], detector: FaceDetector) -> None:
    frame = read_frames(footage[1080], num=1)[0].image
    assert detector.detect(frame)
    assert detector.mtcnn.min_face_size == 40  # 960 / 24 at the working size
    detector.detect(frame.resize((128, 72), Image.Resampling.BILINEAR))
    assert detector.mtcnn.min_face_size == 20  # never under the detector's own minimum
    with pytest.raises(ValueError, match="min_face_share"):
        FaceDetector(min_face_share=0.7)


def test_a_video_is_scored_on_32_frames_along_one_face_track(
    predictor: Predictor, footage: dict[int, Path], detector: FaceDetector
) -> None:
    assert VIDEO_FRAMES == 32
    result = predict_video(predictor, footage[720], detector=detector, heatmap=False)  # the defaults
    assert len(result.frames) == 32 and {f.track for f in result.frames} == {0}
    assert len(result.clips) == 4  # clips of 8 frames (a single-frame model's video clips)
    boxes = np.asarray([f.box for f in result.frames])
    assert (boxes[:, 2] <= 1280).all() and (boxes[:, 3] <= 720).all() and (boxes[:, 2] - boxes[:, 0] > 100).all()
    assert set(result.scores) == set(VIDEO_SCORES) and result.scores["lstm"] is None
    assert result.aggregate == "frame_mean" and result.probability == result.scores["frame_mean"]
    settings = settings_for(predictor, video_frames=16)
    assert (settings.frames, settings.clips) == (8, 2) and settings_for(predictor, video_frames=3).clips == 1
    with pytest.raises(ValueError, match="video_frames"):
        settings_for(predictor, video_frames=0)


def test_the_timing_splits_a_video_into_its_stages(
    predictor: Predictor, footage: dict[int, Path], detector: FaceDetector
) -> None:
    settings = settings_for(predictor, True, 8)
    t = time_video(predictor, footage[1080], settings, detector, heatmap=False)
    assert t.frames == 8 and (t.width, t.height) == (1920, 1080) and t.duration == pytest.approx(FOOTAGE_SECONDS)
    assert min(t.decode, t.faces, t.model) >= 0 and t.total >= t.decode
    assert t.seconds_per_10s == pytest.approx(t.total / FOOTAGE_SECONDS * 10)
    assert set(t.to_dict()) >= {"decode", "faces", "model", "total", "frames_per_s", "seconds_per_10s"}


def run_predict(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str, str]:
    code = predict_main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_command_line_chooses_frames_and_rule_and_uses_that_rules_threshold(
    face_checkpoint: Path, footage: dict[int, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    ckpt = load_checkpoint(face_checkpoint)
    ckpt["video_threshold"] = 0.42
    ckpt["video_thresholds"] = {"video_frame_mean": 0.42, "video_sbi": 0.61, "video_confident_mean": 0.33}
    weights = save_checkpoint(ckpt, tmp_path / "thresholds.pth")
    base = ["--video", footage[720], "--weights", weights, "--device", "cpu", "--no-heatmap"]
    code, out, err = run_predict(capsys, *base, "--out", tmp_path / "a", "--video-frames", "16",
                                 "--video-aggregate", "sbi")  # fmt: skip
    assert code == 0, err
    payload = json.loads(out)
    assert payload["aggregate"] == "sbi" and payload["probability"] == payload["scores"]["sbi"]
    assert len(payload["frames"]) == 16 and set(payload["scores"]) == set(VIDEO_SCORES)
    assert payload["decision"] == ("FAKE" if payload["scores"]["sbi"] >= 0.61 else "REAL")
    predictor = Predictor.from_checkpoint(weights, "cpu")
    assert predictor.video_threshold_for("sbi") == 0.61 and predictor.video_threshold_for("frame_max") == 0.42
    assert Predictor.from_checkpoint(weights, "cpu", threshold=0.5).video_threshold_for("sbi") == 0.5
    for rule in FRAME_RULES:  # every rule is a valid choice
        assert predict_video(predictor, footage[720], settings_for(predictor, True, 8), heatmap=False,
                             aggregate=rule).aggregate == rule  # fmt: skip
    code, _, err = run_predict(capsys, *base, "--out", tmp_path / "b", "--video-aggregate", "lstm")
    assert code == 2 and "needs a model trained on clips" in err and not (tmp_path / "b" / "timeline.png").exists()
    folder = tmp_path / "folder"
    folder.mkdir()
    shutil.copy(footage[720], folder / "walk.mp4")
    code, out, err = run_predict(capsys, "--input", folder, "--weights", weights, "--device", "cpu", "--no-heatmap",
                                 "--out", tmp_path / "d", "--video-aggregate", "lstm")  # fmt: skip
    assert code == 2 and "--video-aggregate: video aggregate 'lstm' needs a model trained on clips" in err
    assert out == "" and not (tmp_path / "d" / "predictions.csv").exists()  # refused before anything is scored
    with pytest.raises(SystemExit) as usage:
        run_predict(capsys, *base, "--out", tmp_path / "c", "--video-frames", "0")
    assert usage.value.code == 2 and "--video-frames: must be >= 1" in capsys.readouterr().err
