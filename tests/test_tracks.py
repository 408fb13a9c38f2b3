"""Face tracks: IoU linking, gap filling, smoothing, clip windows and crops (``deepfake_lib.data.tracks``)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from deepfake_lib.data.faces import Face, FaceDetector
from deepfake_lib.data.tracks import Track, face_descriptor, iou, join_tracks, link_tracks, track_crops


def box(x: float, y: float, side: float, h: float | None = None) -> tuple[float, float, float, float]:
    return (float(x), float(y), float(x + side), float(y + (side if h is None else h)))


def two_people(n: int = 10) -> tuple[list[list[Face]], list[Face], list[Face]]:
    """Per-frame faces of a big face moving right (top) and a small one moving left (bottom), 4 px a frame."""
    big = [Face(box(10 + 4 * t, 5, 40), 0.99) for t in range(n)]
    small = [Face(box(100 - 4 * t, 80, 30), 0.95) for t in range(n)]
    return [[b, s] for b, s in zip(big, small, strict=True)], big, small


def centres(boxes: list[tuple[float, float, float, float]]) -> np.ndarray:
    b = np.asarray(boxes)
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)


# --------------------------------------------------------------------------- iou
def test_iou_identical_disjoint_half() -> None:
    a = (0.0, 0.0, 10.0, 10.0)
    assert iou(a, a) == pytest.approx(1.0)
    assert iou(a, (20.0, 20.0, 30.0, 30.0)) == 0.0
    assert iou(a, (10.0, 0.0, 20.0, 10.0)) == 0.0  # touching edges
    assert iou(a, (0.0, 0.0, 10.0, 5.0)) == pytest.approx(0.5)  # half of a, inside it
    assert iou(a, (5.0, 0.0, 15.0, 10.0)) == pytest.approx(50 / 150)  # shifted by half its width
    assert iou((0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0)) == 0.0


# --------------------------------------------------------------------------- linking
def test_two_faces_moving_apart_give_two_tracks_in_order() -> None:
    dets, big, small = two_people()
    tracks = link_tracks(dets)
    assert [t.id for t in tracks] == [0, 1]
    assert tracks[0].faces == big and tracks[1].faces == small  # same length: larger mean area first
    assert tracks[0].positions == tracks[1].positions == list(range(10))
    assert tracks[0].length == 10 and tracks[0].score == pytest.approx(0.99)
    assert tracks[1].score == pytest.approx(0.95)


def test_order_within_a_frame_does_not_swap_identities() -> None:
    dets, big, small = two_people()
    swapped = [list(reversed(f)) if t % 2 else f for t, f in enumerate(dets)]
    tracks = link_tracks(swapped)
    assert [t.faces for t in tracks] == [big, small]
    all_swapped = link_tracks([list(reversed(f)) for f in dets])
    assert [t.faces for t in all_swapped] == [big, small]
    assert link_tracks(swapped) == tracks  # deterministic


def test_longer_track_comes_first_even_when_smaller() -> None:
    dets, big, small = two_people()
    dets = [[s] if t < 3 else f for t, (f, s) in enumerate(zip(dets, small, strict=True))]
    tracks = link_tracks(dets)
    assert tracks[0].faces == small and tracks[1].faces == big[3:]
    assert tracks[1].positions == list(range(3, 10))


def test_assignment_is_optimal_not_greedy() -> None:
    """Y overlaps track A best, but giving Y to B and X to A matches both tracks."""
    a, b = (0.0, 0.0, 10.0, 10.0), (6.0, 0.0, 16.0, 10.0)
    x, y = (-3.0, 0.0, 7.0, 10.0), (2.0, 0.0, 12.0, 10.0)
    assert iou(a, y) > iou(a, x) > 0.3 and iou(b, y) > 0.3 > iou(b, x)
    tracks = link_tracks([[Face(a, 0.9), Face(b, 0.9)], [Face(y, 0.9), Face(x, 0.9)]])
    assert len(tracks) == 2
    paths = sorted([f.box for f in t.faces] for t in tracks)
    assert paths == sorted([[a, x], [b, y]])


def test_short_gap_is_bridged_and_interpolated() -> None:
    faces = [Face(box(10 + 4 * t, 5, 40), 0.9) for t in range(10)]
    dets: list[list[Face]] = [[f] for f in faces]
    dets[4] = dets[5] = []  # missing for 2 frames = max_gap
    tracks = link_tracks(dets, max_gap=2)
    assert len(tracks) == 1
    track = tracks[0]
    assert track.positions == [0, 1, 2, 3, 6, 7, 8, 9] and track.length == 8
    boxes = track.boxes(10)
    assert len(boxes) == 10
    for t in (4, 5):  # linear between frame 3 (x 22) and frame 6 (x 34): the true positions
        assert boxes[t] == pytest.approx(box(10 + 4 * t, 5, 40))
    assert boxes[0] == faces[0].box and boxes[9] == faces[9].box


def test_long_gap_splits_and_min_length_drops_false_positives() -> None:
    faces = [Face(box(10 + 2 * t, 5, 40), 0.9) for t in range(10)]
    dets: list[list[Face]] = [[f] for f in faces]
    dets[3] = dets[4] = dets[5] = []  # 3 missing frames > max_gap 2
    dets[7] = [faces[7], Face(box(200, 200, 20), 0.91)]  # a one-frame false positive elsewhere
    tracks = link_tracks(dets, max_gap=2)
    assert [t.positions for t in tracks] == [[6, 7, 8, 9], [0, 1, 2], [7]]
    assert [t.positions for t in link_tracks(dets, max_gap=3)] == [[0, 1, 2, 6, 7, 8, 9], [7]]
    kept = link_tracks(dets, max_gap=2, min_length=2)
    assert [t.positions for t in kept] == [[6, 7, 8, 9], [0, 1, 2]] and [t.id for t in kept] == [0, 1]


def test_motion_allowance_keeps_a_moving_face_on_its_track_across_a_gap() -> None:
    """Missed for 2 frames, a face moving 12 px a frame overlaps its last box by IoU 0.05 (< 0.3), but the box
    moved on at its velocity exactly."""
    faces = [Face(box(10 + 12 * t, 5, 40), 0.9) for t in range(8)]
    dets: list[list[Face]] = [[f] for f in faces]
    dets[3] = dets[4] = []
    assert iou(faces[2].box, faces[5].box) < 0.3
    (track,) = link_tracks(dets, max_gap=2)
    assert track.positions == [0, 1, 2, 5, 6, 7]


def test_join_tracks_follows_motion_across_a_long_gap() -> None:
    faces = [Face(box(10 + 4 * t, 5, 40), 0.9) for t in range(20)]
    dets: list[list[Face]] = [[f] for f in faces]
    for t in range(8, 12):  # missed for 4 frames > max_gap: link_tracks splits
        dets[t] = []
    dets[15] = [faces[15], Face(box(300, 200, 40), 0.92)]  # someone else, once
    pieces = link_tracks(dets, max_gap=2)
    assert [t.positions for t in pieces] == [list(range(8)), list(range(12, 20)), [15]]
    joined = join_tracks(pieces)
    assert [t.positions for t in joined] == [list(range(8)) + list(range(12, 20)), [15]] and [t.id for t in joined] == [
        0,
        1,
    ]
    assert joined[0].faces == [f for t, f in enumerate(faces) if not 8 <= t < 12]
    far = [Face(box(400, 5, 40), 0.9)] * 3  # where the moving face could not have got to
    assert len(join_tracks([Track(0, [0, 1, 2], faces[:3]), Track(1, [5, 6, 7], far)])) == 2
    assert join_tracks([]) == []


def test_join_tracks_by_appearance_where_the_box_jumps() -> None:
    """The astronaut's face jumps across the frame (a cut): joined by its look, not a different face."""
    astronaut = np.asarray(Image.fromarray(skdata.astronaut()).resize((128, 128)))
    man = np.asarray(Image.fromarray(skdata.camera()).convert("RGB").resize((128, 128)))
    canvas = np.zeros((8, 256, 512, 3), np.uint8)
    canvas[:4, 64:192, 0:128] = astronaut
    canvas[4:, 64:192, 384:512] = astronaut  # the same face, elsewhere
    other = canvas.copy()
    other[4:, 64:192, 384:512] = man
    face_a, face_b = Face((30.0, 70.0, 100.0, 150.0), 0.99), Face((414.0, 70.0, 484.0, 150.0), 0.99)
    first, second = Track(0, [0, 1, 2, 3], [face_a] * 4), Track(1, [4, 5, 6, 7], [face_b] * 4)
    same = [Image.fromarray(f) for f in canvas]
    assert len(join_tracks([first, second])) == 2  # no motion carries it there
    (joined,) = join_tracks([first, second], same)
    assert joined.positions == list(range(8))
    assert len(join_tracks([first, second], [Image.fromarray(f) for f in other])) == 2  # another face: two people
    d = face_descriptor(same[0], face_a.box)
    assert d.shape == (576,) and float(d @ d) == pytest.approx(1.0)
    assert float(d @ face_descriptor(same[4], face_b.box)) > 0.99


def test_empty_and_bad_arguments() -> None:
    assert link_tracks([]) == []
    assert link_tracks([[], [], []]) == []
    with pytest.raises(ValueError):
        link_tracks([], iou_threshold=0.0)
    with pytest.raises(ValueError):
        link_tracks([], max_gap=-1)
    with pytest.raises(ValueError):
        link_tracks([], min_length=0)
    with pytest.raises(ValueError):
        Track(0, [1, 1], [Face(box(0, 0, 5), 1.0)] * 2)
    with pytest.raises(ValueError):
        Track(0, [0], [])


# --------------------------------------------------------------------------- boxes
def test_boxes_hold_the_ends_constant() -> None:
    track = Track(0, [3, 5], [Face(box(10, 10, 20), 0.9), Face(box(20, 30, 40), 0.8)])
    boxes = track.boxes(8)
    assert boxes[:4] == [box(10, 10, 20)] * 4
    assert boxes[4] == pytest.approx((15.0, 20.0, 45.0, 50.0))
    assert boxes[5:] == [box(20, 30, 40)] * 3
    assert track.score == pytest.approx(0.85)
    with pytest.raises(ValueError):
        track.boxes(5)  # a face in frame 5 of 5 frames


def test_smoothing_reduces_jitter_and_keeps_length() -> None:
    rng = np.random.default_rng(0)
    n = 30
    faces = [Face(box(50 + t + rng.normal(0, 3), 40 + rng.normal(0, 3), 40), 0.9) for t in range(n)]
    track = Track(0, list(range(n)), faces)
    raw, smooth = track.boxes(n), track.boxes(n, smooth=5)
    assert len(smooth) == n and track.boxes(n, smooth=1) == raw
    jitter_raw = np.diff(centres(raw), axis=0).var(axis=0)
    jitter_smooth = np.diff(centres(smooth), axis=0).var(axis=0)
    assert (jitter_smooth < jitter_raw / 4).all()
    assert centres(smooth)[:, 1].var() < centres(raw)[:, 1].var() / 2  # y: stands still but for noise
    assert np.abs(centres(smooth) - centres(raw)).mean() < 3  # the path itself is kept
    steady = Track(0, [0, 9], [Face(box(5, 5, 10), 0.9)] * 2)
    assert np.allclose(steady.boxes(10, smooth=4), steady.boxes(10))  # constant stays constant


# --------------------------------------------------------------------------- crops
def moving_square(n: int = 8, side: int = 10) -> tuple[list[Image.Image], list[Face]]:
    """64x48 dark frames with a bright ``side`` square moving right 2 px a frame; the exact square as the face."""
    images, faces = [], []
    for t in range(n):
        arr = np.full((48, 64, 3), 20, dtype=np.uint8)
        x, y = 14 + 2 * t, 19
        arr[y : y + side, x : x + side] = 250
        images.append(Image.fromarray(arr))
        faces.append(Face(box(x, y, side), 0.99))
    return images, faces


def bright_centre(img: Image.Image) -> tuple[float, float]:
    arr = np.asarray(img.convert("L"), dtype=np.float64)
    ys, xs = np.nonzero(arr > 128)
    return float(xs.mean()), float(ys.mean())


def test_track_crops_centre_the_face() -> None:
    images, faces = moving_square()
    dets: list[list[Face]] = [[f] for f in faces]
    dets[4] = []  # interpolated through the gap
    (track,) = link_tracks(dets)
    assert track.positions == [0, 1, 2, 3, 5, 6, 7]
    crops = track_crops(images, track, margin=2.0, size=32)
    assert len(crops) == len(images)
    for crop in crops:
        assert crop.size == (32, 32) and crop.mode == "RGB"
        cx, cy = bright_centre(crop)
        assert abs(cx - 15.5) < 0.75 and abs(cy - 15.5) < 0.75
        assert (np.asarray(crop.convert("L")) > 128).mean() == pytest.approx(0.25, abs=0.05)  # 10 px of 20
    assert track_crops([], track) == []
    with pytest.raises(ValueError):
        track_crops([images[0], images[1].resize((32, 24))], Track(0, [0], [faces[0]]))


def test_track_crops_native_size_is_the_median_side() -> None:
    images, faces = moving_square()
    sides = [8, 10, 10, 12, 10, 14, 10, 9]
    faces = [Face(box(f.box[0], f.box[1], s), 0.9) for f, s in zip(faces, sides, strict=True)]
    crops = track_crops(images, Track(0, list(range(8)), faces), margin=1.5, size=None)
    assert len(crops) == 8 and {c.size for c in crops} == {(15, 15)}  # median 10 px * 1.5


# --------------------------------------------------------------------------- with the real detector
def test_mtcnn_on_a_panning_shot_gives_one_track() -> None:
    astronaut = Image.fromarray(skdata.astronaut())
    frames = [astronaut.crop((x, 20, x + 256, 276)).resize((192, 192)) for x in range(100, 180, 20)]
    detections = FaceDetector(device="cpu", min_score=0.9).detect_batch(frames)
    assert all(detections)
    tracks = link_tracks(detections)
    assert tracks[0].positions == list(range(len(frames)))
    assert all(t.length == 1 for t in tracks[1:])  # nothing else that lasts
    crops = track_crops(frames, tracks[0], size=64)
    assert len(crops) == len(frames) and all(c.size == (64, 64) for c in crops)
