"""fit()'s steps one at a time: the data check, setup, an epoch's seeds and batches, recording an epoch, resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deepfake_lib import data
from deepfake_lib.core.runs import read_json
from deepfake_lib.data.scan import DataLayoutError
from deepfake_lib.models.checkpoint import CheckpointError, load_checkpoint
from deepfake_lib.training import epochs, loop, run_setup
from deepfake_lib.training.loop import TrainConfig, TrainingDiverged
from tests.conftest import FIT_FAST as FAST
from tests.conftest import tiny_model, train_val_datasets

# _record_epoch steps the scheduler without a training step before it, as the tests call it alone
pytestmark = pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")


def _one_class(ds: data.DeepfakeDataset, label: int) -> data.DeepfakeDataset:
    return data.DeepfakeDataset([s for s in ds.samples if s.label == label], ds.transform)


def _run(separable: Path, tmp_path: Path, **overrides) -> run_setup._Run:
    train_ds, val_ds = train_val_datasets(separable)
    cfg = TrainConfig(**{**FAST, "epochs": 3, **overrides})
    return run_setup._setup(tiny_model(trainable_blocks=2), train_ds, val_ds, tmp_path, cfg, {"note": "x"})


def _row(epoch: int, val_loss: float, val_auc: float = 0.5) -> dict[str, float]:
    return {"epoch": epoch, "train_loss": 1.0, "val_loss": val_loss, "val_auc": val_auc}


def test_check_training_data_refuses_one_class(separable: Path) -> None:
    train_ds, val_ds = train_val_datasets(separable)
    with pytest.raises(DataLayoutError, match=r"one class only \(real=18, fake=0\)"):
        run_setup._check_training_data(_one_class(train_ds, 0), val_ds, "val_loss")
    real_val = _one_class(val_ds, 0)
    run_setup._check_training_data(train_ds, real_val, "val_loss")  # the loss is defined on one class
    with pytest.raises(DataLayoutError, match="monitor='val_auc' needs REAL and FAKE"):
        run_setup._check_training_data(train_ds, real_val, "val_auc")


def test_setup_builds_the_run(separable: Path, tmp_path: Path) -> None:
    run = _run(separable, tmp_path, balance="weight")
    assert run.sampler is None and run.workers == 0 and run.ranks.world == 1 and run.global_batch == 8
    assert run.best_path == tmp_path / "checkpoints" / "best_model.pth" and run.last_path.parent.is_dir()
    assert run.criterion.pos_weight.item() == pytest.approx(18 / 6)  # REAL:FAKE in the training split
    assert run.extra == {"note": "x"} and not run.progress
    assert _run(separable, tmp_path).sampler is not None  # oversampling by default


def test_start_epoch_seeds_by_epoch_and_sets_the_warm_up(separable: Path, tmp_path: Path) -> None:
    run = _run(separable, tmp_path, head_warmup_epochs=1)
    net, _ = epochs._start_epoch(run, run.model.eval(), None, 0)
    first = torch.rand(3)
    assert net is run.model and net.training and run.model.head_only
    epochs._start_epoch(run, net, None, 1)
    assert not run.model.head_only and not torch.equal(torch.rand(3), first)
    epochs._start_epoch(run, net, None, 0)
    assert torch.equal(torch.rand(3), first)  # an epoch's randomness depends on (seed, epoch) alone


def test_train_epoch_counts_every_image_and_learns(separable: Path, tmp_path: Path) -> None:
    run = _run(separable, tmp_path, lr=1e-2)
    before = [p.detach().clone() for p in run.model.head.parameters()]
    net, _ = epochs._start_epoch(run, run.model, None, 0)
    errors: dict[str, str] = {}
    n_seen, loss_sum, correct, seconds = loop._train_epoch(run, net, 0, errors)
    assert n_seen == 24 and 0 <= correct <= n_seen and loss_sum > 0 and seconds > 0  # 3 full batches of 8
    assert errors == {}
    assert any(not torch.equal(a, b) for a, b in zip(before, run.model.head.parameters(), strict=True))


def test_train_epoch_stops_on_a_nan_loss(separable: Path, tmp_path: Path) -> None:
    run = _run(separable, tmp_path)
    run.criterion = lambda logits, y: (logits * torch.nan).mean()
    net, _ = epochs._start_epoch(run, run.model, None, 0)
    with pytest.raises(TrainingDiverged, match="loss became nan at epoch 1"):
        loop._train_epoch(run, net, 0, {})


def test_record_epoch_keeps_the_best_and_counts_bad_epochs(separable: Path, tmp_path: Path) -> None:
    run = _run(separable, tmp_path, patience=2)
    state = loop._State()
    loop._record_epoch(run, state, _row(1, 0.5))
    assert (state.best_epoch, state.best_val, state.bad_epochs, state.stopped_early) == (1, 0.5, 0, False)
    assert load_checkpoint(run.best_path)["epoch"] == 1
    loop._record_epoch(run, state, _row(2, 0.6))
    assert (state.best_epoch, state.bad_epochs, state.stopped_early) == (1, 1, False)
    assert load_checkpoint(run.best_path)["epoch"] == 1  # the worse epoch left the best checkpoint alone
    loop._record_epoch(run, state, _row(3, 0.55))
    assert state.stopped_early and state.bad_epochs == 2
    last = load_checkpoint(run.last_path)
    assert last["epoch"] == 3 and last["bad_epochs"] == 2 and last["stopped_early"] and last["note"] == "x"
    assert [r["epoch"] for r in read_json(tmp_path / "history.json")] == [1, 2, 3]
    assert read_json(tmp_path / "metrics.json")["train"]["best_epoch"] == 1
    assert run.optimizer.param_groups[0]["lr"] < 1e-3  # the cosine schedule stepped three times


def test_record_epoch_monitors_the_auc_when_asked(separable: Path, tmp_path: Path) -> None:
    run = _run(separable, tmp_path, monitor="val_auc")
    state = loop._State()
    loop._record_epoch(run, state, _row(1, 0.5, val_auc=0.7))
    loop._record_epoch(run, state, _row(2, 0.9, val_auc=0.8))  # a higher loss, but a better ranking
    assert state.best_epoch == 2 and state.best_val == 0.9 and state.bad_epochs == 0


def test_resume_restores_the_counters_and_refuses_other_settings(separable: Path, tmp_path: Path) -> None:
    run = _run(separable, tmp_path)
    state = loop._State()
    for epoch, loss in ((1, 0.5), (2, 0.6)):
        loop._record_epoch(run, state, _row(epoch, loss))
    resumed = loop._resume(_run(separable, tmp_path))
    assert (resumed.start_epoch, resumed.best_epoch, resumed.bad_epochs, resumed.finished) == (2, 1, 1, False)
    assert resumed.history == state.history
    assert loop._resume(_run(separable, tmp_path, epochs=2)).finished  # nothing left to train
    train_ds, val_ds = train_val_datasets(separable)
    other = run_setup._setup(tiny_model(lstm_hidden=8), train_ds, val_ds, tmp_path, TrainConfig(**FAST), None)
    with pytest.raises(CheckpointError, match=r"other model settings \(lstm_hidden"):
        loop._resume(other)
