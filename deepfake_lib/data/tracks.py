"""Face tracks in a video: link per-frame face boxes into one track per person, and crop along a track.

A video gives sampled frames (PIL images, all one size); ``FaceDetector.detect_batch`` gives the faces per
frame; ``link_tracks`` links them into ``Track``s (IoU with each track's last box or where its motion carries it,
optimal assignment per frame); ``join_tracks`` joins the pieces of one person across the whole video (gaps,
jumps); ``Track.boxes`` fills in a box for every sampled frame; ``track_crops`` cuts one face crop per frame along
it. Where the clip windows lie is ``clips.ClipSettings.frame_indices``' job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from deepfake_lib.data.faces import Face, crop_face, square_box

Box = tuple[float, float, float, float]


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes; 0.0 when both are empty."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    union = area_a + area_b - inter
    return float(inter / union) if union > 0 else 0.0


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over axis 0 (``(window - 1) // 2`` rows before, ``window // 2`` after); the window
    shrinks at the ends, so the length is kept and the ends are not pulled towards zero."""
    n = len(values)
    if window <= 1 or n <= 1:
        return values
    idx = np.arange(n)
    lo = np.maximum(0, idx - (window - 1) // 2)
    hi = np.minimum(n, idx + window // 2 + 1)
    csum = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
    return (csum[hi] - csum[lo]) / (hi - lo)[:, None]


@dataclass
class Track:
    """One person's face through a video: ``faces[i]`` was detected in sampled frame ``positions[i]``.

    ``positions`` are indices into the list of sampled frames, strictly increasing; a track may skip frames
    (missed detections), which ``boxes`` fills in.
    """

    id: int
    positions: list[int]
    faces: list[Face]

    def __post_init__(self) -> None:
        if len(self.positions) != len(self.faces):
            raise ValueError(f"track {self.id}: {len(self.positions)} positions but {len(self.faces)} faces")
        if not self.positions:
            raise ValueError(f"track {self.id}: no faces")
        if any(b <= a for a, b in zip(self.positions, self.positions[1:], strict=False)) or self.positions[0] < 0:
            raise ValueError(f"track {self.id}: positions must be >= 0 and strictly increasing, got {self.positions}")

    @property
    def length(self) -> int:
        """Number of frames with a detection (not the span from first to last)."""
        return len(self.positions)

    @property
    def score(self) -> float:
        """Mean detector score."""
        return float(np.mean([f.score for f in self.faces]))

    @property
    def area(self) -> float:
        """Mean face box area in pixels."""
        return float(np.mean([f.area for f in self.faces]))

    def boxes(self, n_frames: int, smooth: int = 0) -> list[Box]:
        """A box for every sampled frame ``0 .. n_frames - 1``.

        Detected boxes where present, each coordinate linearly interpolated across gaps, and held constant before
        the first and after the last detection. ``smooth > 1``: a centred moving average over that many frames of
        each coordinate (the window shrinks at the ends) to steady jittery detections; ``0`` or ``1``: none.
        Raises ``ValueError`` when the track has a position ``>= n_frames``.
        """
        if n_frames < 0 or smooth < 0:
            raise ValueError(f"n_frames and smooth must be >= 0, got {n_frames}, {smooth}")
        if self.positions[-1] >= n_frames:
            raise ValueError(f"track {self.id} has a face in frame {self.positions[-1]}, beyond {n_frames} frames")
        known = np.asarray([f.box for f in self.faces], dtype=np.float64)
        frames = np.arange(n_frames)
        out = np.stack([np.interp(frames, self.positions, known[:, k]) for k in range(4)], axis=1)
        out = _moving_average(out, smooth)
        return [(float(x1), float(y1), float(x2), float(y2)) for x1, y1, x2, y2 in out]


class _Live:
    """A track being built by ``link_tracks``."""

    def __init__(self, position: int, face: Face) -> None:
        self.positions = [position]
        self.faces = [face]

    def add(self, position: int, face: Face) -> None:
        self.positions.append(position)
        self.faces.append(face)


def _predicted(positions: Sequence[int], faces: Sequence[Face], t: int) -> Box:
    """Where a face last seen at ``positions[-1]`` would be in frame ``t`` moving on at its last velocity (per
    sampled frame, from its last two detections); its last box when it has one detection."""
    last = np.asarray(faces[-1].box, dtype=np.float64)
    if len(faces) < 2:
        return tuple(float(v) for v in last)  # type: ignore[return-value]
    velocity = (last - np.asarray(faces[-2].box)) / (positions[-1] - positions[-2])
    return tuple(float(v) for v in last + velocity * (t - positions[-1]))  # type: ignore[return-value]


def _match(tracks: Sequence[_Live], faces: Sequence[Face], iou_threshold: float, t: int = 0) -> list[tuple[int, int]]:
    """Optimal (track index, face index) pairs by IoU with each track's last box or its predicted box in frame
    ``t`` (the larger: the motion allowance); pairs under the threshold are dropped after the assignment."""
    from scipy.optimize import linear_sum_assignment

    if not tracks or not faces:
        return []
    ious = np.array(
        [[max(iou(tr.faces[-1].box, f.box), iou(_predicted(tr.positions, tr.faces, t), f.box)) for f in faces]
         for tr in tracks], dtype=np.float64,
    )  # fmt: skip
    rows, cols = linear_sum_assignment(1.0 - ious)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if ious[r, c] >= iou_threshold]


def link_tracks(
    detections: Sequence[Sequence[Face]], iou_threshold: float = 0.3, max_gap: int = 2, min_length: int = 1
) -> list[Track]:
    """Link the faces of consecutive sampled frames (``detections[i]`` = faces in frame ``i``) into tracks.

    Frame by frame, each frame's faces are matched to the live tracks by IoU with the track's last detected box,
    or with that box moved on at the track's last velocity (whichever overlaps more): an optimal assignment (``scipy.optimize.linear_sum_assignment`` on ``1 - IoU``), keeping pairs with
    ``IoU >= iou_threshold``. Unmatched faces start new tracks; a track that misses more than ``max_gap``
    consecutive frames ends (a later face starts a new track). Returns the tracks with ``length >= min_length``,
    longest first, then largest mean face area, then earliest start and box (so the result does not depend on
    the order of faces within a frame); ids are ``0, 1, ...`` in that order.

    A face missed for more than ``max_gap`` frames, or one that jumps, starts a new track here; ``join_tracks``
    joins such pieces of one person afterwards.
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    if max_gap < 0 or min_length < 1:
        raise ValueError(f"max_gap must be >= 0 and min_length >= 1, got {max_gap}, {min_length}")
    live: list[_Live] = []
    done: list[_Live] = []
    for t, faces in enumerate(detections):
        still = [tr for tr in live if t - tr.positions[-1] - 1 <= max_gap]
        done.extend(tr for tr in live if t - tr.positions[-1] - 1 > max_gap)
        live = still
        faces = list(faces)
        matched: set[int] = set()
        for ti, fi in _match(live, faces, iou_threshold, t):
            live[ti].add(t, faces[fi])
            matched.add(fi)
        live.extend(_Live(t, f) for fi, f in enumerate(faces) if fi not in matched)
    kept = [Track(-1, tr.positions, tr.faces) for tr in done + live if len(tr.positions) >= min_length]
    kept.sort(key=lambda tr: (-tr.length, -tr.area, tr.positions[0], tr.faces[0].box))
    for i, tr in enumerate(kept):
        tr.id = i
    return kept


def face_descriptor(image: Image.Image, box: Sequence[float]) -> np.ndarray:
    """A face's appearance ``[576]``: its square box as a 24x24 gray thumbnail, zero mean, unit length (a cheap
    look-alike check between pieces of tracks, not a face recognizer)."""
    left, top, right, bottom = square_box(box, 1.0, image.width, image.height)
    thumb = np.asarray(image.convert("L").resize((24, 24), Image.Resampling.BILINEAR, box=(left, top, right, bottom)),
                       dtype=np.float64).ravel()  # fmt: skip
    thumb -= thumb.mean()
    norm = float(np.linalg.norm(thumb))
    return thumb / norm if norm > 0 else thumb


def _look(track: Track, images: Sequence[Image.Image], end: bool) -> np.ndarray:
    """The mean descriptor of a track's three detections at its end (``end``) or its start, unit length."""
    picked = list(zip(track.positions, track.faces, strict=True))
    picked = picked[-3:] if end else picked[:3]
    mean = np.mean([face_descriptor(images[p], f.box) for p, f in picked], axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else mean


def _follows(a: Track, b: Track, max_jump: float) -> bool:
    """True when ``b`` starts where ``a``, moving on at its last velocity, would be: centre within ``max_jump``
    box sides (per sampled frame of gap, at least one) of the prediction, box side within a factor 1.5."""
    start = b.positions[0]
    pred = np.asarray(_predicted(a.positions, a.faces, start))
    first = np.asarray(b.faces[0].box)
    side_a, side_b = max(pred[2] - pred[0], pred[3] - pred[1]), max(first[2] - first[0], first[3] - first[1])
    if side_a <= 0 or side_b <= 0 or not 1 / 1.5 <= side_b / side_a <= 1.5:
        return False
    shift = np.hypot(*((first[:2] + first[2:]) / 2 - (pred[:2] + pred[2:]) / 2))
    return bool(shift <= max_jump * side_a * max(1, min(3, start - a.positions[-1] - 1)))


def join_tracks(
    tracks: Sequence[Track],
    images: Sequence[Image.Image] | None = None,
    max_jump: float = 0.5,
    min_similarity: float = 0.9,
) -> list[Track]:
    """Join the pieces of one person's track across the whole video, so one person keeps one id.

    Pieces are taken by start; a piece joins the track (among those that ended before it starts) that it
    continues: where that track's motion carries it (``_follows``: centre within ``max_jump`` box sides, similar
    size), or, where boxes jump (a missed stretch, a cut, a fast turn), whose face looks alike in ``images``
    (``face_descriptor`` cosine similarity >= ``min_similarity`` at the junction, size within a factor 1.5).
    Motion is tried first; among several candidates the nearest in time wins. Returns the joined tracks in
    ``link_tracks``' order with ids ``0, 1, ...``.
    """
    built: list[Track] = []
    for piece in sorted(tracks, key=lambda tr: (tr.positions[0], tr.id)):
        ended = [tr for tr in built if tr.positions[-1] < piece.positions[0]]
        ended.sort(key=lambda tr: -tr.positions[-1])  # the nearest in time first
        target = next((tr for tr in ended if _follows(tr, piece, max_jump)), None)
        if target is None and images is not None:
            look = _look(piece, images, end=False)
            for tr in ended:
                ratio = np.sqrt(piece.area / tr.area) if tr.area > 0 else 0.0
                if 1 / 1.5 <= ratio <= 1.5 and float(_look(tr, images, end=True) @ look) >= min_similarity:
                    target = tr
                    break
        if target is None:
            built.append(Track(-1, list(piece.positions), list(piece.faces)))
        else:
            target.positions.extend(piece.positions)
            target.faces.extend(piece.faces)
    built.sort(key=lambda tr: (-tr.length, -tr.area, tr.positions[0], tr.faces[0].box))
    for i, tr in enumerate(built):
        tr.id = i
    return built


def track_crops(
    images: Sequence[Image.Image], track: Track, margin: float = 1.3, size: int | None = 224, smooth: int = 0
) -> list[Image.Image]:
    """One RGB face crop per sampled frame along ``track.boxes(len(images), smooth)``.

    Each crop is ``faces.crop_face`` of the frame's box (``square_box``: a square of side
    ``margin * max(box width, box height)`` around the box centre, shifted to lie inside the frame, bicubic
    resize). ``size=None``: every crop is resized to the median square side over the track (rounded) instead of
    kept at its native size, so the crops of a clip all have one size and stack. ``images`` must all have one
    size.
    """
    if not images:
        return []
    sizes = {img.size for img in images}
    if len(sizes) != 1:
        raise ValueError(f"track_crops: frames of different sizes {sorted(sizes)}")
    if size is not None and size < 1:
        raise ValueError(f"size must be >= 1 or None, got {size}")
    width, height = images[0].size
    boxes = track.boxes(len(images), smooth)
    if size is None:
        squares = [square_box(b, margin, width, height) for b in boxes]
        size = int(np.floor(np.median([right - left for left, _, right, _ in squares]) + 0.5))
    score = track.score
    return [crop_face(img, Face(box, score), margin, size) for img, box in zip(images, boxes, strict=True)]
