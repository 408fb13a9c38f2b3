"""Sampled video frames through PyAV: seek to a keyframe where that decodes fewer frames than reading on.

``FrameIndex`` lists a file's frames by presentation timestamp and its keyframes, from the packets alone (no
decoding: milliseconds for a minute of 1080p). ``plan_runs`` splits the wanted frames into runs: each run starts
with a seek to the keyframe before its first frame, or reads on from where the decoder stands, whichever decodes
fewer frames (a seek costs ``SEEK_COST`` frames more). ``read_sampled`` decodes the runs with FFmpeg's threads and
converts only the wanted frames to RGB. A frame is known by its timestamp, so a frame reached by seeking is the
one sequential decoding gives; where the decoder does not land where the index says (a seek that cannot be
trusted, a file without timestamps, a decoding error), ``SeekError`` tells the caller to decode the rest in order.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SEEK_COST = 12  # one seek costs about this many frames of decoding (flushing the decoder, demuxing again)


class SeekError(RuntimeError):
    """PyAV could not give the wanted frames by timestamp; the caller reads the rest in order."""


def pyav_available() -> bool:
    """True when PyAV (``import av``) is installed."""
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class FrameIndex:
    """``pts[i]``: presentation timestamp of frame ``i`` (presentation order); ``keyframes``: frame numbers of the
    keyframes (a decoder can start there), ascending."""

    pts: list[int]
    keyframes: list[int]

    @property
    def frames(self) -> int:
        return len(self.pts)


def index_frames(container: Any, stream: Any) -> FrameIndex:
    """The ``FrameIndex`` of ``stream`` from its packets (demuxing only). ``SeekError`` when a packet has no
    timestamp or two share one (frames could not be told apart)."""
    pts: list[int] = []
    keys: list[int] = []
    for packet in container.demux(stream):
        if packet.size == 0:  # the flush packet at the end
            continue
        if packet.pts is None:
            raise SeekError("a packet without a presentation timestamp")
        pts.append(int(packet.pts))
        if packet.is_keyframe:
            keys.append(int(packet.pts))
    order = sorted(pts)
    if len(set(order)) != len(order):
        raise SeekError("two packets with one presentation timestamp")
    where = {p: i for i, p in enumerate(order)}
    return FrameIndex(order, sorted(where[k] for k in keys))


def plan_runs(
    wanted: Sequence[int], keyframes: Sequence[int], seek_cost: int = SEEK_COST
) -> list[tuple[int, list[int]]]:
    """Split sorted ``wanted`` frame numbers into runs ``(start, frames)``: decoding starts at keyframe ``start``
    (a seek; ``-1`` = read on from where the decoder stands, at the file's start for the first run).

    For each wanted frame, reading on from the previous one decodes ``w - previous`` frames and seeking to the last
    keyframe ``k <= w`` decodes ``w - k + 1`` plus ``seek_cost``; a seek is taken when it is cheaper.
    """
    runs: list[tuple[int, list[int]]] = []
    position = -1  # the last frame decoded
    for w in wanted:
        at = bisect.bisect_right(keyframes, w) - 1
        key = keyframes[at] if at >= 0 else 0
        if key > position + 1 and w - key + 1 + seek_cost < w - position:
            runs.append((key, [w]))
        elif runs:
            runs[-1][1].append(w)
        else:
            runs.append((-1, [w]))
        position = w
    return runs


def decoded_frame_count(runs: Sequence[tuple[int, list[int]]]) -> int:
    """How many frames ``runs`` decode (without the seeks' own cost): what ``plan_runs`` minimises."""
    total, position = 0, -1
    for start, frames in runs:
        first = start if start >= 0 else position + 1
        total += frames[-1] - first + 1
        position = frames[-1]
    return total


def read_sampled(path: str | os.PathLike[str], wanted: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame number, RGB [H, W, 3] uint8)`` for the sorted ``wanted`` frames that the file has, in order.

    Raises ``SeekError`` (after the frames it could give) when the decoder does not land where the index says or
    a packet does not decode; wanted frames beyond the file's last frame are not yielded.
    """
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise SeekError("PyAV finds no video stream")
            index = index_frames(container, container.streams.video[0])
        wanted = [w for w in wanted if 0 <= w < index.frames]
        if not wanted:
            return
        where = {p: i for i, p in enumerate(index.pts)}
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for start, frames in plan_runs(wanted, index.keyframes):
                if start >= 0:
                    container.seek(index.pts[start], stream=stream, backward=True, any_frame=False)
                yield from _decode_run(container, stream, where, start, frames)
    except av.FFmpegError as exc:
        raise SeekError(f"PyAV: {exc}") from exc


def _decode_run(
    container: Any, stream: Any, where: dict[int, int], start: int, frames: list[int]
) -> Iterator[tuple[int, np.ndarray]]:
    """Decode from the current position until the last of ``frames``, yielding those; ``SeekError`` when a frame
    has an unknown timestamp, or a seek lands after ``start`` or jumps past a wanted frame."""
    todo = iter(frames)
    target = next(todo)
    first = True
    for frame in container.decode(stream):
        number = where.get(frame.pts) if frame.pts is not None else None
        if number is None:
            raise SeekError(f"a decoded frame with timestamp {frame.pts} that the index does not have")
        if first and start >= 0 and number > start:
            raise SeekError(f"a seek to frame {start} landed on frame {number}")
        first = False
        if number < target:
            continue
        if number > target:
            raise SeekError(f"frame {target} was never decoded (the decoder gave {number})")
        yield number, frame.to_ndarray(format="rgb24")
        target = next(todo, -1)
        if target < 0:
            return
    raise SeekError(f"the decoder ended before frame {target}")
