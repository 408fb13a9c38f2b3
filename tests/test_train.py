"""fit(): learning, early stopping, checkpoints, resume, divergence."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deepfake_lib import data
from deepfake_lib.core.runs import read_json
from deepfake_lib.models.checkpoint import load_checkpoint, load_model
from deepfake_lib.training.loop import TrainConfig, fit
from tests.conftest import FIT_FAST as FAST
from tests.conftest import tiny_model, train_val_datasets


def test_loss_goes_down_and_artifacts_are_written(separable: Path, tmp_path: Path) -> None:
    train_ds, val_ds = train_val_datasets(separable)
    result = fit(tiny_model(trainable_blocks=2), train_ds, val_ds, tmp_path, epochs=8, lr=1e-2, patience=10, **FAST)
    losses = [h["train_loss"] for h in result.history]
    assert len(losses) == 8
    assert min(losses[-2:]) < losses[0] * 0.7
    assert result.history[-1]["val_auc"] > 0.9
    assert result.best_path == tmp_path / "checkpoints" / "best_model.pth" and result.best_path.exists()
    assert result.last_path.exists()
    best = load_checkpoint(result.best_path)
    assert best["epoch"] == result.best_epoch and best["metrics"]["val_loss"] == pytest.approx(result.best_val_loss)
    assert result.best_val_loss == min(h["val_loss"] for h in result.history)
    metrics = read_json(tmp_path / "metrics.json")
    assert metrics["train"]["best_epoch"] == result.best_epoch and len(metrics["train"]["history"]) == 8
    assert read_json(tmp_path / "history.json") == result.history
    load_model(result.best_path)  # loads back as a model


def test_early_stopping_stops(separable: Path, tmp_path: Path) -> None:
    train_ds, val_ds = train_val_datasets(separable)
    # an improvement must beat the best val loss by min_delta = 1.0, which never happens after epoch 1
    result = fit(tiny_model(), train_ds, val_ds, tmp_path, epochs=10, min_delta=1.0, patience=2, **FAST)
    assert result.stopped_early and len(result.history) == 3 and result.best_epoch == 1


class InterruptAfter(data.DeepfakeDataset):
    """Raises KeyboardInterrupt (like Ctrl-C) on the ``n``-th item fetched."""

    def __init__(self, base: data.DeepfakeDataset, n: int) -> None:
        super().__init__(base.samples, base.transform)
        self.calls, self.n = 0, n

    def __getitem__(self, index: int):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt
        return super().__getitem__(index)


def test_resume_continues_exactly_like_an_uninterrupted_run(separable: Path, tmp_path: Path) -> None:
    train_ds, val_ds = train_val_datasets(separable)
    common = {"epochs": 3, "lr": 2e-3, "patience": 10, "precise_bn_batches": 1, **FAST}
    full = fit(tiny_model(), train_ds, val_ds, tmp_path / "full", **common)
    per_epoch = len(train_ds) + FAST["batch_size"]  # training items + one precise-BatchNorm batch
    with pytest.raises(KeyboardInterrupt):  # interrupted in the middle of epoch 3
        fit(tiny_model(), InterruptAfter(train_ds, 2 * per_epoch + 5), val_ds, tmp_path / "split", **common)
    assert load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pth")["epoch"] == 2
    resumed = fit(tiny_model(), train_ds, val_ds, tmp_path / "split", **common)
    assert resumed.resumed_from_epoch == 2 and len(resumed.history) == 3
    for a, b in zip(full.history, resumed.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
    # a finished run is not trained again; resume=False starts over
    again = fit(tiny_model(), train_ds, val_ds, tmp_path / "split", **common)
    assert len(again.history) == 3 and again.resumed_from_epoch == 3
    fresh = fit(tiny_model(), train_ds, val_ds, tmp_path / "split", **{**common, "epochs": 1}, resume=False)
    assert fresh.resumed_from_epoch == 0 and len(fresh.history) == 1


def test_class_weight_balance_and_bad_files_mid_training(separable: Path, tmp_path: Path) -> None:
    train_ds, val_ds = train_val_datasets(separable)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    train_ds.samples.append(data.Sample(broken, 1))
    result = fit(tiny_model(), train_ds, val_ds, tmp_path / "run", epochs=1, balance="weight", **FAST)
    assert result.load_errors and result.load_errors[0][0] == str(broken)
    assert read_json(tmp_path / "run" / "metrics.json")["train"]["load_errors"][0]["path"] == str(broken)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="balance"):
        TrainConfig(balance="smote")
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)


def test_precise_batchnorm_matches_batch_statistics(separable: Path) -> None:
    from deepfake_lib.training.batches import recalibrate_batchnorm

    train_ds, _ = train_val_datasets(separable)
    model = tiny_model(calibrate=False, trainable_blocks=-1, dropout=0.0, image_size=128)
    model.backbone._global_params = model.backbone._global_params._replace(drop_connect_rate=0.0)  # deterministic
    loader = data.make_loader(data.DeepfakeDataset(train_ds.samples[:16], data.build_transform(128, False)), 16)
    x = next(iter(loader))["x"]
    model.train()
    with torch.no_grad():
        train_mode = model(x)  # BatchNorm on this batch's statistics (also nudges the running ones)
    assert recalibrate_batchnorm(model, loader, torch.device("cpu"), max_batches=4, amp=False) == 1
    assert model.backbone._bn0.momentum == 0.1  # restored
    model.eval()
    with torch.no_grad():
        eval_mode = model(x)
    # the running statistics are now exactly this batch's: eval mode reproduces the train-mode output
    # (up to BatchNorm's biased vs unbiased variance)
    assert torch.allclose(eval_mode, train_mode, atol=2e-2)
    assert eval_mode.std() > 1e-3  # and outputs differ between images instead of collapsing


def test_resume_refuses_a_last_checkpoint_of_other_model_settings(separable: Path, tmp_path: Path) -> None:
    from deepfake_lib.models.checkpoint import CheckpointError

    train_ds, val_ds = train_val_datasets(separable)
    fit(tiny_model(), train_ds, val_ds, tmp_path, epochs=1, **FAST)
    with pytest.raises(CheckpointError, match=r"other model settings \(trainable_blocks\).*resume=False"):
        fit(tiny_model(trainable_blocks=3), train_ds, val_ds, tmp_path, epochs=2, **FAST)
    assert (
        len(fit(tiny_model(trainable_blocks=3), train_ds, val_ds, tmp_path, epochs=1, resume=False, **FAST).history)
        == 1
    )


def test_head_warmup_trains_only_the_head_first(separable: Path, tmp_path: Path) -> None:
    """During the warm-up epochs the backbone (weights and BatchNorm statistics) stays exactly as it was;
    afterwards the configured blocks train."""
    train_ds, val_ds = train_val_datasets(separable)
    model = tiny_model(trainable_blocks=2)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    common = {"lr": 1e-2, "patience": 10, **{k: v for k, v in FAST.items() if k != "head_warmup_epochs"}}
    fit(model, train_ds, val_ds, tmp_path / "warm", epochs=2, head_warmup_epochs=2, **common)
    after = model.state_dict()
    backbone = [k for k in start if k.startswith("backbone.")]
    assert all(torch.equal(start[k], after[k]) for k in backbone)
    assert any(not torch.equal(start[k], after[k]) for k in start if k.startswith(("lstm.", "head.")))
    assert not model.head_only
    model = tiny_model(trainable_blocks=2)
    fit(model, train_ds, val_ds, tmp_path / "then", epochs=3, head_warmup_epochs=2, **common)
    last_block = [k for k in backbone if k.startswith(f"backbone._blocks.{model.n_blocks - 1}.")]
    assert any(not torch.equal(start[k], model.state_dict()[k]) for k in last_block)
    first_block = [k for k in backbone if k.startswith("backbone._blocks.0.")]
    assert all(torch.equal(start[k], model.state_dict()[k]) for k in first_block)  # frozen by trainable_blocks


def test_monitor_val_auc_keeps_the_best_ranking_epoch(separable: Path, tmp_path: Path) -> None:
    train_ds, val_ds = train_val_datasets(separable)
    fast = {**FAST, "monitor": "val_auc"}
    result = fit(tiny_model(), train_ds, val_ds, tmp_path, epochs=4, lr=1e-2, patience=10, **fast)
    aucs = [h["val_auc"] for h in result.history]
    assert result.best_epoch == 1 + aucs.index(max(aucs))  # the first epoch that reached the best AUC
    assert result.best_val_loss == result.history[result.best_epoch - 1]["val_loss"]
    assert load_checkpoint(result.best_path)["metrics"]["val_auc"] == max(aucs)
    with pytest.raises(ValueError, match="monitor"):
        TrainConfig(monitor="accuracy")
    one_class = data.DeepfakeDataset([s for s in val_ds.samples if s.label == 0], val_ds.transform)
    with pytest.raises(data.DataLayoutError, match="one class only"):
        fit(tiny_model(), train_ds, one_class, tmp_path / "x", epochs=1, **{**FAST, "monitor": "val_auc"})
