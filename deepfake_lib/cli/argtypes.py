"""argparse ``type=`` validators shared by the command lines: each turns bad text into a clear usage error."""

from __future__ import annotations

import argparse


def _parse(text: str, cast: type) -> float | int:
    try:
        return cast(text)
    except ValueError:
        kind = "an integer" if cast is int else "a number"
        raise argparse.ArgumentTypeError(f"not {kind}: {text!r}") from None


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
