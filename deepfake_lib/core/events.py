"""TensorBoard event files of a run (``<run>/tensorboard/<part>/``): one switch, and writers that fail soft (no
``tensorboard`` package, a folder that cannot be written: one warning, then the work goes on without events)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

TENSORBOARD_ENV = "DEEPFAKE_TENSORBOARD"  # 0 / false / no / off: no event files
TENSORBOARD_DIR = "tensorboard"
_OFF = ("0", "false", "no", "off")
_warned: set[str] = set()


def tensorboard_enabled(enabled: bool | None = None) -> bool:
    """``enabled`` when given; else on, unless ``$DEEPFAKE_TENSORBOARD`` is 0, false, no or off."""
    if enabled is not None:
        return bool(enabled)
    return os.environ.get(TENSORBOARD_ENV, "1").strip().lower() not in _OFF


def events_dir(run_dir: str | os.PathLike[str], part: str) -> Path:
    """``<run_dir>/tensorboard/<part>``: one TensorBoard run per part (``train``, ``evaluate``)."""
    return Path(run_dir) / TENSORBOARD_DIR / part


def warn_once(key: str, message: str) -> None:
    """A ``RuntimeWarning`` the first time ``key`` comes up in this process, nothing after."""
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def remove_events(folder: str | os.PathLike[str]) -> None:
    """Delete the event files in ``folder`` (a step that starts over replaces its events)."""
    for path in Path(folder).glob("events.out.tfevents.*"):
        path.unlink(missing_ok=True)


def open_writer(
    log_dir: str | os.PathLike[str],
    purge_step: int | None = None,
    replace: bool = False,
    enabled: bool | None = None,
) -> Any | None:
    """A ``torch.utils.tensorboard.SummaryWriter`` on ``log_dir``, or None: switched off (``tensorboard_enabled``),
    ``tensorboard`` not installed, or the folder not writable (both warned about once).

    ``replace``: delete the event files already there first. ``purge_step``: TensorBoard hides what earlier writers
    logged from this step on (a resumed training repeats the steps after its checkpoint).
    """
    if not tensorboard_enabled(enabled):
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        warn_once(
            "import",
            f"no TensorBoard events: {exc} (pip install tensorboard; {TENSORBOARD_ENV}=0 turns events off)",
        )
        return None
    try:
        if replace:
            remove_events(log_dir)
        return SummaryWriter(str(log_dir), purge_step=purge_step)
    except OSError as exc:
        warn_once(f"open:{log_dir}", f"no TensorBoard events in {log_dir}: {exc}")
        return None


def write_events(writer: Any | None, what: str, write: Any) -> bool:
    """Call ``write(writer)`` and flush, so a killed process leaves readable events; an error is warned about once
    (``what`` names it) and swallowed: events are a by-product, never a reason for the work to fail. False when
    nothing was written."""
    if writer is None:
        return False
    try:
        write(writer)
        writer.flush()
    except Exception as exc:  # any failure of the event writer
        warn_once(f"write:{what}", f"TensorBoard events of {what} not written: {type(exc).__name__}: {exc}")
        return False
    return True
