"""One video -> a verdict: sampled frames, face tracks, clips through the LSTM, per-frame scores, a timeline.

``predict_video`` cuts the video the way the model's training data was cut (the checkpoint's ``clips`` settings:
T, sampling, face tracks or whole frames; ``video_frames`` sets how many frames in all, as many clips of T as
fit), scores every clip with the LSTM over its T frames and every frame alone (T = 1), and pools them by every
rule of ``evaluation.aggregate`` (all are reported). The rule that decides is ``aggregate``: by default the LSTM
clip score for a model trained on clips (``config.frames > 1``), else ``aggregate.DEFAULT_FRAME_RULE``. The
decision uses the checkpoint's threshold for that rule (chosen by 03 on the validation videos) when there is one.
Grad-CAM explains the most suspicious frame.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from deepfake_lib.data.clips import ClipSettings, video_clips
from deepfake_lib.evaluation.aggregate import decisive_rule, frame_rules, track_mean_max

if TYPE_CHECKING:
    from deepfake_lib.data.faces import FaceDetector
    from deepfake_lib.predict.predictors import Predictor
    from deepfake_lib.predict.results import Prediction

TIMELINE_FILE = "timeline.png"
IMAGE_MODEL_FRAMES = 8  # clip length for a model trained on images only (its video score is the mean frame score)
VIDEO_FRAMES = 32  # frames a video is scored on by default (DeepfakeBench's and SBI's protocol)


class NoClipError(ValueError):
    """A readable video that gives no clip (no face track, or shorter than one clip)."""


@dataclass
class FrameScore:
    """One sampled frame of one track: frame number, time in seconds, FAKE probability scored alone, face box."""

    index: int
    time: float
    probability: float
    box: list[float] | None
    track: int
    clip: int


@dataclass
class VideoPrediction:
    """A video's verdict with its per-frame and per-clip scores, and Grad-CAM of the most suspicious frame."""

    path: str
    probability: float
    decision: str
    threshold: float
    aggregate: str  # which score decides: one of ``aggregate.VIDEO_SCORES``
    scores: dict[str, float]  # every rule of ``aggregate.VIDEO_SCORES`` (lstm: None without clips of T > 1)
    frames: list[FrameScore]
    clips: list[dict[str, Any]]  # track, clip, probability (LSTM), start, end (seconds)
    info: dict[str, Any] = field(default_factory=dict)  # frames, fps, duration of the file
    top: Prediction | None = None  # the most suspicious frame (its crop), with its heatmap
    crops: list[Image.Image] = field(default_factory=list, repr=False)  # what the model saw, one per ``frames``

    @property
    def top_frame(self) -> FrameScore:
        return max(self.frames, key=lambda f: f.probability)

    def to_dict(
        self, heatmap_path: str | os.PathLike[str] | None = None, timeline_path: str | os.PathLike[str] | None = None
    ) -> dict[str, Any]:
        """The command line's JSON: ``decision``, ``probability``, ``heatmap`` as for an image, then ``frames``
        (time, probability, box per sampled frame), ``clips``, ``scores``, ``aggregate``, ``timeline``, ``video``."""
        return {
            "decision": self.decision,
            "probability": round(float(self.probability), 4),
            "heatmap": None if heatmap_path is None else str(heatmap_path),
            "frames": [
                {"time": round(f.time, 3), "probability": round(f.probability, 4), "box": f.box, "track": f.track}
                for f in self.frames
            ],
            "clips": [{**c, "probability": round(c["probability"], 4)} for c in self.clips],
            "scores": {k: None if v is None else round(float(v), 4) for k, v in self.scores.items()},
            "aggregate": self.aggregate,
            "timeline": None if timeline_path is None else str(timeline_path),
            "video": self.info,
        }


def settings_for(predictor: Predictor, faces: bool | None = None, video_frames: int | None = None) -> ClipSettings:
    """How to cut a video for this model: its checkpoint's ``clips`` settings when it was trained on videos, else
    ``IMAGE_MODEL_FRAMES``-frame clips at the model's input size; face tracks when the model was trained on faces or
    ``faces`` is True (``False`` forces whole frames). ``video_frames``: score that many frames (as many clips of
    T per track as fit, at least one; sampled uniformly unless the checkpoint samples with a stride); None keeps
    the stored number of clips."""
    stored = dict(predictor.clip_settings or {})
    stored.pop("format", None)
    settings = ClipSettings(**stored) if stored else ClipSettings(frames=IMAGE_MODEL_FRAMES, size=predictor.image_size)
    if video_frames is not None:
        if isinstance(video_frames, bool) or int(video_frames) < 1:
            raise ValueError(f"video_frames must be a positive number of frames, got {video_frames!r}")
        settings = replace(settings, clips=max(1, int(video_frames) // settings.frames))
    use_faces = (settings.faces is not None or predictor.trained_on_faces) if faces is None else faces
    if use_faces and settings.faces is None:
        settings = replace(settings, faces={"margin": predictor.face_margin, "keep": "largest", "min_score": 0.9})
    elif not use_faces and settings.faces is not None:
        settings = replace(settings, faces=None)
    return settings


def frames_cap(n_frames: int) -> int:
    """The most frames worth asking of a video of ``n_frames``: its length, or ``VIDEO_FRAMES`` for a shorter one
    (whose clip windows overlap so its end is seen too)."""
    return max(int(n_frames), VIDEO_FRAMES)


def capped_to_video(settings: ClipSettings, n_frames: int) -> ClipSettings:
    """``settings`` asking for at most ``frames_cap(n_frames)`` frames: beyond that, clips that cover the video
    once (more would score the same frames again, in windows shifted by one frame, for no new evidence)."""
    if settings.stride is None and settings.clips * settings.frames > frames_cap(n_frames):
        return replace(settings, clips=max(1, -(-int(n_frames) // settings.frames)))
    return settings


pool_tracks = track_mean_max  # the mean probability per track, then the most suspicious track


def predict_video(
    predictor: Predictor,
    path: str | os.PathLike[str],
    settings: ClipSettings | None = None,
    detector: FaceDetector | None = None,
    heatmap: bool = True,
    batch_size: int = 16,
    aggregate: str = "auto",
) -> VideoPrediction:
    """Score one video (see the module docstring) cut by ``settings`` (default: ``settings_for`` on
    ``VIDEO_FRAMES`` frames). Raises ``video.VideoError`` for an unreadable file and
    ``NoClipError`` when no clip can be cut (no face, too short); ``ValueError`` for an unknown ``aggregate``."""
    import torch

    from deepfake_lib.core.video import probe_video

    rule = decisive_rule(aggregate, predictor.model.config.frames)
    settings = settings or settings_for(predictor, video_frames=VIDEO_FRAMES)
    info = probe_video(path)
    cut = video_clips(path, capped_to_video(settings, info.frames), detector, info)
    if not cut.clips:
        raise NoClipError(f"{path}: no clip: {cut.reason}")
    x = torch.stack([torch.stack([predictor.transform(f) for f in clip]) for clip in cut.clips])  # [N, T, 3, S, S]
    n, t = x.shape[:2]
    frame_probs, _ = predictor.score(x.flatten(0, 1).unsqueeze(1), heatmaps=False, batch_size=batch_size)
    frame_probs = frame_probs.reshape(n, t)
    clip_probs = None
    if predictor.model.config.frames > 1:
        clip_probs, _ = predictor.score(x, heatmaps=False, batch_size=max(1, batch_size // t))
    frames, clips = [], []
    crops: list[Image.Image] = []
    seen: set[tuple[int, int]] = set()  # a short video's clip windows overlap: each frame of a track once
    for k, meta in enumerate(cut.info):
        for j, fr in enumerate(meta["frames"]):
            if (meta["track"], fr["index"]) in seen:
                continue
            seen.add((meta["track"], fr["index"]))
            frames.append(FrameScore(fr["index"], fr["time"], float(frame_probs[k, j]), fr["box"], meta["track"], k))
            crops.append(cut.clips[k][j])
        clips.append({
            "track": meta["track"], "clip": k, "start": meta["frames"][0]["time"], "end": meta["frames"][-1]["time"],
            "probability": float(clip_probs[k]) if clip_probs is not None else float(frame_probs[k].mean()),
        })  # fmt: skip
    tracks = [m["track"] for m in cut.info]
    scores = {
        "lstm": track_mean_max(tracks, list(clip_probs)) if clip_probs is not None else None,
        **frame_rules([f.track for f in frames], [f.index for f in frames], [f.probability for f in frames]),
    }
    probability = float(scores[rule])
    threshold = predictor.video_threshold_for(rule)
    result = VideoPrediction(
        path=str(path), probability=probability, decision=predictor.decide(probability, threshold),
        threshold=threshold, aggregate=rule, scores=scores, frames=frames, clips=clips,
        info={"frames": cut.video.frames, "fps": round(cut.video.fps, 3), "duration": round(cut.video.duration, 3)},
        crops=crops,
    )  # fmt: skip
    top = int(np.argmax([f.probability for f in frames]))
    result.top = predictor.predict([crops[top]], heatmaps=heatmap)[0]
    return result


def most_suspicious(result: VideoPrediction, n: int = 3) -> list[int]:
    """Positions (into ``result.frames``) of the ``n`` highest-scoring frames, highest first."""
    order = np.argsort([-f.probability for f in result.frames], kind="stable")
    return [int(i) for i in order[:n]]


def split_videos(data_dir: str | os.PathLike[str], split: str) -> list[tuple[Path, int]]:
    """The videos of ``data_dir/split`` with their label (REAL = 0, FAKE = 1): the source videos of its clip
    folders (from their ``clip.json``), and video files lying there unprepared; sorted, each once."""
    from deepfake_lib.core.files import is_clip_dir
    from deepfake_lib.core.images import list_samples
    from deepfake_lib.core.video import list_video_files
    from deepfake_lib.data.clips import read_clip_info
    from deepfake_lib.data.scan import find_class_dirs

    split_dir = Path(data_dir) / split
    if not split_dir.is_dir():
        return []
    found: dict[Path, int] = {}
    for label, folder in find_class_dirs(split_dir).items():
        for item in list_samples(folder)[0]:
            if is_clip_dir(item) and (source := read_clip_info(item).get("source_path")) and Path(source).is_file():
                found.setdefault(Path(source), label)
        for video in list_video_files(folder):
            found.setdefault(video, label)
    return sorted(found.items())


def write_outputs(result: VideoPrediction, out: str | os.PathLike[str]) -> tuple[Path | None, Path]:
    """Write ``gradcam.png`` (the most suspicious frame's heatmap, when there is one) and ``timeline.png``."""
    from deepfake_lib.core.runs import save_figure_file
    from deepfake_lib.explain.heatmaps import save_overlay
    from deepfake_lib.predict.results import HEATMAP_FILE

    out = Path(out)
    heatmap_path = None
    if result.top is not None and result.top.heatmap is not None and result.top.image is not None:
        heatmap_path = save_overlay(result.top.image, result.top.heatmap, out / HEATMAP_FILE)
    import matplotlib.pyplot as plt

    fig = timeline_figure(result)
    timeline = save_figure_file(fig, out / TIMELINE_FILE)
    plt.close(fig)
    return heatmap_path, timeline


def timeline_figure(result: VideoPrediction) -> Any:
    """``video_plots.video_timeline`` of a prediction."""
    from deepfake_lib.report.video_plots import video_timeline

    frames = [{"time": f.time, "probability": f.probability, "track": f.track} for f in result.frames]
    title = f"{Path(result.path).name}: {result.decision} ({result.aggregate} {result.probability:.2f})"
    return video_timeline(frames, result.clips, result.threshold, result.probability, title)


@dataclass
class VideoBatch:
    """Verdicts for several videos (``results`` with their ``labels``; -1 = unknown) and the videos that failed."""

    results: list[VideoPrediction]
    labels: list[int]
    errors: list[tuple[str, str]]

    def __bool__(self) -> bool:
        return bool(self.results)

    def table(self) -> Any:
        """One row per video: name, label, decision, probability and every rule's score."""
        import pandas as pd

        from deepfake_lib import CLASS_NAMES

        rows = [
            {
                "video": Path(r.path).name,
                "label": CLASS_NAMES[y] if y in (0, 1) else "?",
                "decision": r.decision,
                "probability": r.probability,
                **{k: v for k, v in r.scores.items()},
                "frames": len(r.frames),
                "clips": len(r.clips),
            }
            for r, y in zip(self.results, self.labels, strict=True)
        ]
        return pd.DataFrame(rows)

    def focus(self) -> VideoPrediction:
        """The video to look at closely: the most suspicious FAKE-labelled one, else the most suspicious."""
        fakes = [r for r, y in zip(self.results, self.labels, strict=True) if y == 1]
        return max(fakes or self.results, key=lambda r: r.probability)

    def record(self) -> dict[str, Any]:
        """For metrics.json."""
        return {
            "videos": self.table().to_dict(orient="records"),
            "errors": [{"path": p, "reason": r} for p, r in self.errors],
        }


def predict_videos(
    predictor: Predictor,
    videos: list[tuple[Path, int]],
    faces: bool | None = None,
    detector: FaceDetector | None = None,
    progress: bool = True,
    video_frames: int | None = VIDEO_FRAMES,
    aggregate: str = "auto",
) -> VideoBatch:
    """``predict_video`` for each ``(path, label)`` on ``video_frames`` frames each (``settings_for``);
    unreadable videos and videos without a clip are listed in ``errors`` with the reason, the rest go on."""
    from tqdm.auto import tqdm

    from deepfake_lib.core.video import VideoError

    settings = settings_for(predictor, faces, video_frames)
    decisive_rule(aggregate, predictor.model.config.frames)  # a wrong name fails before the first video
    results, labels, errors = [], [], []
    for path, label in tqdm(videos, desc="videos", disable=not progress):
        try:
            results.append(predict_video(predictor, path, settings, detector, aggregate=aggregate))
            labels.append(int(label))
        except (VideoError, NoClipError) as exc:
            errors.append((str(path), getattr(exc, "reason", None) or str(exc)))
    return VideoBatch(results, labels, errors)


def frames_figure(result: VideoPrediction, max_frames: int = 16) -> Any:
    """The sampled frames (face crops) of one video with their time and FAKE probability, in time order."""
    from deepfake_lib.report.video_plots import frame_strip

    picked = np.linspace(0, len(result.frames) - 1, min(max_frames, len(result.frames))).round().astype(int)
    frames = [result.frames[i] for i in picked]
    return frame_strip([result.crops[i] for i in picked], [f.probability for f in frames],
                       [f.time for f in frames], threshold=result.threshold)  # fmt: skip


def suspicious_frames_figure(predictor: Predictor, result: VideoPrediction, n: int = 3) -> Any:
    """Grad-CAM of the ``n`` most suspicious frames of a video, highest first."""
    from deepfake_lib.explain.heatmaps import overlay
    from deepfake_lib.report.video_plots import frame_strip

    top = most_suspicious(result, n)
    preds = predictor.predict([result.crops[i] for i in top], heatmaps=True)
    pictures = [overlay(p.image, p.heatmap) for p in preds]
    return frame_strip(pictures, [result.frames[i].probability for i in top], [result.frames[i].time for i in top],
                       thumb=2.2, threshold=result.threshold)  # fmt: skip
