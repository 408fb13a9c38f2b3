"""Videos -> clip folders of T frames (face tracks or whole frames): the cached preparation step for video data.

``prepare_clips(SRC, OUT)`` mirrors ``SRC``: images (and clip folders already there) are linked unchanged, and each
video becomes clip folders ``<stem>_<ext>_t<track>_c<clip>.clip/`` of T square frames (``00.png ...``) with a
``clip.json`` (source video, track, frame numbers, times, boxes). Frames are sampled uniformly over the video
(``stride=None``) or every k-th frame; with face settings, faces are detected on the sampled frames (MTCNN),
linked into tracks over the whole video (one per person from start to end, longest first:
``deepfake_lib.data.tracks``) and cropped along the track, so a clip follows one face through its T frames and
a person's clips share its track id; without face settings the frames
are resized and centre-cropped like the evaluation transform. ``clips_manifest.csv`` lists every clip with its
source, ``clips_report.json`` the videos that gave no clip and why. A re-run reuses unchanged videos.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from deepfake_lib.core.files import CLIP_INFO
from deepfake_lib.core.images import resize_center_crop
from deepfake_lib.core.runs import read_json

CLIP_FORMAT_VERSION = 2  # of the clip settings recorded with prepared clips (2: face tracks over the whole video)

if TYPE_CHECKING:
    from deepfake_lib.core.video import VideoFrame, VideoInfo
    from deepfake_lib.data.faces import FaceDetector


class ClipPrepError(ValueError):
    """Bad input for clip preparation (folders, settings); a one-line message."""


@dataclass(frozen=True)
class ClipSettings:
    """How videos become clips.

    ``frames``: T, frames per clip. ``clips``: at most this many clips per track, spread evenly over the video.
    ``stride``: None samples ``frames * clips`` frames uniformly over the whole video (clips cover its length);
    k takes every k-th frame for each clip (a clip spans ``(frames - 1) * k + 1`` frames of the file).
    ``size``: side of the square frames. ``faces``: None for whole frames, else ``{"margin", "keep",
    "min_score"}`` (keep "largest": the main track only; "all": every track long enough for a clip).
    """

    frames: int = 8
    clips: int = 2
    stride: int | None = None
    size: int = 224
    faces: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.frames < 1 or self.clips < 1 or self.size < 8 or (self.stride is not None and self.stride < 1):
            raise ClipPrepError(f"invalid clip settings {self}: frames, clips, stride >= 1 and size >= 8")
        if self.faces is not None and self.faces.get("keep", "largest") not in ("largest", "all"):
            raise ClipPrepError(f"faces keep must be 'largest' or 'all', got {self.faces.get('keep')!r}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "format": CLIP_FORMAT_VERSION}

    def frame_indices(self, n_frames: int) -> list[list[int]]:
        """Frame numbers of each clip window for a video of ``n_frames`` (uniform or strided), before tracking."""
        from deepfake_lib.core.video import sample_indices

        t = self.frames
        if self.stride is None:  # consecutive windows; a short video's windows overlap so its end is seen too
            picked = sample_indices(n_frames, num=t * self.clips)
            if len(picked) < t:
                return []
            n = min(self.clips, len(picked) - t + 1)
            starts = sorted({round((len(picked) - t) * i / max(1, n - 1)) for i in range(n)})
            return [picked[s : s + t] for s in starts]
        span = (t - 1) * self.stride + 1
        if n_frames < span:
            return []
        last = n_frames - span
        starts = sorted({round(last * i / max(1, self.clips - 1)) for i in range(self.clips)})
        return [[s + j * self.stride for j in range(t)] for s in starts]

    def sampled_frames(self, n_frames: int) -> list[int]:
        """Every frame number some clip window of ``frame_indices(n_frames)`` holds, sorted: what is decoded."""
        return sorted({i for window in self.frame_indices(n_frames) for i in window})


def has_videos(folder: str | os.PathLike[str]) -> bool:
    """True when any video file lies under ``folder``."""
    from deepfake_lib.core.video import list_video_files

    return Path(folder).is_dir() and bool(list_video_files(Path(folder)))


def read_clip_info(clip_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A clip folder's ``clip.json`` (source video, track, frames with index/time/box), or ``{}``."""
    return read_json(Path(clip_dir) / CLIP_INFO, default={}) or {}


# --------------------------------------------------------------------------- one video
@dataclass
class VideoClips:
    """The clips of one video: ``clips[i]`` = T square frames, ``info[i]`` = their ``clip.json`` content."""

    clips: list[list[Image.Image]]
    info: list[dict[str, Any]]
    reason: str = ""  # why there is no clip (no face, too short)
    video: VideoInfo | None = None  # the file's frame count, rate and size


def video_clips(
    path: str | os.PathLike[str],
    settings: ClipSettings,
    detector: FaceDetector | None = None,
    info: VideoInfo | None = None,
) -> VideoClips:
    """Read the frames ``settings`` asks for from one video and cut them into clips (face tracks or whole frames);
    ``info``: the video's ``probe_video``, when the caller has it already.

    Raises ``video.VideoError`` for a file that cannot be read; a video with no usable face track, or shorter
    than one clip, gives no clips and a ``reason``.
    """
    from deepfake_lib.core.video import probe_video, read_frames

    info = info or probe_video(path)
    windows = settings.frame_indices(info.frames)
    if not windows:
        return VideoClips([], [], f"too short: {info.frames} frame(s), a clip needs {settings.frames}", info)
    wanted = sorted({i for w in windows for i in w})
    frames = {f.index: f for f in read_frames(path, indices=wanted, info=info)}
    windows = [[i for i in w if i in frames] for w in windows]
    windows = [w for w in windows if len(w) == settings.frames]
    if not windows:
        reason = f"truncated: too few frames could be decoded for a clip of {settings.frames}"
        return VideoClips([], [], reason, info)
    if settings.faces is None:
        clips = [[resize_center_crop(frames[i].image, settings.size) for i in w] for w in windows]
        meta = [_clip_meta(info.fps, [frames[i] for i in w], 0, k, None) for k, w in enumerate(windows)]
        return VideoClips(clips, meta, video=info)
    cut = _face_clips(frames, windows, settings, info.fps, detector)
    cut.video = info
    return cut


def _face_clips(
    frames: dict[int, VideoFrame],
    windows: list[list[int]],
    settings: ClipSettings,
    fps: float,
    detector: FaceDetector | None,
) -> VideoClips:
    """Detect faces on every sampled frame, link them into tracks over the whole video (``link_tracks``, then
    ``join_tracks``: one id per person from start to end), and cut each window along each track seen in it."""
    from deepfake_lib.data.faces import Face, crop_face, no_face_reason, video_detector
    from deepfake_lib.data.tracks import join_tracks, link_tracks

    face = settings.faces or {}
    det = detector or video_detector(min_score=float(face.get("min_score", 0.9)))
    order = sorted(frames)
    images = [frames[i].image for i in order]
    position = {index: k for k, index in enumerate(order)}
    tracks = join_tracks(link_tracks(det.detect_batch(images)), images)
    if face.get("keep", "largest") == "largest":
        tracks = tracks[:1]  # the main person of the whole video
    margin = float(face.get("margin", 1.3))
    min_detections = max(1, (settings.frames + 1) // 2)
    boxes = {tr.id: tr.boxes(len(images), smooth=3) for tr in tracks}
    clips: list[list[Image.Image]] = []
    meta: list[dict[str, Any]] = []
    for k, window in enumerate(windows):
        where = [position[i] for i in window]
        for track in tracks:
            if len(set(track.positions) & set(where)) < min_detections:
                continue
            window_boxes = [boxes[track.id][p] for p in where]
            clips.append([crop_face(images[p], Face(b, track.score), margin, settings.size)
                          for p, b in zip(where, window_boxes, strict=True)])  # fmt: skip
            meta.append(_clip_meta(fps, [frames[i] for i in window], track.id, k, window_boxes))
    if not clips:
        return VideoClips([], [], f"{no_face_reason(det.min_score)} in at least {min_detections} of {settings.frames} "
                                  "frames of any clip window")  # fmt: skip
    return VideoClips(clips, meta)


def _clip_meta(
    fps: float, frames: list[VideoFrame], track: int, clip: int, boxes: list[tuple[float, ...]] | None
) -> dict[str, Any]:
    return {
        "track": track,
        "clip": clip,
        "fps": fps,
        "frames": [
            {"index": f.index, "time": round(f.time, 4), "box": None if boxes is None else [round(v, 1) for v in b]}
            for f, b in zip(frames, boxes or [None] * len(frames), strict=True)
        ],
    }
