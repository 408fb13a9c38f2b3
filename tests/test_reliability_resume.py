"""Issue 6, point 4: a training process killed mid-epoch resumes without losing finished epochs."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deepfake_lib import data
from deepfake_lib.models.checkpoint import CheckpointError, load_checkpoint
from deepfake_lib.training.loop import FitResult, fit

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 4


class SlowDataset(data.DeepfakeDataset):
    """Sleeps per item, so that an epoch lasts long enough to be interrupted in its middle."""

    def __getitem__(self, index: int):
        time.sleep(0.04)
        return super().__getitem__(index)


def train_run(data_dir: str, run_dir: str, slow: bool = False, epochs: int = EPOCHS) -> FitResult:
    """The training job the tests kill and resume (also run in a subprocess)."""
    from tests.conftest import tiny_model

    scans = data.scan_dataset(data_dir, ["train", "val"])
    cls = SlowDataset if slow else data.DeepfakeDataset
    train_ds = cls(scans["train"].samples, data.build_transform(32, train=True))
    val_ds = data.DeepfakeDataset(scans["val"].samples, data.build_transform(32, train=False))
    return fit(tiny_model(), train_ds, val_ds, run_dir, epochs=epochs, batch_size=4, lr=3e-3, patience=10,
               num_workers=0, progress=False, device="cpu", seed=7, monitor="val_loss")  # fmt: skip


def _last_epoch(run_dir: Path) -> int:
    try:
        return int(load_checkpoint(run_dir / "checkpoints" / "last.pth")["epoch"])
    except CheckpointError:
        return 0


@pytest.mark.slow
def test_killed_mid_epoch_then_resumed_loses_nothing(tiny_data: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "killed"
    code = f"from tests.test_reliability_resume import train_run; train_run({str(tiny_data)!r}, {str(run_dir)!r}, slow=True)"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    try:
        deadline = time.time() + 120
        while _last_epoch(run_dir) < 2 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(0.3)  # well inside epoch 3
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finished = _last_epoch(run_dir)
    assert 2 <= finished < EPOCHS, "the kill must land after epoch 2 and before the end"
    best_before = load_checkpoint(run_dir / "checkpoints" / "best_model.pth")

    resumed = train_run(str(tiny_data), str(run_dir))
    reference = train_run(str(tiny_data), str(tmp_path / "uninterrupted"))
    assert resumed.resumed_from_epoch == finished and len(resumed.history) == EPOCHS
    for a, b in zip(reference.history, resumed.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
    best = load_checkpoint(run_dir / "checkpoints" / "best_model.pth")
    assert best["metrics"]["val_loss"] == pytest.approx(min(h["val_loss"] for h in resumed.history))
    assert best["metrics"]["val_loss"] <= best_before["metrics"]["val_loss"]  # never replaced by a worse one
