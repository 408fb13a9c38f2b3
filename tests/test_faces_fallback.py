"""Second looks of ``FaceDetector`` at images its first search found no face in: at full resolution (a face that
scores under the minimum on the downscaled frame) and inside a grey border (a tight face crop)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from deepfake_lib.cli.predict import main as predict_main
from deepfake_lib.core.video import read_frames
from deepfake_lib.data.faces import VIDEO_MIN_FACE, Face, FaceDetector, video_detector
from deepfake_lib.prepare.faces import REPORT_FILE, prepare_faces
from tests.conftest import ASTRONAUT_FACE, iou

DFDC_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "dfdc_video_samples" / "fake" / "abofeumbvv.mp4"
DFDC_FACE = (895.0, 160.0, 1000.0, 300.0)  # x1, y1, x2, y2 of the one face in the 1920x1080 frames (about 105x140)
DFDC_FRAMES = [14, 182, 210, 248, 276]  # frames whose face scores under 0.9 at 960 px (0.75-0.89), over it at 1080p
needs_dfdc = pytest.mark.skipif(not DFDC_VIDEO.is_file(), reason=f"{DFDC_VIDEO} not present")
FIRST_SEARCH_ONLY = {"retry_full_resolution": False, "retry_padded": False}


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(skdata.astronaut())


@pytest.fixture(scope="module")
def tight_crop(astronaut: Image.Image) -> Image.Image:
    """The astronaut's face from the eyebrows to below the mouth, cheek to cheek, at 224x224: the face fills it."""
    return astronaut.crop((195, 90, 255, 160)).resize((224, 224), Image.Resampling.BICUBIC)


def plain(faces: list[Face]) -> list[tuple[Any, ...]]:
    return [(f.box, f.score, f.landmarks) for f in faces]


def assert_inside(face: Face, image: Image.Image) -> None:
    x1, y1, x2, y2 = face.box
    assert 0 <= x1 < x2 <= image.width and 0 <= y1 < y2 <= image.height
    assert face.landmarks is not None
    assert all(0 <= x <= image.width and 0 <= y <= image.height for x, y in face.landmarks)


# --------------------------------------------------------------------------- tight crops: a grey border
def test_a_tight_face_crop_is_found_inside_a_grey_border(tight_crop: Image.Image) -> None:
    assert FaceDetector(**FIRST_SEARCH_ONLY).detect(tight_crop) == []
    assert FaceDetector(retry_padded=False).detect(tight_crop) == []  # switched off
    faces = FaceDetector().detect(tight_crop)
    assert len(faces) == 1 and faces[0].score >= 0.9
    assert_inside(faces[0], tight_crop)
    (lx, ly), (rx, ry), (_, ny), (_, ml), (_, mr) = faces[0].landmarks or ()
    assert lx < rx and max(ly, ry) < ny < min(ml, mr)  # eyes, then the nose, then the mouth
    assert faces[0].area > 0.6 * 224 * 224  # the face fills the crop


def test_a_face_cut_by_the_image_edge_maps_back_to_the_image(astronaut: Image.Image) -> None:
    left, top = 120, 95
    cut = astronaut.crop((left, top, 250, 250))  # the top of the head and the right cheek are cut off
    assert FaceDetector(**FIRST_SEARCH_ONLY).detect(cut) == []
    faces = FaceDetector().detect(cut)
    assert len(faces) == 1
    assert_inside(faces[0], cut)
    x1, y1, x2, y2 = ASTRONAUT_FACE
    expected = (x1 - left, max(0.0, y1 - top), min(float(cut.width), x2 - left), y2 - top)  # clipped to the crop
    assert iou(faces[0].box, expected) > 0.7


def test_no_face_stays_no_face() -> None:
    coffee = Image.fromarray(skdata.coffee())
    grey = Image.new("RGB", (224, 224), (128, 128, 128))
    assert FaceDetector().detect_batch([coffee, grey, Image.new("RGB", (12, 300))]) == [[], [], []]


# --------------------------------------------------------------------------- what is searched, and when
def spy(detector: FaceDetector) -> list[tuple[list[tuple[int, int]], int]]:
    """Record each MTCNN call of ``detector``: the sizes of the images it gets and the smallest face searched."""
    calls: list[tuple[list[tuple[int, int]], int]] = []
    mtcnn = detector.mtcnn
    real = mtcnn.detect

    def detect(images: list[Image.Image], landmarks: bool = False) -> Any:
        calls.append(([im.size for im in images], mtcnn.min_face_size))
        return real(images, landmarks=landmarks)

    mtcnn.detect = detect  # type: ignore[method-assign]
    return calls


def test_only_images_without_a_face_are_searched_again(astronaut: Image.Image) -> None:
    big = astronaut.resize((1536, 1536), Image.Resampling.BICUBIC)  # searched at 960 px: its face is found there
    grey = Image.new("RGB", (1920, 1080), (90, 90, 90))
    images = [big, grey, astronaut, grey]
    detector = FaceDetector(min_face_share=VIDEO_MIN_FACE)
    calls = spy(detector)
    found = detector.detect_batch(images)
    assert [len(f) for f in found] == [1, 0, 1, 0]
    assert calls == [
        ([(960, 960)], 40),  # first search at the working size; faces from 960 / 24 px
        ([(960, 540)] * 2, 40),
        ([(512, 512)], 21),
        ([(1920, 1080)] * 2, 80),  # the faceless frames, together, at full resolution: faces from 40 x 2 px
        ([(683, 484)] * 2, 64),  # and in a grey border, for faces from a quarter of the short side: 135 px at
        # 960x540, shrunk to 64 px (the frame to 455x256, then a 114 px border)
    ]
    first_only = FaceDetector(min_face_share=VIDEO_MIN_FACE, **FIRST_SEARCH_ONLY)
    calls_first = spy(first_only)
    assert [plain(f) for f in first_only.detect_batch(images)] == [plain(f) for f in found]  # the same faces
    assert calls_first == calls[:3]


def test_a_detector_searching_full_resolution_has_no_full_resolution_retry() -> None:
    grey = Image.new("RGB", (1200, 600), (90, 90, 90))
    detector = FaceDetector(work_size=None, retry_padded=False)
    calls = spy(detector)
    assert detector.detect(grey) == []
    assert calls == [([(1200, 600)], 20)]
    assert detector.search == "full resolution" and FaceDetector().search == "downscaled, full resolution, padded"


def test_prepared_crops_look_again_where_a_narrower_search_found_no_face(
    tight_crop: Image.Image, astronaut: Image.Image, tmp_path: Path
) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    tight_crop.save(src / "tight.png")
    astronaut.save(src / "astronaut.png")
    first = prepare_faces(src, out, progress=False, detector=FaceDetector(**FIRST_SEARCH_ONLY))
    assert (first.n_with_face, [s for s, _ in first.no_face]) == (1, ["tight.png"])
    again = prepare_faces(src, out, progress=False)  # the default detector searches more: the miss is redone
    assert (again.n_processed, again.skipped_cached, again.n_with_face, again.no_face) == (1, 1, 2, [])
    assert (out / "tight_face0.png").is_file()
    assert prepare_faces(src, out, progress=False).skipped_cached == 2
    report = json.loads((out / REPORT_FILE).read_text())
    assert report["no_face"] == []


# --------------------------------------------------------------------------- a real 1080p video
@needs_dfdc
def test_a_small_face_in_real_1080p_frames_is_found_at_full_resolution() -> None:
    frames = [f.image for f in read_frames(DFDC_VIDEO, indices=DFDC_FRAMES)]
    assert [im.size for im in frames] == [(1920, 1080)] * len(DFDC_FRAMES)
    downscaled_only = FaceDetector(min_face_share=VIDEO_MIN_FACE, **FIRST_SEARCH_ONLY).detect_batch(frames)
    assert sum(not f for f in downscaled_only) >= 1
    found = video_detector().detect_batch(frames)
    for faces, image in zip(found, frames, strict=True):
        assert len(faces) == 1 and faces[0].score >= 0.9
        assert_inside(faces[0], image)
        assert iou(faces[0].box, DFDC_FACE) > 0.6


@needs_dfdc
@pytest.mark.slow
def test_predict_video_with_faces_scores_the_real_1080p_video(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = ["--video", DFDC_VIDEO, "--weights", tiny_checkpoint, "--out", tmp_path / "out", "--faces"]
    code = predict_main([*map(str, args), "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 0, err
    payload = json.loads(out)
    boxes = [f["box"] for f in payload["frames"]]
    assert len(boxes) >= 8 and all(iou(tuple(b), DFDC_FACE) > 0.5 for b in boxes)
    assert np.isfinite(payload["probability"])
