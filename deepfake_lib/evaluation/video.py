"""Video-level verdicts: per-frame and per-clip scores of the clips of each video, pooled into one score per video.

The video scores of ``aggregate.VIDEO_SCORES`` are compared (as DeepfakeBench reports video AUC next to frame AUC):
the LSTM's clip score, and four rules over the frames scored alone (T = 1): the mean per track (most suspicious
track), the maximum, SBI's (most suspicious face per frame, mean over frames) and the DFDC winner's confident mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from torch import nn

from deepfake_lib.core.choices import BY_EVALUATION, BY_FINETUNING
from deepfake_lib.core.files import is_clip_dir
from deepfake_lib.core.images import clip_frame_files
from deepfake_lib.data.clips import read_clip_info
from deepfake_lib.data.scan import Sample
from deepfake_lib.evaluation.aggregate import VIDEO_SCORES, decisive_rule, frame_rules
from deepfake_lib.evaluation.inference import Predictions
from deepfake_lib.evaluation.metrics import basic_metrics, equal_error_rate

if TYPE_CHECKING:
    from deepfake_lib.evaluation.evaluate import ThresholdChoice

LEVELS = ("frame", "clip", *(f"video_{s}" for s in VIDEO_SCORES))
LEVEL_NAMES = {
    "frame": "frames (each alone, T = 1)",
    "clip": "clips (LSTM over T frames)",
    "video_lstm": "videos: LSTM clip score",
    "video_frame_mean": "videos: mean of frame scores",
    "video_frame_max": "videos: max of frame scores",
    "video_sbi": "videos: SBI (max face per frame, mean)",
    "video_confident_mean": "videos: DFDC confident mean",
}


@dataclass
class VideoEvaluation:
    """Per-frame, per-clip and per-video scores of the clips in one set of predictions.

    ``frames``: one row per frame (video, track, clip, frame file, label, probability); ``clips``: one row per clip
    (LSTM probability); ``videos``: one row per video with ``lstm``, ``frame_mean``, ``frame_max``.
    """

    frames: pd.DataFrame
    clips: pd.DataFrame
    videos: pd.DataFrame
    threshold: float  # the images' threshold: a level without its own in ``thresholds`` is decided at it
    thresholds: dict[str, float] = field(default_factory=dict)  # level -> its own threshold

    def level_scores(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``level -> (labels [N], probabilities [N])`` for each of ``LEVELS``."""
        out = {
            "frame": (self.frames["label"].to_numpy(), self.frames["probability"].to_numpy()),
            "clip": (self.clips["label"].to_numpy(), self.clips["probability"].to_numpy()),
        }
        for score in VIDEO_SCORES:
            out[f"video_{score}"] = (self.videos["label"].to_numpy(), self.videos[score].to_numpy())
        return out

    def reports(self) -> dict[str, dict[str, float]]:
        """``level -> {n, auc, balanced_accuracy, accuracy, eer, threshold}``, each level at its threshold."""
        reports = {}
        for level, (y, p) in self.level_scores().items():
            threshold = self.thresholds.get(level, self.threshold)
            m = basic_metrics(y, p, threshold)
            eer = equal_error_rate(y, p)[0] if len(np.unique(y)) == 2 else math.nan
            reports[level] = {"n": int(len(y)), "auc": m["auc"], "balanced_accuracy": m["balanced_accuracy"],
                              "accuracy": m["accuracy"], "eer": eer, "threshold": float(threshold)}  # fmt: skip
        return reports

    def table(self) -> pd.DataFrame:
        """The reports as a table, one row per level, in ``LEVELS`` order."""
        rows = [{"level": LEVEL_NAMES[k], **v} for k, v in self.reports().items()]
        return pd.DataFrame(rows).set_index("level")

    def to_record(self) -> dict[str, Any]:
        """For metrics.json: the reports, the threshold and the per-video scores."""
        return {
            "status": "done",
            "threshold": self.threshold,
            "thresholds": dict(self.thresholds),
            "levels": self.reports(),
            "videos": self.videos.to_dict(orient="records"),
        }


def clip_samples(preds: Predictions) -> list[int]:
    """Positions of the clip folders among ``preds.paths``."""
    return [i for i, p in enumerate(preds.paths) if is_clip_dir(p)]


def frame_predictions(model: nn.Module, clip_paths: list[str], labels: list[int], **kwargs: Any) -> Predictions:
    """Every frame of the given clips scored on its own (a sequence of T = 1), through ``predict_samples``."""
    from deepfake_lib.evaluation.evaluate import predict_samples

    samples = [Sample(f, y) for p, y in zip(clip_paths, labels, strict=True) for f in clip_frame_files(p)]
    return predict_samples(model, samples, desc="predict frames", **kwargs)


def evaluate_videos(
    model: nn.Module,
    preds: Predictions,
    threshold: float,
    thresholds: dict[str, float] | None = None,
    **kwargs: Any,
) -> VideoEvaluation | None:
    """Video-level evaluation of the clips in ``preds`` (the LSTM's clip probabilities, as 03 predicts them); None
    when ``preds`` holds no clip. Frames are scored again one by one (``kwargs`` go to ``predict_samples``).
    ``thresholds``: a threshold per level (``level_thresholds``), else every level is decided at ``threshold``."""
    idx = clip_samples(preds)
    if not idx:
        return None
    paths = [preds.paths[i] for i in idx]
    labels = [int(preds.labels[i]) for i in idx]
    info = {p: read_clip_info(p) for p in paths}
    clips = pd.DataFrame({
        "clip": paths,
        "video": [_video_key(p, info[p]) for p in paths],
        "track": [int(info[p].get("track", 0)) for p in paths],
        "label": labels,
        "probability": [float(preds.probs[i]) for i in idx],
    })  # fmt: skip
    fp = frame_predictions(model, paths, labels, **kwargs)
    parent = {str(f): str(Path(f).parent) for f in fp.paths}
    by_clip = clips.set_index("clip")
    frames = pd.DataFrame({
        "frame": fp.paths,
        "clip": [parent[str(f)] for f in fp.paths],
        "label": fp.labels.astype(int),
        "probability": fp.probs.astype(float),
    })  # fmt: skip
    frames["video"] = by_clip.loc[frames["clip"], "video"].to_numpy()
    frames["track"] = by_clip.loc[frames["clip"], "track"].to_numpy()
    index = {str(f): _frame_number(info[c], j, f) for c in paths for j, f in enumerate(clip_frame_files(c))}
    frames["index"] = [index.get(str(f), str(f)) for f in frames["frame"]]
    # a short video's clip windows overlap: each frame of a track counts once (as ``predict_video`` does)
    frames = frames.drop_duplicates(["video", "track", "index"]).reset_index(drop=True)
    return VideoEvaluation(frames, clips, pool_videos(clips, frames), float(threshold), dict(thresholds or {}))


def level_thresholds(
    evaluation: VideoEvaluation,
    method: str = "eer",
    target_fake_recall: float = 0.9,
    fixed: float = 0.5,
    split: str | None = None,
    target_fpr: float = 0.01,
) -> dict[str, ThresholdChoice]:
    """A threshold per level, chosen on ``evaluation`` (the threshold split's) the way 03 chooses the images'
    (``evaluate.choose_threshold``): frames scored alone, LSTM clips and pooled videos live on different scales,
    so one threshold for all would misjudge some of them."""
    from deepfake_lib.evaluation.evaluate import choose_threshold

    return {
        level: choose_threshold(y, p, method, target_fake_recall, fixed, split, target_fpr)
        for level, (y, p) in evaluation.level_scores().items()
    }


def video_level(frames: int, aggregate: str = "auto") -> str:
    """The level whose score decides a video (``aggregate.decisive_rule``) for a model trained on clips of
    ``frames``, as ``predict --video`` decides it."""
    return f"video_{decisive_rule(aggregate, frames)}"


def store_video_threshold(
    checkpoint_path: str | Path,
    choice: ThresholdChoice,
    level: str,
    chosen_by: str = BY_EVALUATION,
    levels: dict[str, float] | None = None,
) -> Path:
    """Write the video threshold into the checkpoint (``video_threshold``, ``video_threshold_info``), which
    ``predict --video`` uses; ``levels``: every video level's threshold (``video_thresholds``, for a
    ``--video-aggregate`` other than the deciding one). The images' ``threshold`` stays as it is."""
    from deepfake_lib.evaluation.evaluate import threshold_info
    from deepfake_lib.models.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(checkpoint_path)
    ckpt["video_threshold"] = float(choice.threshold)
    ckpt["video_threshold_info"] = {**threshold_info(choice), "level": level, "chosen_by": chosen_by}
    if levels is not None:
        ckpt["video_thresholds"] = {k: float(v) for k, v in levels.items() if k.startswith("video_")}
    return save_checkpoint(ckpt, checkpoint_path)


def pool_videos(clips: pd.DataFrame, frames: pd.DataFrame) -> pd.DataFrame:
    """One row per video: label, number of clips and frames, and every score of ``VIDEO_SCORES``."""
    rows = []
    clip_groups = clips.groupby("video", sort=True)
    frame_groups = dict(list(frames.groupby("video", sort=True)))
    for video, c in clip_groups:
        f = frame_groups.get(video, frames.iloc[0:0])
        lstm = c.groupby("track")["probability"].mean().max()
        names = f["index"] if "index" in f else f["frame"]  # which frame of the video each score is
        rules = (frame_rules(f["track"].tolist(), names.tolist(), f["probability"].tolist()) if len(f)
                 else dict.fromkeys(VIDEO_SCORES[1:], math.nan))  # fmt: skip
        labels = set(c["label"])
        if len(labels) > 1:
            raise ValueError(f"video {video} has clips with both labels; a video is REAL or FAKE")
        rows.append({
            "video": video, "label": int(labels.pop()), "clips": int(len(c)), "frames": int(len(f)),
            "lstm": float(lstm), **rules,
        })  # fmt: skip
    return pd.DataFrame(rows)


def _frame_number(info: dict[str, Any], position: int, frame: Path) -> int | str:
    """The video frame number of a clip's ``position``-th frame file (from ``clip.json``), else the file itself."""
    meta = info.get("frames") or []
    return int(meta[position]["index"]) if position < len(meta) else str(frame)


def _video_key(clip: str, info: dict[str, Any]) -> str:
    """The source video of a clip (from its ``clip.json``), else the clip folder itself."""
    return str(info.get("source_path") or info.get("source") or clip)


def refresh_video_threshold(
    checkpoint_path: str | Path,
    data_dir: str | Path,
    split: str = "val",
    device: str = "auto",
    chosen_by: str = BY_FINETUNING,
    **kwargs: Any,
) -> ThresholdChoice | None:
    """Choose and store the video threshold of a checkpoint on ``split``'s videos (after fine-tuning changed the
    model), by the method its image threshold was chosen with; None when ``split`` has no video clip."""
    from deepfake_lib.core.device import resolve_device
    from deepfake_lib.evaluation.evaluate import predict_split
    from deepfake_lib.models.checkpoint import checkpoint_tta, load_model

    model, ckpt = load_model(checkpoint_path, resolve_device(device))
    # score as its threshold and calibration were chosen
    kwargs.setdefault("tta", checkpoint_tta(ckpt, checkpoint_path))
    preds = predict_split(model, data_dir, split, **kwargs)
    evaluation = evaluate_videos(model, preds, float(ckpt.get("threshold", 0.5)), **kwargs)
    if evaluation is None:
        return None
    info = ckpt.get("threshold_info") or {}
    method = info.get("method") or "eer"
    target = info.get("target_fake_recall") or 0.9
    level = video_level(model.config.frames)
    choices = level_thresholds(
        evaluation, method, target, float(info.get("threshold", 0.5)), split, info.get("target_fpr") or 0.01
    )
    levels = {k: c.threshold for k, c in choices.items()}
    store_video_threshold(checkpoint_path, choices[level], level, chosen_by, levels)
    return choices[level]
