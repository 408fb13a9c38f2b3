"""argparse ``type=`` validators shared by the command lines: each turns bad text into a clear usage error."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from deepfake_lib.core.recipe import MIN_IMAGE_SIZE


def _parse(text: str, cast: type) -> float | int:
    """``text`` as ``cast``; NaN and infinity are refused (no check below them would catch a NaN)."""
    try:
        value = cast(text)
    except ValueError:
        kind = "an integer" if cast is int else "a number"
        raise argparse.ArgumentTypeError(f"not {kind}: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def positive_float(text: str) -> float:
    """A number > 0 (a margin, a scale)."""
    value = _parse(text, float)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def unit_interval(text: str) -> float:
    """A number in [0, 1] (a threshold, a detector score)."""
    value = _parse(text, float)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (a batch size)."""
    value = _parse(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def size_or_native(text: str) -> int:
    """A pixel size >= 0, where 0 means the native size."""
    value = _parse(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0 = native size), got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (a count where 0 means none)."""
    value = _parse(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def workers(text: str) -> int:
    """DataLoader workers: an integer >= 0, or -1 for the automatic choice."""
    value = _parse(text, int)
    if value < -1:
        raise argparse.ArgumentTypeError(f"must be >= 0, or -1 for automatic, got {value}")
    return value


def image_size(text: str) -> int:
    """An input size in pixels, at least the backbone's total stride (32): below it the last feature map is
    under one cell, and Grad-CAM has nothing to show."""
    value = _parse(text, int)
    if value < MIN_IMAGE_SIZE:
        raise argparse.ArgumentTypeError(f"must be >= {MIN_IMAGE_SIZE} (the backbone's stride), got {value}")
    return value


def non_negative_float(text: str) -> float:
    """A number >= 0 (a number of epochs where 0 means none)."""
    value = _parse(text, float)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def ema_decay(text: str) -> float:
    """A weight moving-average decay: 0 (off) or a number in (0, 1)."""
    value = _parse(text, float)
    if not (value == 0 or 0 < value < 1):
        raise argparse.ArgumentTypeError(f"must be 0 (off) or between 0 and 1 (e.g. 0.999), got {value}")
    return value


def label_smoothing(text: str) -> float:
    """A label-smoothing amount in [0, 1)."""
    value = _parse(text, float)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, got {value}")
    return value


def count_up_to(cap: int) -> Callable[[str], int]:
    """An argparse type: an integer from 1 to ``cap`` (a count that scales the work), the cap in the message."""

    def parse(text: str) -> int:
        value = _parse(text, int)
        if not 1 <= value <= cap:
            raise argparse.ArgumentTypeError(f"must be between 1 and {cap} (the cap), got {value}")
        return value

    parse.__name__ = f"count_up_to_{cap}"
    return parse


MAX_CLIP_FRAMES = 64  # an exported graph unrolls the LSTM over T: twice the field's 32-frame protocol is plenty
clip_frames = count_up_to(MAX_CLIP_FRAMES)  # a clip length T for an exported graph
