"""What a training reports while it runs (rank 0): ``progress.json`` after every epoch (epoch n of N, the
validation numbers, time left: the pipeline's live line follows it) and the epoch's numbers as TensorBoard scalars
in ``<run>/tensorboard/train`` (``core.events``: switched off by ``DEEPFAKE_TENSORBOARD=0``)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepfake_lib.core.events import events_dir, open_writer, write_events
from deepfake_lib.core.progress import FINISHED, RUNNING, STOPPED_EARLY, write_progress

if TYPE_CHECKING:
    from deepfake_lib.training.loop import _State
    from deepfake_lib.training.run_setup import _Run

TRAIN_EVENTS = "train"
PROGRESS_METRICS = ("val_auc", "val_loss", "train_loss")


@dataclass
class _Tracker:
    writer: Any | None
    started: float  # time.time() when this fit call started its first epoch
    first_epoch: int  # the epochs done before this call (a resumed run)


_trackers: dict[Path, _Tracker] = {}


def scalar_tags(row: dict[str, Any]) -> dict[str, float]:
    """The numbers of a history row as TensorBoard tags: ``train_loss`` -> ``train/loss``, ``val_auc`` ->
    ``val/auc``, the others under ``epoch/`` (``epoch/lr``, ``epoch/epoch_seconds``); ``epoch`` is the step."""
    tags = {}
    for key, value in row.items():
        if key == "epoch" or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        prefix, _, rest = key.partition("_")
        tags[f"{prefix}/{rest}" if prefix in ("train", "val") and rest else f"epoch/{key}"] = float(value)
    return tags


def close(run_dir: Path) -> None:
    """Close the event writer of the training in ``run_dir``, if one is open in this process."""
    tracker = _trackers.pop(Path(run_dir), None)
    if tracker is not None and tracker.writer is not None:
        write_events(tracker.writer, "training", lambda w: w.close())


def start(run: _Run, state: _State) -> None:
    """Before the first epoch of a ``fit`` call (rank 0): progress.json says which epoch comes, and the event
    writer opens. A fresh training replaces the events of an earlier one in the folder; a resumed one hides those
    of the epochs it repeats."""
    if not run.ranks.is_main:
        return
    root = run.paths["root"]
    close(root)
    resumed = state.start_epoch > 0
    writer = open_writer(
        events_dir(root, TRAIN_EVENTS), purge_step=state.start_epoch + 1 if resumed else None, replace=not resumed
    )
    _trackers[root] = _Tracker(writer, time.time(), state.start_epoch)
    write_progress(root, state.start_epoch, run.cfg.epochs)


def epoch_done(run: _Run, state: _State, row: dict[str, Any]) -> None:
    """After an epoch's checkpoints (rank 0): progress.json with the epoch, its validation numbers and the time
    left at this call's pace; the row's numbers as scalars at step ``epoch``. The writer closes with the last
    epoch."""
    if not run.ranks.is_main:
        return
    root, epochs, epoch = run.paths["root"], run.cfg.epochs, int(row["epoch"])
    tracker = _trackers.get(root)
    if tracker is None:  # epochs recorded without ``start`` (a caller of the loop's steps)
        tracker = _trackers[root] = _Tracker(None, time.time() - float(row.get("epoch_seconds", 0.0)), epoch - 1)
    pace = (time.time() - tracker.started) / max(epoch - tracker.first_epoch, 1)
    ended = state.stopped_early or epoch >= epochs
    status = (STOPPED_EARLY if state.stopped_early else FINISHED) if ended else RUNNING
    metrics = {k: float(row[k]) for k in PROGRESS_METRICS if isinstance(row.get(k), int | float)}
    write_progress(
        root, epoch, epochs, status=status, metrics={k: v if math.isfinite(v) else None for k, v in metrics.items()},
        seconds_per_step=pace, seconds_left=0.0 if ended else pace * (epochs - epoch),
    )  # fmt: skip
    tags = scalar_tags(row)
    write_events(tracker.writer, "training", lambda w: [w.add_scalar(t, v, epoch) for t, v in tags.items()])
    if ended:
        close(root)
