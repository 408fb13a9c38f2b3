"""TensorBoard event files of a run: per-epoch scalars from fit, the evaluation's curves, metrics and mistakes,
the switch that turns them off, and a run that goes on without the tensorboard package."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from deepfake_lib.core import events  # noqa: E402
from deepfake_lib.data.scan import scan_split  # noqa: E402
from deepfake_lib.evaluation.cross_dataset import CrossResult  # noqa: E402
from deepfake_lib.evaluation.inference import Predictions  # noqa: E402
from deepfake_lib.evaluation.metrics import full_metrics  # noqa: E402
from deepfake_lib.report.eval_events import log_evaluation, tag_name  # noqa: E402
from deepfake_lib.training.loop import fit  # noqa: E402
from deepfake_lib.training.tracking import scalar_tags  # noqa: E402
from tests.conftest import FIT_FAST, tiny_model, train_val_datasets  # noqa: E402

EPOCH_TAGS = {
    "train/loss", "train/accuracy", "train/images_per_s", "val/loss", "val/accuracy", "val/balanced_accuracy",
    "val/auc", "epoch/lr", "epoch/epoch_seconds", "epoch/cpu_threads",
}  # fmt: skip


def accumulate(folder: Path) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance={"images": 0, "tensors": 0, "scalars": 0})
    acc.Reload()
    return acc


def test_history_rows_become_scalar_tags() -> None:
    row = {"epoch": 3, "train_loss": 0.5, "val_auc": 0.9, "lr": 1e-3, "epoch_seconds": 2, "note": "x", "ok": True}
    assert scalar_tags(row) == {"train/loss": 0.5, "val/auc": 0.9, "epoch/lr": 1e-3, "epoch/epoch_seconds": 2.0}


def test_fit_writes_one_scalar_per_epoch_and_a_resumed_run_continues_the_curves(
    tiny_data: Path, tmp_path: Path
) -> None:
    train_ds, val_ds = train_val_datasets(tiny_data)
    result = fit(tiny_model(), train_ds, val_ds, tmp_path, epochs=2, patience=5, **FIT_FAST)
    folder = tmp_path / "tensorboard" / "train"
    acc = accumulate(folder)
    assert set(acc.Tags()["scalars"]) == EPOCH_TAGS
    assert [e.step for e in acc.Scalars("val/loss")] == [1, 2]
    assert [e.value for e in acc.Scalars("val/loss")] == pytest.approx([h["val_loss"] for h in result.history])
    fit(tiny_model(), train_ds, val_ds, tmp_path, epochs=3, patience=5, **FIT_FAST)  # resumes after epoch 2
    assert [e.step for e in accumulate(folder).Scalars("train/loss")] == [1, 2, 3]
    fit(tiny_model(), train_ds, val_ds, tmp_path, epochs=1, resume=False, **FIT_FAST)  # starts over
    assert [e.step for e in accumulate(folder).Scalars("train/loss")] == [1]


def test_the_switch_turns_events_off(tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(events.TENSORBOARD_ENV, "0")
    assert not events.tensorboard_enabled() and events.tensorboard_enabled(True)
    train_ds, val_ds = train_val_datasets(tiny_data)
    fit(tiny_model(), train_ds, val_ds, tmp_path, epochs=1, **FIT_FAST)
    assert not (tmp_path / "tensorboard").exists() and (tmp_path / "progress.json").exists()


def test_without_tensorboard_a_run_warns_once_and_goes_on(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # the import fails
    monkeypatch.setattr(events, "_warned", set())
    train_ds, val_ds = train_val_datasets(tiny_data)
    with pytest.warns(RuntimeWarning, match="no TensorBoard events"):
        result = fit(tiny_model(), train_ds, val_ds, tmp_path / "a", epochs=1, **FIT_FAST)
    assert result.best_path.exists() and not (tmp_path / "a" / "tensorboard" / "train").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once is enough
        assert events.open_writer(tmp_path / "b") is None


def test_a_failing_writer_is_warned_about_and_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "_warned", set())

    class Broken:
        def flush(self) -> None:
            raise OSError("disk full")

    with pytest.warns(RuntimeWarning, match="disk full"):
        assert not events.write_events(Broken(), "a test", lambda w: None)
    assert not events.write_events(None, "nothing", lambda w: None)


def test_evaluation_writes_curves_metrics_and_the_most_confident_mistakes(tiny_data: Path, tmp_path: Path) -> None:
    samples = scan_split(tiny_data, "test").samples
    labels = np.array([s.label for s in samples])
    rng = np.random.default_rng(0)
    probs = np.clip(0.3 + 0.4 * labels + rng.normal(0, 0.25, len(labels)), 0, 1)
    preds = Predictions(probs, labels, [str(s.path) for s in samples], np.zeros(len(labels)))
    threshold = 0.5
    report = full_metrics(labels, probs, threshold)
    wrong = int(((probs >= threshold) != labels).sum())
    assert wrong >= 2

    other = CrossResult("other set (faces)", tmp_path, preds, report)  # a cross-dataset result
    folder = log_evaluation(tmp_path, "test", preds, report, threshold, extra=[other], n_mistakes=8)
    assert folder == tmp_path / "tensorboard" / "evaluate"
    acc = accumulate(folder)
    tags = acc.Tags()
    extra = tag_name(other.name)
    assert extra == "other_set_faces"
    assert {"pr_curve/test", f"pr_curve/{extra}"} <= set(tags["tensors"])
    assert {"roc_curve/test", f"roc_curve/{extra}", "mistakes/test"} <= set(tags["images"])
    assert acc.Scalars("test/auc")[0].value == pytest.approx(report["auc"])
    assert {"test/eer", "test/balanced_accuracy", f"{extra}/auc"} <= set(tags["scalars"])
    (grid,) = acc.Images("mistakes/test")  # one row of 96 px thumbnails
    assert (grid.width, grid.height) == (96 * min(8, wrong), 96)
    # the text beside the images lists the files, hardest first
    text = acc.Tensors("mistakes/test/text_summary")[0].tensor_proto.string_val[0].decode()
    assert text.count(".jpg") == min(8, wrong)
    # a second evaluation replaces the first one's events
    log_evaluation(tmp_path, "test", preds, report, threshold)
    assert len(list(folder.glob("events.out.tfevents.*"))) == 1
    assert "mistakes/test" in accumulate(folder).Tags()["images"]


def test_evaluation_events_can_be_switched_off(tmp_path: Path) -> None:
    preds = Predictions(np.array([0.2, 0.8]), np.array([0, 1]), ["a.jpg", "b.jpg"], np.zeros(2))
    assert log_evaluation(tmp_path, "test", preds, {}, 0.5, enabled=False) is None
    assert not (tmp_path / "tensorboard").exists()
