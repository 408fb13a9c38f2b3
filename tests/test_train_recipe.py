"""The training recipe's parts: warm-up + cosine schedule, a moving average of the weights, label smoothing."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from deepfake_lib.training import TrainConfig, fit
from deepfake_lib.training.ema import WeightEMA, ema_decay_at
from deepfake_lib.training.loop import smoothed_targets
from deepfake_lib.training.schedules import make_scheduler, warmup_cosine_factor
from tests.conftest import FIT_FAST, tiny_model, train_val_datasets


def test_warmup_then_cosine_factors() -> None:
    f = [warmup_cosine_factor(step, 4, 20) for step in range(20)]
    assert f[:4] == [0.25, 0.5, 0.75, 1.0]  # linear rise, the last warm-up step at the full rate
    assert f[4] == 1.0 and all(a > b for a, b in zip(f[4:], f[5:], strict=False))  # then only down
    assert warmup_cosine_factor(12, 4, 20) == pytest.approx(0.5)  # half way down the cosine
    assert warmup_cosine_factor(20, 4, 20) == pytest.approx(0.0, abs=1e-12)
    assert warmup_cosine_factor(0, 0, 10) == 1.0  # no warm-up


def test_the_scheduler_steps_the_optimiser_rate() -> None:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = make_scheduler(opt, "warmup_cosine", epochs=2, steps_per_epoch=5, warmup_epochs=1.0)
    rates = []
    for _ in range(10):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert rates[5] == pytest.approx(1.0) and rates[9] < 0.1
    with pytest.raises(ValueError, match="scheduler must be one of"):
        make_scheduler(opt, "linear", 2)


def test_ema_decay_warms_up_to_its_setting() -> None:
    assert ema_decay_at(0.999, 0) == pytest.approx(0.1)
    assert ema_decay_at(0.999, 90) == pytest.approx(0.91)
    assert ema_decay_at(0.999, 100_000) == 0.999
    with pytest.raises(ValueError, match="ema decay"):
        WeightEMA(nn.Linear(2, 1), 1.0)


def test_weight_ema_follows_the_formula() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    ema = WeightEMA(net, 0.5)
    expected = {k: v.clone().float() for k, v in net.state_dict().items() if v.is_floating_point()}
    for n in range(4):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        net.train()
        net(torch.randn(4, 3))  # moves the BatchNorm statistics: buffers are averaged too
        ema.update()
        d = 0.0 if n == 0 else ema_decay_at(0.5, n)  # the first update copies
        for k, v in net.state_dict().items():
            if k in expected:
                expected[k] = expected[k] * d + v.float() * (1 - d)
    got = ema.module.state_dict()
    for k, v in expected.items():
        assert torch.allclose(got[k].float(), v, atol=1e-6), k


def test_smoothed_targets() -> None:
    y = torch.tensor([0.0, 1.0])
    assert smoothed_targets(y, 0.1).tolist() == pytest.approx([0.05, 0.95])
    assert torch.equal(smoothed_targets(y, 0.0), y)


@pytest.mark.parametrize(
    "bad",
    [{"ema_decay": 1.0}, {"ema_decay": -0.1}, {"label_smoothing": 1.0}, {"warmup_epochs": -1}, {"scheduler": "x"}],
)
def test_recipe_options_are_validated(bad: dict) -> None:
    with pytest.raises(ValueError):
        TrainConfig(**bad)


def test_fit_with_the_recipe_saves_the_weight_average(separable: Path, tmp_path: Path) -> None:
    """The best checkpoint holds the moving average (validated), last.pth the raw weights and the average."""
    train_ds, val_ds = train_val_datasets(separable)
    model = tiny_model()
    model.set_temperature(3.0)  # a calibrated model trained again trains on raw logits
    cfg = TrainConfig(
        epochs=1, lr=1e-3, scheduler="warmup_cosine", warmup_epochs=0.5, ema_decay=0.9, label_smoothing=0.1,
        **FIT_FAST,
    )  # fmt: skip
    result = fit(model, train_ds, val_ds, tmp_path / "run", cfg)
    assert float(model.temperature) == 1.0
    best = torch.load(result.best_path, weights_only=True)
    last = torch.load(result.last_path, weights_only=True)
    averaged = {k.removeprefix("module."): v for k, v in last["ema"].items() if k.startswith("module.")}
    name = "head.4.weight"
    assert torch.equal(best["state_dict"][name], averaged[name])
    assert not torch.equal(best["state_dict"][name], last["state_dict"][name])
    assert best["temperature"] == 1.0 and best["train_config"]["ema_decay"] == 0.9
    assert math.isfinite(result.history[0]["val_loss"])


def test_a_resumed_recipe_run_equals_an_uninterrupted_one(separable: Path, tmp_path: Path) -> None:
    train_ds, val_ds = train_val_datasets(separable)
    recipe = {"lr": 1e-3, "scheduler": "warmup_cosine", "ema_decay": 0.9, "monitor": "val_loss", **FIT_FAST}
    straight = fit(tiny_model(), train_ds, val_ds, tmp_path / "a", TrainConfig(epochs=2, **recipe))
    fit(tiny_model(), train_ds, val_ds, tmp_path / "b", TrainConfig(epochs=1, **recipe))
    resumed = fit(tiny_model(), train_ds, val_ds, tmp_path / "b", TrainConfig(epochs=2, **recipe))
    assert resumed.resumed_from_epoch == 1
    a = torch.load(straight.last_path, weights_only=True)
    b = torch.load(resumed.last_path, weights_only=True)
    for key in ("state_dict", "ema"):
        for k, v in a[key].items():
            assert torch.allclose(v.float(), b[key][k].float(), atol=1e-6), (key, k)
    assert [r["lr"] for r in straight.history] == pytest.approx([r["lr"] for r in resumed.history])
