"""Videos -> clip folders (``deepfake_lib.data.clips``): frame windows, whole-frame and face-track clips, the cached
folder step, and ``prepare_data`` on flat folders holding videos."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from deepfake_lib.core.files import is_clip_dir
from deepfake_lib.core.images import clip_frame_files, load_clip
from deepfake_lib.core.runs import read_json
from deepfake_lib.core.video import NO_STREAM, write_video
from deepfake_lib.data.clips import ClipPrepError, ClipSettings, read_clip_info, video_clips
from deepfake_lib.data.faces import Face, FaceDetector, crop_face, square_box
from deepfake_lib.demo.videos import render_path
from deepfake_lib.prepare import dataset as prepare
from deepfake_lib.prepare.clips import CONFIG_FILE, MANIFEST_FILE, REPORT_FILE, prepare_clips
from deepfake_lib.prepare.leakage import check_no_leakage
from tests.conftest import ASTRONAUT_FACE, LFS_POINTER, iou

H, W, FPS = 48, 64, 10.0
PAN = 8  # frames of the face videos
PAN_SIZE = 128  # their side in pixels
FACES = {"margin": 1.3, "keep": "largest", "min_score": 0.9}


def coded_frames(n: int, step: int = 10, blue: int = 160) -> list[np.ndarray]:
    """Frame ``i``: ``[H, W, 3]`` RGB with red ``step * i`` (the frame number), green 80, blue ``blue``."""
    return [np.dstack([np.full((H, W), v, np.uint8) for v in (step * i, 80, blue)]) for i in range(n)]


def decoded_index(image: Image.Image, step: int = 10) -> int:
    """The frame number a decoded (and resized) frame encodes: red mean / step."""
    return round(np.asarray(image, dtype=np.float64)[..., 0].mean() / step)


def pan_boxes(shift: float = 0.0, n: int = PAN) -> np.ndarray:
    """Camera windows ``[n, 4]`` over the 512 px astronaut: a 300 px square panning right, always holding the face."""
    xs = np.linspace(60.0, 100.0, n) + shift
    return np.array([[x, 20.0, x + 300.0, 320.0] for x in xs])


def face_in_frame(window: np.ndarray, size: int = PAN_SIZE) -> tuple[float, float, float, float]:
    """``ASTRONAUT_FACE`` mapped from photo pixels into a ``size`` px frame showing ``window`` of the photo."""
    scale = size / (window[2] - window[0])
    x1, y1, x2, y2 = ASTRONAUT_FACE
    return ((x1 - window[0]) * scale, (y1 - window[1]) * scale, (x2 - window[0]) * scale, (y2 - window[1]) * scale)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(device="cpu", min_score=0.9)


@pytest.fixture(scope="module")
def astronaut_pan() -> list[np.ndarray]:
    return render_path(skdata.astronaut(), pan_boxes(), PAN_SIZE)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory, astronaut_pan: list[np.ndarray]) -> dict[str, Path]:
    """Small videos written once: coded 64x48 ones of 20 and 3 frames, an astronaut pan and a coffee pan."""
    root = tmp_path_factory.mktemp("clip_videos")
    coffee = skdata.coffee()  # 400x600, no face
    coffee_windows = np.array([[50.0 + 10 * t, 20.0, 350.0 + 10 * t, 320.0] for t in range(PAN)])
    return {
        "coded": write_video(root / "coded.mp4", coded_frames(20), fps=FPS),
        "short": write_video(root / "short.mp4", coded_frames(3), fps=FPS),
        "astronaut": write_video(root / "astronaut.mp4", astronaut_pan, fps=8.0),
        "coffee": write_video(root / "coffee.mp4", render_path(coffee, coffee_windows, PAN_SIZE), fps=8.0),
    }


# --------------------------------------------------------------------------- ClipSettings
def test_uniform_windows_are_consecutive_samples_spread_over_the_video() -> None:
    settings = ClipSettings(frames=4, clips=2)
    assert settings.frame_indices(100) == [[6, 18, 31, 43], [56, 68, 81, 93]]  # 8 frames spread, 2 windows of 4
    assert settings.frame_indices(8) == [[0, 1, 2, 3], [4, 5, 6, 7]]  # exactly enough: every frame
    assert settings.frame_indices(6) == [[0, 1, 2, 3], [2, 3, 4, 5]]  # too short for two: they overlap, the end is seen
    assert settings.frame_indices(4) == [[0, 1, 2, 3]]
    assert settings.frame_indices(3) == [] and settings.frame_indices(0) == []
    for n in (12, 37, 1000):
        windows = ClipSettings(frames=3, clips=4).frame_indices(n)
        flat = [i for w in windows for i in w]
        assert len(windows) == 4 and all(len(w) == 3 for w in windows)
        assert flat == sorted(set(flat)) and flat[0] >= 0 and flat[-1] < n


def test_strided_windows_take_every_kth_frame_and_spread_the_clips() -> None:
    settings = ClipSettings(frames=3, clips=3, stride=2)  # a clip spans 5 frames of the file
    assert settings.frame_indices(20) == [[0, 2, 4], [8, 10, 12], [15, 17, 19]]  # first at 0, last at the end
    assert settings.frame_indices(5) == [[0, 2, 4]]  # room for one start only: no duplicate windows
    assert settings.frame_indices(4) == []  # shorter than one clip
    assert ClipSettings(frames=3, clips=1, stride=2).frame_indices(20) == [[0, 2, 4]]
    assert ClipSettings(frames=2, clips=2, stride=1).frame_indices(10) == [[0, 1], [8, 9]]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"frames": 0},
        {"clips": 0},
        {"stride": 0},
        {"size": 4},
        {"faces": {"margin": 1.3, "keep": "biggest", "min_score": 0.9}},
    ],
)
def test_invalid_clip_settings_raise(kwargs: dict) -> None:
    with pytest.raises(ClipPrepError):
        ClipSettings(**kwargs)


# --------------------------------------------------------------------------- one video
def test_whole_frame_clips_are_square_frames_with_their_indices_and_times(videos: dict[str, Path]) -> None:
    result = video_clips(videos["coded"], ClipSettings(frames=4, clips=2, size=32))
    assert result.reason == "" and len(result.clips) == len(result.info) == 2
    expected = ClipSettings(frames=4, clips=2).frame_indices(20)
    for k, (frames, info) in enumerate(zip(result.clips, result.info, strict=True)):
        assert len(frames) == 4 and all(f.size == (32, 32) and f.mode == "RGB" for f in frames)
        assert info["track"] == 0 and info["clip"] == k and info["fps"] == FPS
        indices = [f["index"] for f in info["frames"]]
        assert indices == expected[k]
        assert [f["time"] for f in info["frames"]] == pytest.approx([i / FPS for i in indices])
        assert all(f["box"] is None for f in info["frames"])
        assert [decoded_index(f) for f in frames] == indices  # the frames really are those of the file


def test_strided_whole_frame_clips(videos: dict[str, Path]) -> None:
    result = video_clips(videos["coded"], ClipSettings(frames=3, clips=2, stride=3, size=16))
    assert [[f["index"] for f in i["frames"]] for i in result.info] == [[0, 3, 6], [13, 16, 19]]
    assert [[decoded_index(f) for f in c] for c in result.clips] == [[0, 3, 6], [13, 16, 19]]


def test_video_shorter_than_a_clip_gives_no_clip_and_a_reason(videos: dict[str, Path]) -> None:
    result = video_clips(videos["short"], ClipSettings(frames=4, clips=2, size=16))
    assert result.clips == [] and result.info == []
    assert "too short" in result.reason and "3 frame" in result.reason
    strided = video_clips(videos["short"], ClipSettings(frames=2, clips=1, stride=3, size=16))
    assert strided.clips == [] and "too short" in strided.reason


def test_face_clips_follow_the_astronaut_face(
    videos: dict[str, Path], detector: FaceDetector, astronaut_pan: list[np.ndarray]
) -> None:
    settings = ClipSettings(frames=4, clips=2, size=48, faces=FACES)
    result = video_clips(videos["astronaut"], settings, detector)
    assert result.reason == "" and len(result.clips) == 2
    windows = pan_boxes()
    for k, (frames, info) in enumerate(zip(result.clips, result.info, strict=True)):
        assert info["track"] == 0 and info["clip"] == k  # one person: one track per window
        assert all(f.size == (48, 48) for f in frames)
        for frame, meta in zip(frames, info["frames"], strict=True):
            box = meta["box"]
            assert box is not None and len(box) == 4
            truth = face_in_frame(windows[meta["index"]])
            assert iou(box, truth) > 0.6, (box, truth)
            left, top, right, bottom = square_box(box, FACES["margin"], PAN_SIZE, PAN_SIZE)
            cx, cy = (truth[0] + truth[2]) / 2, (truth[1] + truth[3]) / 2
            assert left < cx < right and top < cy < bottom  # the crop is centred on the face...
            assert abs((left + right) / 2 - cx) < 0.2 * (right - left)
            assert abs((top + bottom) / 2 - cy) < 0.2 * (bottom - top)
            # ...and is the crop of the frame along the recorded box (up to video compression)
            original = Image.fromarray(astronaut_pan[meta["index"]])
            expected = crop_face(original, Face(tuple(box), 1.0), FACES["margin"], 48)
            diff = np.abs(np.asarray(frame, dtype=np.float64) - np.asarray(expected, dtype=np.float64)).mean()
            assert diff < 10, diff


def test_two_people_give_two_tracks_and_keep_largest_keeps_one(detector: FaceDetector, tmp_path: Path) -> None:
    """Two astronaut faces side by side, drifting apart: "all" cuts a clip per person and window (left and right
    tracks never swap), "largest" keeps one track."""
    face = np.asarray(Image.fromarray(skdata.astronaut()[20:240, 120:320]).resize((128, 140)))
    frames = []
    for t in range(8):
        canvas = np.full((160, 300, 3), 30, np.uint8)
        canvas[10:150, 5 + t : 133 + t] = face
        canvas[10:150, 160 - t : 288 - t] = face[:, ::-1]
        frames.append(canvas)
    path = write_video(tmp_path / "two.mp4", frames, fps=8.0)
    every = video_clips(path, ClipSettings(frames=4, clips=2, size=32, faces={**FACES, "keep": "all"}), detector)
    assert len(every.clips) == 4 and sorted((m["clip"], m["track"]) for m in every.info) == [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
    ]
    for meta in every.info:
        centres = {(f["box"][0] + f["box"][2]) / 2 for f in meta["frames"]}
        assert all(c < 150 for c in centres) or all(c > 150 for c in centres)  # one person per clip
    largest = video_clips(path, ClipSettings(frames=4, clips=2, size=32, faces={**FACES, "keep": "largest"}), detector)
    assert len(largest.clips) == 2 and {m["track"] for m in largest.info} == {0}


class ScriptedDetector:
    """Stands in for MTCNN: the faces of each frame come from a script (``faces[i]`` for the i-th image asked)."""

    min_score = 0.9

    def __init__(self, faces: list[list[Face]]) -> None:
        self.faces = faces

    def detect_batch(self, images: list[Image.Image]) -> list[list[Face]]:
        assert len(images) == len(self.faces)
        return [list(f) for f in self.faces]


def test_a_person_keeps_one_track_id_through_the_whole_video(tmp_path: Path) -> None:
    """Two people over 12 sampled frames cut into 3 windows of 4: A is seen throughout, B (larger) in the first
    and the last window but missed through the middle one. A, the longest track of the video, is id 0 in every
    window (within one window B would come first), B is one track (id 1) on both sides of its gap, and the middle
    window has no clip of B."""
    path = write_video(tmp_path / "two.mp4", coded_frames(12), fps=FPS)
    a = [Face((2.0 + t, 4.0, 22.0 + t, 24.0), 0.99) for t in range(12)]
    b = [Face((34.0, 8.0, 64.0, 38.0), 0.95)] * 12
    faces = [[a[t]] + ([b[t]] if t < 4 or t >= 8 else []) for t in range(12)]
    settings = ClipSettings(frames=4, clips=3, size=16, faces={**FACES, "keep": "all"})
    cut = video_clips(path, settings, ScriptedDetector(faces))
    tracks = [(m["clip"], m["track"]) for m in cut.info]
    assert sorted(tracks) == [(0, 0), (0, 1), (1, 0), (2, 0), (2, 1)]
    for m in cut.info:
        assert {fr["index"] for fr in m["frames"]} == set(range(4 * m["clip"], 4 * m["clip"] + 4))
    largest = video_clips(path, ClipSettings(frames=4, clips=3, size=16, faces=FACES), ScriptedDetector(faces))
    assert [(m["clip"], m["track"]) for m in largest.info] == [(0, 0), (1, 0), (2, 0)]  # the main person only
    assert all(fr["box"][0] < 20 for m in largest.info for fr in m["frames"])  # A's boxes, not B's


def test_video_without_a_face_gives_no_clip_and_says_so(videos: dict[str, Path], detector: FaceDetector) -> None:
    result = video_clips(videos["coffee"], ClipSettings(frames=4, clips=2, size=48, faces=FACES), detector)
    assert result.clips == [] and "no face" in result.reason


# --------------------------------------------------------------------------- the cached folder step
SMALL = ClipSettings(frames=4, clips=2, size=16)


def write_image(path: Path, value: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((24, 24, 3), value, np.uint8)).save(path)
    return path


@pytest.fixture
def video_src(tmp_path: Path) -> Path:
    """Two images, two good videos (mp4 and avi) and four bad ones: empty, noise, Git LFS pointer, too short."""
    src = tmp_path / "src"
    write_image(src / "a.png", 10)
    write_image(src / "sub" / "b.jpg", 200)
    write_video(src / "good1.mp4", coded_frames(12), fps=FPS)
    write_video(src / "sub" / "good2.avi", coded_frames(12, blue=40), fps=FPS)
    (src / "empty.mp4").write_bytes(b"")
    (src / "noise.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    (src / "lfs.mp4").write_bytes(LFS_POINTER)
    write_video(src / "short.mp4", coded_frames(2), fps=FPS)
    return src


def manifest_rows(out: Path) -> list[dict[str, str]]:
    with open(out / MANIFEST_FILE, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


CLIPS = [
    "good1_mp4_t0_c0.clip",
    "good1_mp4_t0_c1.clip",
    "sub/good2_avi_t0_c0.clip",
    "sub/good2_avi_t0_c1.clip",
]


def test_prepare_clips_links_images_writes_clips_and_reports_bad_videos(video_src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = prepare_clips(video_src, out, SMALL, progress=False)
    assert (result.n_videos, result.n_clips, result.n_linked) == (6, 4, 2)
    assert (result.n_processed, result.skipped_cached) == (3, 0)  # two good videos and the short one
    # images pass through as links to the originals
    for rel in ("a.png", "sub/b.jpg"):
        assert (out / rel).is_symlink() and (out / rel).resolve() == (video_src / rel).resolve()
    # clip folders: T frames of the size asked for and a clip.json naming the source
    rows = manifest_rows(out)
    assert sorted(r["clip"] for r in rows) == CLIPS
    for row in rows:
        folder = out / row["clip"]
        assert is_clip_dir(folder)
        assert [f.name for f in clip_frame_files(folder)] == ["00.png", "01.png", "02.png", "03.png"]
        assert all(im.size == (16, 16) for im in load_clip(folder))
        info = read_clip_info(folder)
        assert info["source"] == row["source"] and Path(info["source_path"]) == (video_src / row["source"]).resolve()
        assert row["frames"] == "4" and row["track"] == "0" and row["clip_index"] == str(info["clip"])
        assert float(row["start_time"]) == info["frames"][0]["time"]
        assert float(row["end_time"]) == info["frames"][-1]["time"]
        assert row["source_size"] == str((video_src / row["source"]).stat().st_size)
    assert {r["source"] for r in rows} == {"good1.mp4", "sub/good2.avi"}
    # every bad file is reported with a reason naming its problem; nothing of it is written
    report = read_json(out / REPORT_FILE)
    unreadable = {e["source"]: e["reason"] for e in report["unreadable"]}
    assert set(unreadable) == {"empty.mp4", "noise.mp4", "lfs.mp4"}
    assert "empty" in unreadable["empty.mp4"] and "0 bytes" in unreadable["empty.mp4"]
    assert "Git LFS pointer" in unreadable["lfs.mp4"]
    assert NO_STREAM in unreadable["noise.mp4"] or "corrupt" in unreadable["noise.mp4"]
    no_clip = {e["source"]: e["reason"] for e in report["no_clip"]}
    assert set(no_clip) == {"short.mp4"} and "too short" in no_clip["short.mp4"]
    assert report["counts"] == {
        "videos": 6, "clips": 4, "no_clip": 1, "unreadable": 3, "processed": 3, "skipped_cached": 0
    }  # fmt: skip
    assert dict(result.unreadable) == unreadable and dict(result.no_clip) == no_clip
    assert not any(p.name.startswith(("empty", "noise", "lfs", "short")) for p in out.rglob("*"))
    assert read_json(out / CONFIG_FILE) == SMALL.to_dict()


def test_prepare_clips_rerun_reuses_and_redoes_changed_or_removed_videos(video_src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    prepare_clips(video_src, out, SMALL, progress=False)
    stamps = {c: (out / c / "00.png").stat().st_mtime_ns for c in CLIPS}

    again = prepare_clips(video_src, out, SMALL, progress=False)
    assert (again.n_processed, again.skipped_cached, again.n_clips, again.n_linked) == (0, 3, 4, 0)
    assert {c: (out / c / "00.png").stat().st_mtime_ns for c in CLIPS} == stamps  # nothing rewritten
    assert len(again.unreadable) == 3 and len(again.no_clip) == 1

    # a changed video is redone (now 40 frames: other frame numbers), the others are reused
    old_indices = [f["index"] for f in read_clip_info(out / CLIPS[1])["frames"]]
    write_video(video_src / "good1.mp4", coded_frames(40, step=6), fps=FPS)
    changed = prepare_clips(video_src, out, SMALL, progress=False)
    assert (changed.n_processed, changed.skipped_cached, changed.n_clips) == (1, 2, 4)
    new_indices = [f["index"] for f in read_clip_info(out / CLIPS[1])["frames"]]
    assert new_indices != old_indices and new_indices == SMALL.frame_indices(40)[1]
    decoded = [decoded_index(f, step=6) for f in load_clip(out / CLIPS[1])]
    assert all(abs(d - i) <= 1 for d, i in zip(decoded, new_indices, strict=True)), decoded  # the new file's frames
    assert (out / CLIPS[2] / "00.png").stat().st_mtime_ns == stamps[CLIPS[2]]

    # a removed video loses its clips and manifest rows
    (video_src / "sub" / "good2.avi").unlink()
    removed = prepare_clips(video_src, out, SMALL, progress=False)
    assert removed.n_videos == 5 and removed.n_clips == 2
    assert sorted(r["clip"] for r in manifest_rows(out)) == CLIPS[:2]
    assert not (out / CLIPS[2]).exists() and not (out / CLIPS[3]).exists()

    # fixed files are picked up: the real video behind a Git LFS pointer, a longer take of the short one
    write_video(video_src / "lfs.mp4", coded_frames(12), fps=FPS)
    write_video(video_src / "short.mp4", coded_frames(8), fps=FPS)
    fixed = prepare_clips(video_src, out, SMALL, progress=False)
    assert (fixed.n_processed, fixed.skipped_cached, fixed.n_clips) == (2, 1, 6)
    assert sorted(r["clip"] for r in manifest_rows(out)) == [
        *CLIPS[:2], "lfs_mp4_t0_c0.clip", "lfs_mp4_t0_c1.clip", "short_mp4_t0_c0.clip", "short_mp4_t0_c1.clip"
    ]  # fmt: skip
    report = read_json(out / REPORT_FILE)
    assert [e["source"] for e in report["unreadable"]] == ["empty.mp4", "noise.mp4"] and report["no_clip"] == []


def test_prepare_clips_rerun_drops_links_of_removed_images(video_src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    prepare_clips(video_src, out, SMALL, progress=False)
    (video_src / "a.png").unlink()
    prepare_clips(video_src, out, SMALL, progress=False)
    assert not (out / "a.png").is_symlink() and not (out / "a.png").exists()


def test_prepare_clips_refuses_other_settings_and_bad_folders(video_src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    prepare_clips(video_src, out, SMALL, progress=False)
    with pytest.raises(ClipPrepError, match="other settings") as info:
        prepare_clips(video_src, out, ClipSettings(frames=5, clips=2, size=16), progress=False)
    assert "frames: 4 -> 5" in str(info.value)
    with pytest.raises(ClipPrepError, match="other settings"):
        prepare_clips(video_src, out, ClipSettings(frames=4, clips=2, size=16, faces=FACES), progress=False)
    assert read_json(out / CONFIG_FILE) == SMALL.to_dict()  # the folder is left as it was
    with pytest.raises(ClipPrepError, match="inside"):
        prepare_clips(video_src, video_src / "clips", SMALL, progress=False)
    with pytest.raises(ClipPrepError, match="inside"):
        prepare_clips(video_src, video_src, SMALL, progress=False)
    assert not (video_src / "clips").exists()
    stranger = tmp_path / "stranger"
    write_image(stranger / "x.png", 0)
    with pytest.raises(ClipPrepError, match="not empty"):
        prepare_clips(video_src, stranger, SMALL, progress=False)
    with pytest.raises(ClipPrepError, match="not found"):
        prepare_clips(tmp_path / "missing", tmp_path / "out2", SMALL, progress=False)


# --------------------------------------------------------------------------- prepare_data on flat folders
def split_rows(data_dir: Path) -> list[dict[str, str]]:
    with open(data_dir / "split_manifest.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def assert_videos_kept_together(data_dir: Path, n_clips_per_video: int) -> dict[str, str]:
    """Every clip in the splits maps back (clip.json ``source``) to a video whose clips all share one split;
    returns video -> split."""
    split_of: dict[str, set[str]] = {}
    count: dict[str, int] = {}
    for split in ("train", "val", "test"):
        for clip in sorted((data_dir / split).rglob("*.clip")) if (data_dir / split).is_dir() else []:
            source = read_clip_info(clip)["source"]
            split_of.setdefault(source, set()).add(split)
            count[source] = count.get(source, 0) + 1
    assert split_of and all(len(s) == 1 for s in split_of.values()), split_of
    assert set(count.values()) == {n_clips_per_video}
    rows = split_rows(data_dir)
    check_no_leakage(rows)
    for r in rows:
        if r["path"].endswith(".clip"):
            assert r["group"] in split_of and split_of[r["group"]] == {r["split"]}
    return {v: next(iter(s)) for v, s in split_of.items()}


@pytest.fixture(scope="module")
def flat_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``flat/{real,fake}``: three images and three 10-frame videos per class."""
    root = tmp_path_factory.mktemp("flat_videos") / "flat"
    for label, blue in (("real", 40), ("fake", 200)):
        for i in range(3):
            write_image(root / label / f"{label}_img{i}.png", 30 * i + (0 if label == "real" else 100))
            write_video(root / label / f"{label}_vid{i}.mp4", coded_frames(10, step=8 + 4 * i, blue=blue), fps=FPS)
    return root


def test_prepare_data_cuts_clips_then_splits_keeping_each_video_in_one_split(flat_videos: Path, tmp_path: Path) -> None:
    before = sorted((p.relative_to(flat_videos), p.stat().st_mtime_ns) for p in flat_videos.rglob("*"))
    prep = prepare.prepare_data(
        flat_videos, tmp_path / "prepared", frames=4, image_size=16, split_fractions=[0.5, 0.5], progress=False
    )
    assert prep.steps == ["clips", "splits"]
    assert prep.clips["videos"] == 6 and prep.clips["clips"] == 12 and prep.clips["linked"] == 6
    assert prep.clips["settings"]["frames"] == 4 and prep.clips["left_out"] == []
    assert prep.splits["total"] == 18  # 12 clips + 6 images
    videos = assert_videos_kept_together(prep.data_dir, n_clips_per_video=2)
    assert len(videos) == 6 and len(set(videos.values())) >= 2
    images = sorted(p.name for p in prep.data_dir.glob("*/*/*.png"))
    assert len(images) == 6 and all(p.resolve().is_file() for p in prep.data_dir.glob("*/*/*.png"))
    recorded = prepare.preparation_of(prep.data_dir)
    assert recorded["steps"] == ["clips", "splits"]
    assert recorded["clips"]["settings"] == {
        "frames": 4, "clips": 2, "stride": None, "size": 16, "faces": None, "format": 2
    }  # fmt: skip
    assert prepare.checkpoint_info(prep.data_dir) == {
        "clips": {"frames": 4, "clips": 2, "stride": None, "size": 16, "faces": None}
    }
    assert sorted((p.relative_to(flat_videos), p.stat().st_mtime_ns) for p in flat_videos.rglob("*")) == before
    # a re-run reuses every step
    again = prepare.prepare_data(
        flat_videos, tmp_path / "prepared", frames=4, image_size=16, split_fractions=[0.5, 0.5], progress=False
    )
    assert again.data_dir == prep.data_dir and again.clips["processed"] == 0 and again.clips["skipped_cached"] == 6


def test_prepare_data_with_faces_cuts_face_clips_and_crops_images(tmp_path: Path) -> None:
    """Two astronaut-pan videos and one astronaut photo per class, MTCNN on CPU (16 frames, 2 photos)."""
    src = tmp_path / "flat"
    photo = skdata.astronaut()
    for label in ("real", "fake"):
        for i in range(2):
            shift = 10.0 * i + (20.0 if label == "fake" else 0.0)
            frames = render_path(photo, pan_boxes(shift, n=4), 96)  # 4 frames: 2 clips of 2
            write_video(src / label / f"{label}{i}.mp4", frames, fps=8.0)
        face_photo = Image.fromarray(photo[20 + 10 * (label == "fake") : 300, 100:380]).resize((112, 112))
        face_photo.save(src / label / f"{label}_photo.png")  # the folder exists: the videos are written first
    prep = prepare.prepare_data(
        src, tmp_path / "prepared", faces=True, face_size=32, frames=2, clips_per_video=2,
        split_fractions=[0.5, 0.5], progress=False,
    )  # fmt: skip
    assert prep.steps == ["clips", "faces", "splits"]
    assert prep.clips["clips"] == 8 and prep.clips["left_out"] == []
    assert prep.clips["settings"]["faces"] == FACES and prep.clips["settings"]["size"] == 32
    assert prep.faces["crops"] == 2 and prep.faces["with_face"] == 2  # the two photos; clips are not re-cropped
    faces_dir = Path(prep.faces["manifest"]).parent
    clips_dir = Path(prep.clips["manifest"]).parent
    passed = sorted(faces_dir.rglob("*.clip"))
    assert len(passed) == 8
    for clip in passed:  # passed through as links to the clips step's folders
        assert clip.is_symlink() and clip.resolve().parent.parent == clips_dir.resolve()
        info = read_clip_info(clip)
        assert all(f["box"] is not None for f in info["frames"])  # face-track clips
        assert all(im.size == (32, 32) for im in load_clip(clip))
    crops = sorted(p.name for p in faces_dir.rglob("*_face0.png"))
    assert crops == ["fake_photo_face0.png", "real_photo_face0.png"]
    videos = assert_videos_kept_together(prep.data_dir, n_clips_per_video=2)
    assert len(videos) == 4
    rows = split_rows(prep.data_dir)
    assert sorted(r["path"] for r in rows if not r["path"].endswith(".clip")) == [
        "fake/fake_photo_face0.png",
        "real/real_photo_face0.png",
    ]
    assert prepare.checkpoint_info(prep.data_dir)["clips"]["faces"] == FACES
    assert prepare.checkpoint_info(prep.data_dir)["faces"]["size"] == 32


def test_clip_folders_in_the_source_pass_through_prepare_clips(video_src: Path, tmp_path: Path) -> None:
    first = prepare_clips(video_src, tmp_path / "first", SMALL, progress=False)
    shutil.copytree(first.out_dir / CLIPS[0], tmp_path / "src2" / CLIPS[0])
    second = prepare_clips(tmp_path / "src2", tmp_path / "second", SMALL, progress=False)
    assert (second.n_videos, second.n_clips, second.n_linked) == (0, 0, 1)
    linked = second.out_dir / CLIPS[0]
    assert linked.is_symlink() and os.path.samefile(linked, tmp_path / "src2" / CLIPS[0])
