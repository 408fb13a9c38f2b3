"""Where a long step stands: ``progress.json`` in its run folder (epoch n of N, the last validation numbers, time
left), written after every epoch, and the one live console line that follows it while a notebook runs."""

from __future__ import annotations

import builtins
import contextlib
import math
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from deepfake_lib.core.runs import write_json

PROGRESS_FILE = "progress.json"
POLL_SECONDS = 2.0
# the states a progress file can be in: at work, or ended (the line then says how)
RUNNING, FINISHED, STOPPED_EARLY = "running", "finished", "stopped early"


def write_progress(
    run_dir: str | Path,
    step: int,
    total: int,
    *,
    unit: str = "epoch",
    status: str = RUNNING,
    metrics: dict[str, float] | None = None,
    seconds_per_step: float | None = None,
    seconds_left: float | None = None,
) -> Path:
    """Write ``<run_dir>/progress.json`` atomically: ``step`` of ``total`` ``unit`` done, the last ``metrics``
    (e.g. ``{"val_auc": 0.81, "val_loss": 0.42}``), the time per step and the time left, and when it was written
    (``updated``, seconds since the epoch)."""
    return write_json(
        Path(run_dir) / PROGRESS_FILE,
        {
            "unit": unit,
            "step": int(step),
            "total": int(total),
            "status": status,
            "metrics": dict(metrics or {}),
            "seconds_per_step": seconds_per_step,
            "seconds_left": seconds_left,
            "updated": time.time(),
        },
    )


def read_progress(path: str | Path) -> dict[str, Any] | None:
    """The progress file at ``path``, or None when it is missing or unreadable (a file written by hand, a
    folder that went away): following progress never stops the work it follows."""
    import json

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("step"), int) or not isinstance(data.get("total"), int):
        return None
    return data


def latest_progress(run_dir: str | Path, since: float = 0.0) -> dict[str, Any] | None:
    """The newest progress file in ``run_dir`` or one folder below (fine-tuning trains in ``<run>/finetune``)
    written at or after ``since`` (seconds since the epoch); None when there is none."""
    root = Path(run_dir)
    found = [p for p in (read_progress(path) for path in [root / PROGRESS_FILE, *root.glob(f"*/{PROGRESS_FILE}")]) if p]
    found = [p for p in found if _number(p.get("updated")) is not None and p["updated"] >= since]
    return max(found, key=lambda p: p["updated"], default=None)


def format_duration(seconds: float) -> str:
    """``42 s``, ``6 min``, ``1.5 h``: a time left, rounded as a person would say it."""
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def progress_text(progress: dict[str, Any], now: float | None = None) -> str:
    """``epoch 4/15, val AUC 0.812, ~6 min left``. With ``now``, the time left counts down from when the file was
    written; without, it is the one the file holds (the same text until the next epoch)."""
    unit, step, total = progress.get("unit", "epoch"), progress["step"], progress["total"]
    status = progress.get("status", RUNNING)
    if step == 0 and status == RUNNING:
        return f"starting {unit} 1/{total}"
    parts = [f"{unit} {step}/{total}"]
    metrics = progress.get("metrics") or {}
    auc, loss = _number(metrics.get("val_auc")), _number(metrics.get("val_loss"))
    if auc is not None:
        parts.append(f"val AUC {auc:.3f}")
    elif loss is not None:
        parts.append(f"val loss {loss:.4f}")
    if status != RUNNING:
        return ", ".join([*parts, status])
    left = _number(progress.get("seconds_left"))
    if left is not None and now is not None:
        left -= max(0.0, now - float(progress.get("updated") or now))
    if left is not None and left >= 1:
        parts.append(f"~{format_duration(left)} left")
    return ", ".join(parts)


class ProgressLine:
    """Follow the progress files of ``run_dir`` from a thread while a notebook runs, and show them after
    ``label`` (``[2/7] 02_train``).

    ``redraw``: one line redrawn in place every ``interval`` seconds (a terminal); the time left counts down and a
    notebook without progress shows how long it has run. Otherwise (a log file, CI) a new line only when the
    progress changes, at most one per epoch. Only progress written after ``start()`` counts.
    """

    def __init__(
        self,
        run_dir: str | Path,
        label: str,
        log: Callable[..., Any] = print,
        redraw: bool = True,
        interval: float = POLL_SECONDS,
    ) -> None:
        self.run_dir, self.label, self.log, self.redraw, self.interval = Path(run_dir), label, log, redraw, interval
        self.started = time.time()
        self.shown = ""  # the text on the redrawn line now
        self.last_key: tuple[Any, ...] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self, now: float | None = None) -> None:
        """Read the newest progress and show it (what the thread does every ``interval`` seconds)."""
        now = time.time() if now is None else now
        progress = latest_progress(self.run_dir, self.started)
        if not self.redraw:
            if progress is None:
                return
            key = (progress["step"], progress["total"], progress.get("status"), progress.get("unit"))
            if key != self.last_key:
                self.last_key = key
                self.log(f"{self.label}: {progress_text(progress)}", flush=True)
            return
        if progress is None:
            text = f"{self.label} ... {format_duration(now - self.started)}"
        else:
            text = f"{self.label}: {progress_text(progress, now)}"
        self._draw(text)

    def _draw(self, text: str) -> None:
        width = max(20, shutil.get_terminal_size((100, 24)).columns - 1)  # a wrapped line cannot be redrawn
        text = text[:width]
        self.log("\r" + text.ljust(len(self.shown)), end="", flush=True)
        self.shown = text

    def clear(self) -> None:
        """Remove the redrawn line, so the next line starts on an empty one."""
        if self.shown:
            self.log("\r" + " " * len(self.shown) + "\r", end="", flush=True)
            self.shown = ""

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):  # a display problem never stops the notebook it follows
                self.poll()

    def start(self) -> ProgressLine:
        self.started = time.time()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="progress-line", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop following; without redrawing, the last progress is shown if it has not been yet."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if not self.redraw:
            with contextlib.suppress(Exception):
                self.poll()
        self.clear()


def can_redraw(log: Callable[..., Any], stream: Any = None) -> bool:
    """A line can be redrawn in place when the lines go to the console (``print``) and it is a terminal."""
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return log is builtins.print and bool(isatty and isatty())


@contextlib.contextmanager
def live_progress(
    run_dir: str | Path, label: str, log: Callable[..., Any] = print, verbose: bool = False
) -> Iterator[ProgressLine]:
    """Show the progress of the work inside the ``with`` block (a notebook run) after ``label``: one redrawn line
    on a terminal, new lines on change elsewhere and with ``verbose`` (the notebook's own output streams then);
    the redrawn line is gone when the block ends."""
    line = ProgressLine(run_dir, label, log, redraw=not verbose and can_redraw(log)).start()
    try:
        yield line
    finally:
        line.stop()
