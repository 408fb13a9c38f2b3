"""Face detection, square crops and the cached face-crop preparation (``deepfake_lib.data.faces``)."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from deepfake_lib.cli.faces import main
from deepfake_lib.core.images import VIDEO_HINT
from deepfake_lib.data.faces import Face, FaceDetector, crop_face, no_face_reason, square_box
from deepfake_lib.prepare.faces import CONFIG_FILE, MANIFEST_COLUMNS, FacePrepError, prepare_faces
from tests.conftest import ASTRONAUT_FACE, iou

LFS_POINTER = b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64 + b"\nsize 12345\n"
NO_FACE = no_face_reason(0.9)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(device="cpu", min_score=0.9)


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(skdata.astronaut())


@pytest.fixture(scope="module")
def coffee() -> Image.Image:
    return Image.fromarray(skdata.coffee())


@pytest.fixture(scope="module")
def two_faces(astronaut: Image.Image) -> Image.Image:
    """512x256: two half-size astronauts side by side (faces about 45 px wide)."""
    canvas = Image.new("RGB", (512, 256))
    small = astronaut.resize((256, 256), Image.Resampling.BICUBIC)
    canvas.paste(small, (0, 0))
    canvas.paste(small.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (256, 0))
    return canvas


# --------------------------------------------------------------------------- detection
def test_detects_the_astronaut_face_with_plain_floats(detector: FaceDetector, astronaut: Image.Image) -> None:
    faces = detector.detect(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert iou(face.box, ASTRONAUT_FACE) > 0.6
    assert type(face.score) is float and face.score >= 0.9
    assert all(type(v) is float for v in face.box)
    json.dumps(dataclasses.asdict(face))  # plain Python values all the way down
    assert face.landmarks is not None and len(face.landmarks) == 5
    x1, y1, x2, y2 = face.box
    assert all(x1 <= x <= x2 and y1 <= y <= y2 and type(x) is float for x, y in face.landmarks)
    (lx, ly), (rx, ry), (_, ny), (_, ml), (_, mr) = face.landmarks
    assert lx < rx and max(ly, ry) < ny < min(ml, mr)  # eyes, then the nose, then the mouth
    with pytest.raises(dataclasses.FrozenInstanceError):
        face.score = 0.0  # type: ignore[misc]


def test_grayscale_image_still_finds_the_face(detector: FaceDetector, astronaut: Image.Image) -> None:
    faces = detector.detect(astronaut.convert("L"))
    assert len(faces) == 1 and iou(faces[0].box, ASTRONAUT_FACE) > 0.6


def test_no_face_and_tiny_images_give_no_faces(detector: FaceDetector, coffee: Image.Image) -> None:
    assert detector.detect(coffee) == []
    assert detector.detect(Image.new("RGB", (128, 128), (128, 128, 128))) == []
    for size in [(8, 8), (1, 1), (19, 300), (300, 5)]:
        assert detector.detect(Image.new("RGB", size, (90, 60, 30))) == [], size
    assert detector.detect(Image.new("L", (8, 8), 100)) == []


def test_several_faces_largest_first(detector: FaceDetector, two_faces: Image.Image) -> None:
    faces = detector.detect(two_faces)
    assert len(faces) == 2
    areas = [(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in faces]
    assert areas == sorted(areas, reverse=True)
    assert sorted(f.box[0] < 256 for f in faces) == [False, True]  # one face in each half


def test_detect_batch_matches_one_at_a_time(detector: FaceDetector, astronaut: Image.Image) -> None:
    flipped = astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    grey = Image.new("RGB", astronaut.size, (128, 128, 128))
    images = [astronaut, grey, Image.new("RGB", (6, 6)), flipped, astronaut.convert("L")]
    batched = detector.detect_batch(images, batch_size=2)
    assert [len(f) for f in batched] == [1, 0, 0, 1, 1]
    for img, faces in zip(images, batched, strict=True):
        single = detector.detect(img)
        assert len(single) == len(faces)
        for a, b in zip(single, faces, strict=True):
            assert np.allclose(a.box, b.box, atol=0.5) and abs(a.score - b.score) < 1e-4


# --------------------------------------------------------------------------- square boxes and crops
@pytest.mark.parametrize(
    ("box", "margin", "size", "expected"),
    [
        ((40, 40, 60, 60), 2.0, (100, 100), (30, 30, 70, 70)),  # centred, side = margin * box side
        ((40, 30, 60, 70), 1.0, (100, 100), (30, 30, 70, 70)),  # side from the longer box side
        ((0, 0, 20, 20), 2.0, (100, 100), (0, 0, 40, 40)),  # shifted right/down at the top-left corner
        ((85, 90, 100, 100), 2.0, (100, 100), (70, 70, 100, 100)),  # shifted left/up at the bottom-right
        ((10, 10, 90, 50), 2.0, (100, 60), (20, 0, 80, 60)),  # too big: shrunk to the short side
        ((0, 0, 200, 200), 1.3, (120, 80), (40, 0, 120, 80)),  # box larger than the image: shrunk and shifted
    ],
)
def test_square_box(box, margin, size, expected) -> None:
    assert square_box(box, margin, *size) == expected


def test_square_box_is_square_inside_and_contains_the_box() -> None:
    rng = np.random.default_rng(0)
    for _ in range(500):
        width, height = (int(v) for v in rng.integers(8, 400, 2))
        x1, x2 = sorted(rng.uniform(0, width, 2))
        y1, y2 = sorted(rng.uniform(0, height, 2))
        margin = float(rng.uniform(1.0, 2.5))
        left, top, right, bottom = out = square_box((x1, y1, x2, y2), margin, width, height)
        assert all(type(v) is int for v in out)
        side = right - left
        assert side == bottom - top >= 1
        assert min(left, top) >= 0 and right <= width and bottom <= height
        wanted = round(margin * max(x2 - x1, y2 - y1))
        assert side == max(1, min(wanted, width, height))
        if wanted + 2 <= min(width, height):  # not shrunk: the face box is inside (to within rounding)
            assert left <= x1 + 1 and top <= y1 + 1 and right >= x2 - 1 and bottom >= y2 - 1


def test_crop_lands_on_the_face(detector: FaceDetector, astronaut: Image.Image) -> None:
    face = detector.detect(astronaut)[0]
    box = square_box(face.box, 1.3, *astronaut.size)
    left, top, right, bottom = box
    assert left <= face.box[0] and top <= face.box[1] and right >= face.box[2] and bottom >= face.box[3]
    centre = ((left + right) / 2, (top + bottom) / 2)
    true_centre = ((ASTRONAUT_FACE[0] + ASTRONAUT_FACE[2]) / 2, (ASTRONAUT_FACE[1] + ASTRONAUT_FACE[3]) / 2)
    assert np.hypot(centre[0] - true_centre[0], centre[1] - true_centre[1]) < 10
    assert right - left == round(1.3 * max(face.box[2] - face.box[0], face.box[3] - face.box[1]))

    crop = crop_face(astronaut, face, margin=1.3, size=96)
    assert crop.size == (96, 96) and crop.mode == "RGB"
    again = detector.detect(crop)  # the crop is a face picture
    assert len(again) == 1 and iou(again[0].box, (0, 0, 96, 96)) > 0.3

    native = crop_face(astronaut.convert("L"), face, margin=1.3, size=None)
    assert native.size == (right - left, bottom - top) and native.mode == "RGB"
    expected = np.asarray(astronaut.convert("L"))[top:bottom, left:right]
    assert np.array_equal(np.asarray(native)[..., 0], expected)  # the image's own pixels, nothing resampled


# --------------------------------------------------------------------------- prepare_faces
def _save(img: Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def read_manifest(out: Path) -> list[dict[str, str]]:
    with open(out / "faces_manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def split_src(tmp_path: Path, astronaut: Image.Image, coffee: Image.Image) -> Path:
    """``<split>/{real,fake}``: two face images (256 px astronauts), one without a face, three unreadable files."""
    src = tmp_path / "src"
    small = astronaut.resize((256, 256), Image.Resampling.BICUBIC)
    _save(small, src / "train" / "real" / "astro.jpg")
    _save(small.convert("L"), src / "train" / "fake" / "gray.png")
    _save(coffee.resize((200, 150)), src / "val" / "real" / "coffee.jpg")
    _write(src / "val" / "fake" / "empty.jpg", b"")
    _write(src / "val" / "fake" / "lfs.png", LFS_POINTER)
    _write(src / "val" / "fake" / "corrupt.jpg", b"\xff\xd8\xff\xe0garbage" * 10)
    _write(src / "val" / "notes.txt", b"not an image")
    return src


def test_prepare_faces_split_layout(split_src: Path, tmp_path: Path, detector: FaceDetector) -> None:
    out = tmp_path / "faces"
    result = prepare_faces(split_src, out, size=64, detector=detector, progress=False)
    assert (result.n_sources, result.n_with_face, result.n_crops, result.skipped_cached) == (6, 2, 2, 0)
    assert result.no_face == [("val/real/coffee.jpg", NO_FACE)]
    reasons = dict(result.unreadable)
    assert set(reasons) == {"val/fake/empty.jpg", "val/fake/lfs.png", "val/fake/corrupt.jpg"}
    assert "empty" in reasons["val/fake/empty.jpg"] and "git lfs pull" in reasons["val/fake/lfs.png"]
    assert "corrupt" in reasons["val/fake/corrupt.jpg"]

    rows = read_manifest(out)
    assert list(rows[0]) == list(MANIFEST_COLUMNS)
    assert [(r["source"], r["crop"], r["face_index"]) for r in rows] == [
        ("train/fake/gray.png", "train/fake/gray_face0.png", "0"),
        ("train/real/astro.jpg", "train/real/astro_face0.png", "0"),
    ]
    astro = rows[1]
    half_size_face = tuple(v / 2 for v in ASTRONAUT_FACE)
    assert iou(tuple(float(astro[k]) for k in ("x1", "y1", "x2", "y2")), half_size_face) > 0.6
    stat = (split_src / "train" / "real" / "astro.jpg").stat()
    assert int(astro["source_size"]) == stat.st_size and int(astro["source_mtime"]) == stat.st_mtime_ns
    for row in rows:
        with Image.open(out / row["crop"]) as crop:
            assert crop.format == "PNG" and crop.size == (64, 64) and crop.mode == "RGB"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "train/fake/gray_face0.png",
        "train/real/astro_face0.png",
    ]

    report = json.loads(result.report.read_text())
    assert report["counts"] == {
        "sources": 6, "with_face": 2, "no_face": 1, "unreadable": 3, "crops": 2,
        "processed": 3, "skipped_cached": 0, "removed": 0,
    }  # fmt: skip
    assert report["no_face"][0]["source"] == "val/real/coffee.jpg" and report["no_face"][0]["reason"] == NO_FACE
    assert {e["source"] for e in report["unreadable"]} == set(reasons)
    assert report["settings"] == json.loads((out / CONFIG_FILE).read_text())
    assert result.summary()["crops"] == 2 and result.summary()["no_face"] == 1


def test_prepare_faces_cache(split_src: Path, tmp_path: Path, detector: FaceDetector, astronaut: Image.Image) -> None:
    out = tmp_path / "faces"
    prepare_faces(split_src, out, size=64, detector=detector, progress=False)
    manifest_before = (out / "faces_manifest.csv").read_text()

    again = prepare_faces(split_src, out, size=64, detector=detector, progress=False)
    assert (again.skipped_cached, again.n_processed) == (3, 0)  # two crops + one no-face, nothing redone
    assert (out / "faces_manifest.csv").read_text() == manifest_before
    assert len(again.unreadable) == 3 and again.no_face == [("val/real/coffee.jpg", NO_FACE)]

    new = astronaut.resize((256, 256)).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    _save(new, split_src / "val" / "fake" / "new.png")
    added = prepare_faces(split_src, out, size=64, detector=detector, progress=False)
    assert (added.skipped_cached, added.n_processed, added.n_crops) == (3, 1, 3)
    assert (out / "val" / "fake" / "new_face0.png").is_file()

    # a changed file is redone; a deleted one is forgotten and its crop removed
    changed = split_src / "train" / "fake" / "gray.png"
    _save(Image.new("L", (256, 256), 128), changed)
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    (split_src / "train" / "real" / "astro.jpg").unlink()
    redone = prepare_faces(split_src, out, size=64, detector=detector, progress=False)
    assert (redone.n_processed, redone.n_removed, redone.n_crops) == (1, 1, 1)
    assert not (out / "train" / "fake" / "gray_face0.png").exists()
    assert not (out / "train" / "real" / "astro_face0.png").exists()
    assert sorted(s for s, _ in redone.no_face) == ["train/fake/gray.png", "val/real/coffee.jpg"]
    assert [r["source"] for r in read_manifest(out)] == ["val/fake/new.png"]

    with pytest.raises(ValueError, match=r"other settings \(margin: 1.3 -> 1.5\).*another output folder or delete"):
        prepare_faces(split_src, out, margin=1.5, size=64, detector=detector, progress=False)
    with pytest.raises(ValueError, match="size: 64 -> 224"):
        prepare_faces(split_src, out, detector=detector, progress=False)


def test_prepare_faces_refuses_bad_folders(split_src: Path, tmp_path: Path, detector: FaceDetector) -> None:
    for out in (split_src, split_src / "train" / "faces"):
        with pytest.raises(ValueError, match="must not be the source folder or inside it"):
            prepare_faces(split_src, out, detector=detector, progress=False)
    other = _write(tmp_path / "busy" / "thesis.txt", b"mine").parent
    with pytest.raises(ValueError, match="not empty"):
        prepare_faces(split_src, other, detector=detector, progress=False)
    with pytest.raises(ValueError, match="not found"):
        prepare_faces(tmp_path / "nope", tmp_path / "o", detector=detector, progress=False)
    with pytest.raises(ValueError, match="keep"):
        prepare_faces(split_src, tmp_path / "o", keep="biggest", detector=detector, progress=False)
    assert not (tmp_path / "o").exists() and not (split_src / "train" / "faces").exists()


def test_prepare_faces_flat_layout_all_faces_and_name_clashes(
    tmp_path: Path, detector: FaceDetector, astronaut: Image.Image, two_faces: Image.Image
) -> None:
    src = tmp_path / "flat"
    small = astronaut.resize((200, 200), Image.Resampling.BICUBIC)
    _save(two_faces, src / "fake" / "pair.png")
    _save(small, src / "real" / "a.jpg")
    _save(small.convert("L"), src / "real" / "a.png")  # same stem, same folder
    out = tmp_path / "out"
    result = prepare_faces(src, out, size=None, keep="all", detector=detector, progress=False)
    rows = read_manifest(out)
    assert [(r["source"], r["crop"], r["face_index"]) for r in rows] == [
        ("fake/pair.png", "fake/pair_face0.png", "0"),
        ("fake/pair.png", "fake/pair_face1.png", "1"),
        ("real/a.jpg", "real/a_face0.png", "0"),
        ("real/a.png", "real/a_png_face0.png", "0"),
    ]
    assert result.n_crops == 4 and result.n_with_face == 3
    for row in rows:  # native size: the crop box's own size
        side = int(row["crop_right"]) - int(row["crop_left"])
        with Image.open(out / row["crop"]) as crop:
            assert crop.size == (side, side)
    largest = prepare_faces(src, tmp_path / "out2", size=32, detector=detector, progress=False)
    assert largest.n_crops == 3  # keep="largest": one crop per image


def test_command_line(split_src: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cli"
    assert main([str(split_src), "--out", str(out), "--size", "0", "--all-faces", "--no-progress"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert captured.out.count("\n") == 1
    assert summary["crops"] == 2 and summary["no_face"] == 1 and summary["unreadable"] == 3
    config = json.loads((out / CONFIG_FILE).read_text())
    assert config["size"] is None and config["keep"] == "all"

    assert main([str(split_src), "--out", str(out), "--margin", "2", "--no-progress"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1 and lines[0].startswith("error: ") and "other settings" in lines[0]

    assert main([str(split_src), "--out", str(tmp_path / "x"), "--device", "warp-drive"]) == 2
    assert capsys.readouterr().err.startswith("error: --device warp-drive")
    with pytest.raises(SystemExit) as exc:
        main([str(split_src), "--out", str(out), "--margin", "-1"])
    assert exc.value.code == 2


def test_face_is_a_plain_value() -> None:
    face = Face((1.0, 2.0, 3.0, 4.0), 0.5)
    assert face == Face((1.0, 2.0, 3.0, 4.0), 0.5) and hash(face) == hash(Face((1.0, 2.0, 3.0, 4.0), 0.5))
    assert FacePrepError.__mro__[1] is ValueError


def test_prepare_faces_lists_raw_videos_as_left_out(tmp_path: Path, detector: FaceDetector) -> None:
    """The face step crops images; a video in its source is reported with the way in (cut it into clips), never
    dropped silently, and clip folders pass through as links."""
    from deepfake_lib.core.video import write_video

    src = tmp_path / "src"
    (src / "real").mkdir(parents=True)
    Image.fromarray(skdata.astronaut()).save(src / "real" / "a.png")
    write_video(src / "real" / "v.mp4", [np.zeros((32, 32, 3), np.uint8)] * 4)
    clip = src / "real" / "w_mp4_t0_c0.clip"
    clip.mkdir()
    Image.new("RGB", (16, 16)).save(clip / "00.png")
    result = prepare_faces(src, tmp_path / "out", detector=detector, progress=False)
    assert result.n_crops == 1
    assert result.unreadable == [("real/v.mp4", VIDEO_HINT)]
    assert (tmp_path / "out" / "real" / "w_mp4_t0_c0.clip").is_symlink()
