"""Issue 6, point 6: a NaN or infinite loss stops training with a clear message; the last good checkpoints stay."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deepfake_lib.models.checkpoint import load_checkpoint
from deepfake_lib.training.loop import TrainingDiverged, fit
from tests.conftest import FIT_FAST as FAST
from tests.conftest import tiny_model, train_val_datasets


# a NaN bias makes NaN logits; a huge finite one makes the batch's summed loss overflow to inf
@pytest.mark.parametrize(("bad", "bias"), [("nan", float("nan")), ("inf", 3e38)])
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoints(
    separable: Path, tmp_path: Path, bad: str, bias: float
) -> None:
    train_ds, val_ds = train_val_datasets(separable)
    model = tiny_model()
    fit(model, train_ds, val_ds, tmp_path, epochs=1, **FAST)
    ckpts = tmp_path / "checkpoints"
    before = {name: (ckpts / name).read_bytes() for name in ("best_model.pth", "last.pth")}
    with torch.no_grad():
        model.head[-1].bias.fill_(bias)
    with pytest.raises(TrainingDiverged, match=f"loss became {bad}") as err:
        fit(model, train_ds, val_ds, tmp_path, epochs=3, resume=False, **FAST)
    assert "last good checkpoints are kept" in str(err.value) and "learning rate" in str(err.value)
    assert {name: (ckpts / name).read_bytes() for name in before} == before
    assert load_checkpoint(ckpts / "last.pth")["epoch"] == 1
