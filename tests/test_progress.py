"""Following a run: progress.json (written by fit after every epoch), its one-line text, and the console line that
follows it while a notebook runs (redrawn on a terminal, new lines on change elsewhere)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from deepfake_lib.core.progress import (
    FINISHED,
    PROGRESS_FILE,
    STOPPED_EARLY,
    ProgressLine,
    can_redraw,
    format_duration,
    latest_progress,
    live_progress,
    progress_text,
    read_progress,
    write_progress,
)
from deepfake_lib.core.runs import read_json, write_json
from deepfake_lib.training.loop import fit
from tests.conftest import FIT_FAST, tiny_model, train_val_datasets


class Lines:
    """A ``log`` that records what the pipeline would print: each call's text and whether it ended the line."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, text: str = "", end: str = "\n", flush: bool = False) -> None:
        self.calls.append((text, end))

    @property
    def lines(self) -> list[str]:
        return [t for t, end in self.calls if end == "\n"]


def test_durations_read_as_a_person_would_say_them() -> None:
    assert [format_duration(s) for s in (0, 42.4, 89, 90, 360, 5399, 5400, 9000)] == [
        "0 s", "42 s", "89 s", "2 min", "6 min", "90 min", "1.5 h", "2.5 h",
    ]  # fmt: skip


def test_progress_text_for_each_state(tmp_path: Path) -> None:
    write_progress(tmp_path, 0, 15)
    assert progress_text(read_progress(tmp_path / PROGRESS_FILE)) == "starting epoch 1/15"
    write_progress(tmp_path, 4, 15, metrics={"val_auc": 0.8123, "val_loss": 0.4}, seconds_left=360.0)
    progress = read_progress(tmp_path / PROGRESS_FILE)
    assert progress_text(progress) == "epoch 4/15, val AUC 0.812, ~6 min left"
    # on a terminal the time left counts down from when the file was written
    assert progress_text(progress, now=progress["updated"] + 300) == "epoch 4/15, val AUC 0.812, ~60 s left"
    assert progress_text(progress, now=progress["updated"] + 400) == "epoch 4/15, val AUC 0.812"
    nan_auc = {"step": 2, "total": 3, "metrics": {"val_auc": None, "val_loss": 0.69314}, "seconds_left": None}
    assert progress_text(nan_auc) == "epoch 2/3, val loss 0.6931"  # a one-class validation split has no AUC
    assert progress_text({**nan_auc, "status": STOPPED_EARLY}) == "epoch 2/3, val loss 0.6931, stopped early"
    assert progress_text({"step": 3, "total": 3, "status": FINISHED, "metrics": {}}) == "epoch 3/3, finished"


def test_the_newest_progress_of_the_run_or_one_folder_below_counts(tmp_path: Path) -> None:
    assert latest_progress(tmp_path) is None
    write_progress(tmp_path, 5, 5, status=FINISHED)  # 02's finished training
    since = time.time()
    assert latest_progress(tmp_path, since) is None  # written before the notebook started
    write_progress(tmp_path / "finetune", 1, 3)  # 04 trains in <run>/finetune
    assert latest_progress(tmp_path, since)["total"] == 3
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / PROGRESS_FILE).write_text("{not json")  # unreadable files are passed over
    write_json(tmp_path / "x" / PROGRESS_FILE, {"step": "one"})
    assert latest_progress(tmp_path, since)["total"] == 3


def test_without_a_terminal_a_line_is_printed_only_when_the_progress_changes(tmp_path: Path) -> None:
    log = Lines()
    line = ProgressLine(tmp_path, "[2/7] 02_train", log, redraw=False)
    line.poll()
    assert log.calls == []  # nothing to show yet
    write_progress(tmp_path, 1, 3, metrics={"val_auc": 0.5}, seconds_left=100.0)
    line.poll()
    line.poll()
    write_progress(tmp_path, 1, 3, metrics={"val_auc": 0.5}, seconds_left=90.0)  # the same epoch again
    line.poll()
    write_progress(tmp_path, 2, 3, metrics={"val_auc": 0.75}, seconds_left=50.0)
    line.poll()
    assert log.lines == ["[2/7] 02_train: epoch 1/3, val AUC 0.500, ~2 min left",
                         "[2/7] 02_train: epoch 2/3, val AUC 0.750, ~50 s left"]  # fmt: skip
    assert all("\r" not in text for text, _ in log.calls)


def test_on_a_terminal_one_line_is_redrawn_and_cleared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.get_terminal_size", lambda fallback=None: __import__("os").terminal_size((40, 24)))
    log = Lines()
    line = ProgressLine(tmp_path, "[2/7] 02_train", log, redraw=True)
    line.poll(now=line.started + 130)
    assert log.calls[-1] == ("\r[2/7] 02_train ... 2 min", "")  # no progress file: how long it has run
    write_progress(tmp_path, 4, 15, metrics={"val_auc": 0.8123}, seconds_left=3600.0)
    line.poll()
    text, end = log.calls[-1]
    assert end == "" and text.startswith("\r[2/7] 02_train: epoch 4/15, val")
    assert len(text) == 1 + 39  # cut to the terminal's width, so the line never wraps
    line.clear()
    assert log.calls[-1] == ("\r" + " " * 39 + "\r", "")
    assert log.lines == []


def test_the_line_follows_a_run_from_a_thread_until_the_block_ends(tmp_path: Path) -> None:
    log = Lines()
    with live_progress(tmp_path, "[2/3] 02_train", log, verbose=True) as line:  # verbose: new lines, never redrawn
        line.interval = 0.05
        for epoch in (1, 2):
            write_progress(tmp_path, epoch, 2, metrics={"val_auc": 0.5 + epoch / 10}, seconds_left=10.0 - epoch)
            deadline = time.time() + 5
            while len(log.lines) < epoch and time.time() < deadline:
                time.sleep(0.02)
        write_progress(tmp_path, 2, 2, status=FINISHED, metrics={"val_auc": 0.7})
    # the last state is shown when the block ends, even between two polls
    assert log.lines == [
        "[2/3] 02_train: epoch 1/2, val AUC 0.600, ~9 s left",
        "[2/3] 02_train: epoch 2/2, val AUC 0.700, ~8 s left",
        "[2/3] 02_train: epoch 2/2, val AUC 0.700, finished",
    ]


def test_only_the_console_on_a_terminal_is_redrawn() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert can_redraw(print, Tty())
    assert not can_redraw(print, io.StringIO())
    assert not can_redraw(Lines(), Tty())  # a caller's own log gets whole lines


def test_fit_writes_progress_after_every_epoch(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deepfake_lib.training import tracking

    written: list[tuple[int, int, str]] = []

    def record(run_dir, step, total, **kw):
        written.append((step, total, kw.get("status", "running")))
        return write_progress(run_dir, step, total, **kw)

    monkeypatch.setattr(tracking, "write_progress", record)
    train_ds, val_ds = train_val_datasets(tiny_data)
    result = fit(tiny_model(), train_ds, val_ds, tmp_path, epochs=2, patience=5, **FIT_FAST)
    assert written == [(0, 2, "running"), (1, 2, "running"), (2, 2, FINISHED)]
    progress = read_json(tmp_path / PROGRESS_FILE)
    assert (progress["unit"], progress["step"], progress["total"], progress["status"]) == ("epoch", 2, 2, FINISHED)
    assert progress["seconds_left"] == 0.0 and progress["seconds_per_step"] > 0
    assert progress["metrics"]["val_loss"] == pytest.approx(result.history[-1]["val_loss"])
    # resumed with more epochs: it counts on from the checkpoint
    written.clear()
    fit(tiny_model(), train_ds, val_ds, tmp_path, epochs=3, patience=5, **FIT_FAST)
    assert written == [(2, 3, "running"), (3, 3, FINISHED)]


def test_fit_progress_says_when_training_stopped_early(tiny_data: Path, tmp_path: Path) -> None:
    train_ds, val_ds = train_val_datasets(tiny_data)
    result = fit(tiny_model(), train_ds, val_ds, tmp_path, epochs=10, min_delta=1.0, patience=1, **FIT_FAST)
    progress = read_progress(tmp_path / PROGRESS_FILE)
    assert result.stopped_early and progress["status"] == STOPPED_EARLY
    assert (progress["step"], progress["total"]) == (len(result.history), 10)
    assert progress_text(progress).endswith("stopped early")
