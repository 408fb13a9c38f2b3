"""Where a video's scoring time goes: reading the sampled frames, finding and tracking the faces, the model.

``time_video`` runs the three stages of ``predict_video`` one after another on one file (reading the frames
alone, then cutting the clips, which reads again and adds the faces, then the whole prediction) and reports
each stage's share by difference, with the video's length so the cost reads per 10 s of footage.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deepfake_lib.data.clips import ClipSettings
    from deepfake_lib.data.faces import FaceDetector
    from deepfake_lib.predict.predictors import Predictor


@dataclass(frozen=True)
class VideoTiming:
    """Seconds for one video: ``decode`` (the sampled frames), ``faces`` (detection, tracks, crops), ``model``
    (every frame and clip scored, Grad-CAM of the top frame when asked), ``total``; ``frames`` sampled frames of
    a ``duration``-second video at ``width x height``."""

    frames: int
    duration: float
    width: int
    height: int
    decode: float
    faces: float
    model: float
    total: float

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.total

    @property
    def seconds_per_10s(self) -> float:
        """Scoring seconds per 10 s of video."""
        return self.total / self.duration * 10

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "frames_per_s": self.frames_per_s, "seconds_per_10s": self.seconds_per_10s}


def time_video(
    predictor: Predictor,
    path: str | os.PathLike[str],
    settings: ClipSettings,
    detector: FaceDetector | None = None,
    heatmap: bool = True,
    repeats: int = 1,
) -> VideoTiming:
    """Time ``predict_video(predictor, path, settings, detector, heatmap)`` stage by stage (medians over
    ``repeats`` runs; run it once before to leave start-up costs out)."""
    from deepfake_lib.core.video import probe_video, read_frames
    from deepfake_lib.data.clips import video_clips
    from deepfake_lib.predict.video import predict_video

    info = probe_video(path)
    wanted = settings.sampled_frames(info.frames)
    stages: dict[str, list[float]] = {"decode": [], "cut": [], "total": []}
    for _ in range(max(1, repeats)):
        for name, run in (
            ("decode", lambda: read_frames(path, indices=wanted, info=info)),
            ("cut", lambda: video_clips(path, settings, detector)),
            ("total", lambda: predict_video(predictor, path, settings, detector, heatmap=heatmap)),
        ):
            t0 = time.perf_counter()
            run()
            stages[name].append(time.perf_counter() - t0)
    decode, cut, total = (statistics.median(stages[k]) for k in ("decode", "cut", "total"))
    return VideoTiming(len(wanted), info.duration, info.width, info.height, decode, max(0.0, cut - decode),
                       max(0.0, total - cut), total)  # fmt: skip
