"""Face detection (facenet-pytorch MTCNN), square face crops, and a cached crop-preparation step; a command line.

    python -m deepfake_lib.cli.faces SRC --out OUT [--margin 1.3] [--size 224 | --size 0] [--all-faces]
                                 [--min-score 0.9] [--device cpu]

``prepare_faces`` mirrors ``SRC``'s folder layout under ``OUT`` (``SRC/train/real/a.jpg`` ->
``OUT/train/real/a_face0.png``) and writes ``faces_manifest.csv`` (one row per crop), ``faces_report.json``
(counts, files with no face or unreadable, with the reason) and ``faces_config.json`` (the settings that a
re-run into the same folder must match; a re-run only processes new or changed files).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from PIL import Image

from deepfake_lib.core.images import to_rgb

if TYPE_CHECKING:
    from facenet_pytorch import MTCNN

DETECTOR_NAME = "facenet-pytorch MTCNN"
DETECT_LONG_SIDE = 960  # images with a longer side are searched for faces downscaled to it (boxes mapped back)
VIDEO_MIN_FACE = 1 / 24  # video frames: faces under this share of the long side are not searched (40 px at 960,
# 80 px in a 1080p frame: a 224 px crop of a smaller face is upsampled past showing blending artefacts)
BATCH_PIXELS = 8 * 1920 * 1080  # at most this many pixels go through MTCNN at once (eight 1080p frames)
PAD_SHARE = 0.25  # ``retry_padded``: the border on each side, as a share of the image's long side
PAD_GREY = 128  # ``retry_padded``: the border's value in every channel
PAD_MIN_FACE = 0.25  # ``retry_padded``: faces from this share of the image's short side (a face that fills the frame)
PAD_FACE_PIXELS = 64  # ``retry_padded``: a larger image is shrunk so that its smallest face searched is this large
# (MTCNN's last stage looks at faces at 48 px: as many tight crops are found, at half the cost on a 1080p frame)


@dataclass(frozen=True)
class Face:
    """One detected face: ``box`` = ``(x1, y1, x2, y2)`` in image pixels (inside the image), detector ``score``,
    and MTCNN's five ``landmarks`` ``((x, y), ...)`` in image pixels (eyes, nose tip, mouth corners; ``None`` when
    not known)."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...] | None = None

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])


def no_face_reason(min_score: float) -> str:
    """The reason recorded for an image without a face, e.g. ``no face found (MTCNN, min score 0.90)``."""
    return f"no face found (MTCNN, min score {min_score:.2f})"


class FaceDetector:
    """MTCNN face detector (built on first use): PIL image -> faces with ``score >= min_score``, largest first.

    ``work_size``: an image whose long side is longer is searched downscaled to that long side (a 1080p frame at
    960 px: MTCNN's image pyramid a third as large) and the boxes and landmarks are mapped back to its pixels;
    ``min_face_size`` counts at that working size. ``None`` searches every image at full resolution.
    ``min_face_share``: faces smaller than this share of the (working) long side are not searched either, which
    shrinks MTCNN's image pyramid (``VIDEO_MIN_FACE`` for video frames: at 960 px, 40 px faces and up, about
    1.8x faster than 20 px); the smallest face searched is the larger of the two.

    Two second looks, only at images in which the first search found no face (images with a face get exactly the
    first search's result and cost nothing more):

    - ``retry_full_resolution``: a downscaled image is searched again at full resolution, for the same face sizes
      (the minimum face size times the downscale factor, so the image pyramid is about as small): a face of
      100-150 px in a 1080p frame can score under ``min_score`` at 960 px and over it at full resolution.
    - ``retry_padded``: the (working-size) image is searched again inside a mid-grey border (``PAD_SHARE`` of its
      long side on every side), for faces of at least ``PAD_MIN_FACE`` of its short side (shrunk first so that
      those are ``PAD_FACE_PIXELS`` wide, where they are larger): MTCNN's refinement stages cut a face's box at
      the image edge and stretch what is left, so a tight face crop (the face fills the frame) scores low or is
      not found. Boxes and landmarks are mapped back to the image and clipped to it; a face centred in the border
      is dropped.
    """

    def __init__(
        self, device: str = "cpu", min_score: float = 0.9, min_face_size: int = 20,
        work_size: int | None = DETECT_LONG_SIDE, min_face_share: float = 0.0,
        retry_full_resolution: bool = True, retry_padded: bool = True,
    ) -> None:  # fmt: skip
        if work_size is not None and work_size < 32:
            raise ValueError(f"work_size must be >= 32 pixels or None, got {work_size}")
        if not 0.0 <= min_face_share < 0.5:
            raise ValueError(f"min_face_share must be in [0, 0.5), got {min_face_share}")
        self.device = str(device)
        self.min_score = float(min_score)
        self.min_face_size = int(min_face_size)
        self.work_size = work_size
        self.min_face_share = float(min_face_share)
        self.retry_full_resolution = bool(retry_full_resolution)
        self.retry_padded = bool(retry_padded)
        self._mtcnn: MTCNN | None = None

    @property
    def search(self) -> str:
        """The searches this detector makes, e.g. ``downscaled, full resolution, padded``: a cache of "no face"
        results made by another search (an older version, other retries) looks again."""
        steps = ["downscaled" if self.work_size is not None else "full resolution"]
        if self.retry_full_resolution and self.work_size is not None:
            steps.append("full resolution")
        if self.retry_padded:
            steps.append("padded")
        return ", ".join(steps)

    @property
    def mtcnn(self) -> MTCNN:
        if self._mtcnn is None:
            from facenet_pytorch import MTCNN

            from deepfake_lib.core.device import resolve_device

            dev = resolve_device(self.device)
            self._mtcnn = MTCNN(keep_all=True, device=dev, min_face_size=self.min_face_size)
        return self._mtcnn

    def detect(self, image: Image.Image) -> list[Face]:
        """Faces in one image (any PIL mode), largest area first; ``[]`` when none or the image is too small."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence[Image.Image], batch_size: int = 8) -> list[list[Face]]:
        """``detect`` for many images: equally sized images go through MTCNN together, ``batch_size`` at a time
        (fewer when they are large: at most ``BATCH_PIXELS`` pixels), in each search.

        An image whose short side (at the working size) is under ``min_face_size`` pixels (MTCNN's image pyramid
        would be empty) gets ``[]``.
        """
        full = [to_rgb(img) for img in images]
        work = [self._working(img) for img in full]
        out: list[list[Face]] = [[] for _ in full]
        searched = [i for i, (img, _) in enumerate(work) if min(img.size) >= max(1, self.min_face_size)]
        min_face = {i: self._min_face(work[i][0]) for i in searched}
        self._search([_Search(i, work[i][0], min_face[i], work[i][1]) for i in searched], full, out, batch_size)
        if self.retry_full_resolution:
            again = [i for i in searched if not out[i] and work[i][1] != 1.0]
            jobs = [_Search(i, full[i], round(min_face[i] * work[i][1]), 1.0) for i in again]
            self._search(jobs, full, out, batch_size)
        if self.retry_padded:
            jobs = [self._padded(i, *work[i], min_face[i]) for i in searched if not out[i]]
            self._search(jobs, full, out, batch_size)
        return out

    def _min_face(self, image: Image.Image) -> int:
        """The smallest face searched in ``image`` (at the working size), in its pixels."""
        return max(self.min_face_size, round(self.min_face_share * max(image.size)))

    def _search(self, jobs: list[_Search], full: list[Image.Image], out: list[list[Face]], batch_size: int) -> None:
        """Run MTCNN on each job's image (grouped by size and smallest face) and put the faces found, in the pixels
        of ``full[job.index]``, into ``out[job.index]``."""
        groups: dict[tuple[tuple[int, int], int], list[_Search]] = {}
        for job in jobs:
            groups.setdefault((job.image.size, job.min_face), []).append(job)
        for ((width, height), min_face), group in groups.items():
            self.mtcnn.min_face_size = min_face
            step = max(1, min(batch_size, BATCH_PIXELS // (width * height)))
            for start in range(0, len(group), step):
                chunk = group[start : start + step]
                boxes, probs, points = self.mtcnn.detect([job.image for job in chunk], landmarks=True)
                for job, b, p, pts in zip(chunk, boxes, probs, points, strict=True):
                    out[job.index] = self._faces(b, p, *full[job.index].size, pts, job.scale, job.pad)

    def _padded(self, index: int, image: Image.Image, scale: float, min_face: int) -> _Search:
        """The search of ``image`` (at the working size) inside a border: see ``retry_padded``."""
        smallest = max(min_face, round(PAD_MIN_FACE * min(image.size)))
        if smallest > PAD_FACE_PIXELS:  # shrunk so that the smallest face searched is PAD_FACE_PIXELS
            factor = PAD_FACE_PIXELS / smallest
            size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
            scale *= image.width / size[0]
            image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
            smallest = PAD_FACE_PIXELS
        pad = max(1, round(PAD_SHARE * max(image.size)))
        # A mid-grey border: MTCNN maps 127.5 to 0, so the border looks like the zero padding its stages were
        # trained with. On crops to 70% of the face box of DFDC and real-and-fake-face photos, which the first
        # search missed, it finds more faces than a repeated (edge), mirrored or black border (87 of 97 against 67,
        # 70 and 59), and unlike a mirrored border it draws no second half face.
        arr = np.pad(np.asarray(image), ((pad, pad), (pad, pad), (0, 0)), constant_values=PAD_GREY)
        return _Search(index, Image.fromarray(arr), smallest, scale, pad)

    def _working(self, image: Image.Image) -> tuple[Image.Image, float]:
        """``image`` at the working size and the factor from its pixels to the original's (1.0: unchanged)."""
        long_side = max(image.size)
        if self.work_size is None or long_side <= self.work_size:
            return image, 1.0
        factor = self.work_size / long_side
        size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
        small = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        return small, image.width / size[0]

    def _faces(
        self, boxes: Any, probs: Any, width: int, height: int, points: Any = None, scale: float = 1.0, pad: int = 0
    ) -> list[Face]:
        """MTCNN's per-image output (``None`` or ``[N, 4]`` boxes, ``[N]`` probabilities, ``[N, 5, 2]`` landmarks;
        numpy *object* arrays under numpy 2) -> ``Face`` list with plain floats, boxes (less a ``pad`` border, then
        times ``scale``) clipped to the ``width x height`` image, largest first. With a ``pad`` border, a face
        centred outside the image is dropped and the landmarks are clipped to the image too."""
        if boxes is None:
            return []
        b = (np.asarray(boxes, dtype=np.float64).reshape(-1, 4) - pad) * scale
        p = np.asarray([np.nan if v is None else v for v in np.ravel(probs)], dtype=np.float64)
        marks: list[Any] = [None] * len(b)
        if points is not None and np.size(points) == len(b) * 10:
            marks = list((np.asarray(points, dtype=np.float64).reshape(-1, 5, 2) - pad) * scale)
        faces = []
        for (x1, y1, x2, y2), score, pts in zip(b, p, marks, strict=True):
            if not np.isfinite(score) or score < self.min_score:
                continue
            if pad and not (0 <= (x1 + x2) / 2 <= width and 0 <= (y1 + y2) / 2 <= height):
                continue
            x1, x2 = (float(np.clip(v, 0, width)) for v in (x1, x2))
            y1, y2 = (float(np.clip(v, 0, height)) for v in (y1, y2))
            if pts is not None and pad:
                pts = np.clip(pts, 0, (width, height))
            if x2 > x1 and y2 > y1:
                landmarks = None if pts is None else tuple((float(x), float(y)) for x, y in pts)
                faces.append(Face((x1, y1, x2, y2), float(score), landmarks))
        return sorted(faces, key=lambda f: f.area, reverse=True)


class _Search(NamedTuple):
    """One image for MTCNN: ``image`` (the original, downscaled or padded) of the ``index``-th input, the smallest
    face searched in its pixels, and how its pixels map back to the input's: less ``pad``, times ``scale``."""

    index: int
    image: Image.Image
    min_face: int
    scale: float
    pad: int = 0


def video_detector(device: str = "cpu", min_score: float = 0.9) -> FaceDetector:
    """The ``FaceDetector`` for video frames: at ``DETECT_LONG_SIDE``, faces from ``VIDEO_MIN_FACE`` of the frame."""
    return FaceDetector(str(device), float(min_score), min_face_share=VIDEO_MIN_FACE)


def square_box(box: Sequence[float], margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """A square ``(left, top, right, bottom)`` (right/bottom exclusive, as ``Image.crop`` takes it) around ``box``.

    Centred on the box centre with side ``margin * max(box width, box height)``, then shifted (not cut) to lie
    inside the ``width x height`` image. A side larger than ``min(width, height)`` is shrunk to it: the crop
    never pads or invents pixels, so near a border the face is off centre, and a face larger than the short side
    is cut.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    side = margin * max(x2 - x1, y2 - y1)
    side = int(min(max(1, round(side)), min(width, height)))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left = int(min(max(0, round(cx - side / 2)), width - side))
    top = int(min(max(0, round(cy - side / 2)), height - side))
    return left, top, left + side, top + side


def crop_face(image: Image.Image, face: Face, margin: float = 1.3, size: int | None = 224) -> Image.Image:
    """The ``square_box`` crop of ``face`` as RGB, resized to ``size x size`` (bicubic, antialiased when
    shrinking) unless ``size`` is None (native resolution)."""
    rgb = to_rgb(image)
    crop = rgb.crop(square_box(face.box, margin, rgb.width, rgb.height))
    if size is not None and crop.size != (size, size):
        crop = crop.resize((size, size), Image.Resampling.BICUBIC)
    return crop
