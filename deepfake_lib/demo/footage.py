"""Real-resolution test footage: a camera panning and zooming over a large photo with a face, at 720p or 1080p.

The demo videos are 128 px squares; users score 1280x720 and 1920x1080 camera files. ``write_footage`` writes
such a file offline: skimage's astronaut enlarged onto a wide canvas (the other bundled photos around it), a 16:9
window wandering and zooming over it with the face always inside (about a quarter of the frame height), encoded
as H.264 with B-frames and a keyframe every 2 s like a camera's (PyAV's libx264), or MPEG-4 Part 2 through
OpenCV where PyAV is missing. For speed and seeking tests, not a benchmark of detection.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from deepfake_lib.core.runs import atomic_write
from deepfake_lib.demo.photos import photo_paths
from deepfake_lib.demo.videos import ASTRONAUT_KEEP_BOX

SCALE = 2.4  # the astronaut's enlargement on the canvas: its 140 px face becomes about 340 px


def footage_canvas() -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A wide canvas ``[H, W, 3]`` uint8 (the astronaut enlarged in the middle, two other photos beside it) and
    the box (x1, y1, x2, y2) of the face with margin on it."""
    paths = photo_paths()
    side = round(512 * SCALE)
    face = Image.open(paths["astronaut"]).convert("RGB").resize((side, side), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (side * 2, side), (40, 40, 40))
    for name, x in (("coffee", 0), ("chelsea", side + side // 2)):
        other = Image.open(paths[name]).convert("RGB").resize((side // 2, side), Image.Resampling.BICUBIC)
        canvas.paste(other, (x, 0))
    canvas.paste(face, (side // 2, 0))
    x1, y1, x2, y2 = ASTRONAUT_KEEP_BOX
    offset = side // 2
    return np.asarray(canvas), (x1 * SCALE + offset, y1 * SCALE, x2 * SCALE + offset, y2 * SCALE)


def footage_windows(
    canvas_size: tuple[int, int], keep: tuple[float, ...], n_frames: int, aspect: float, seed: int = 0
) -> np.ndarray:
    """``[n_frames, 4]`` windows (x1, y1, x2, y2) of aspect ``aspect`` (width / height) on a ``(width, height)``
    canvas: the window height zooms smoothly between 1.7x and 2.3x the ``keep`` box's height and its centre
    wanders, always holding ``keep`` and staying on the canvas."""
    rng = np.random.default_rng(seed)
    width, height = canvas_size
    t = np.linspace(0.0, 1.0, n_frames)
    need = keep[3] - keep[1]
    h = np.minimum(need * (2.0 + 0.3 * np.sin(2 * np.pi * (t * rng.uniform(0.7, 1.3) + rng.uniform()))), height)
    h = np.minimum(h, width / aspect)
    w = h * aspect
    cx0, cy0 = (keep[0] + keep[2]) / 2, (keep[1] + keep[3]) / 2
    cx = cx0 + 0.15 * w * np.sin(2 * np.pi * (t * rng.uniform(0.5, 1.0) + rng.uniform()))
    cy = cy0 + 0.08 * h * np.sin(2 * np.pi * (t * rng.uniform(0.5, 1.0) + rng.uniform()))
    cx = np.clip(np.clip(cx, keep[2] - w / 2, keep[0] + w / 2), w / 2, width - w / 2)
    cy = np.clip(np.clip(cy, keep[3] - h / 2, keep[1] + h / 2), h / 2, height - h / 2)
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def footage_frames(width: int, height: int, n_frames: int, seed: int = 0) -> Iterator[np.ndarray]:
    """The frames ``[height, width, 3]`` uint8 of the footage, one at a time (1080p frames are 6 MB each)."""
    canvas, keep = footage_canvas()
    pil = Image.fromarray(canvas)
    for box in footage_windows(pil.size, keep, n_frames, width / height, seed):
        yield np.asarray(pil.resize((width, height), Image.Resampling.BILINEAR, box=tuple(float(v) for v in box)))


def write_footage(
    path: str | os.PathLike[str], width: int = 1920, height: int = 1080, seconds: float = 4.0, fps: float = 25.0,
    seed: int = 0,
) -> Path:  # fmt: skip
    """Write the footage to ``path`` (``.mp4``), atomically: H.264 (B-frames, a keyframe every 2 s) through PyAV,
    else MPEG-4 Part 2 through OpenCV. Returns ``path``."""
    path = Path(path)
    n = max(1, round(seconds * fps))
    try:
        import av  # noqa: F401
    except ImportError:
        from deepfake_lib.core.video import write_video

        return write_video(path, footage_frames(width, height, n, seed), fps)

    def encode(tmp: Path) -> None:
        import av

        with av.open(str(tmp), "w", format="mp4") as out:
            stream = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"preset": "veryfast", "crf": "26", "g": str(round(2 * fps)), "bf": "2"}
            for frame in footage_frames(width, height, n, seed):
                out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            out.mux(stream.encode(None))

    atomic_write(path, encode, suffix=path.suffix)
    return path
