"""finetune.py: failures + replay, weights change, the checkpoint contract, the empty case, split guards."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from deepfake_lib.data.scan import scan_split
from deepfake_lib.evaluation import evaluate as E
from deepfake_lib.models.checkpoint import (
    load_checkpoint,
    load_model,
    model_from_checkpoint,
    save_checkpoint,
    save_model,
)
from deepfake_lib.predict.predictors import find_checkpoint
from deepfake_lib.training import finetuning as F
from deepfake_lib.training.comparison import compare_checkpoints
from deepfake_lib.training.failures import StaleFailuresError, check_splits, load_failures
from deepfake_lib.training.replay import build_finetune_set
from tests.conftest import tiny_model


@pytest.fixture(scope="module")
def train_preds(tiny_data, tiny_checkpoint):
    model, _ = load_model(tiny_checkpoint)
    preds = E.predict_split(model, tiny_data, "train", batch_size=8, progress=False)
    # the untrained model scores everything alike: put the threshold in the widest gap near the middle
    s = np.sort(preds.probs)
    i = max(range(5, 11), key=lambda k: s[k + 1] - s[k])
    return preds, float((s[i] + s[i + 1]) / 2)


def make_run(tmp_path: Path, tiny_checkpoint: Path, tiny_data: Path, train_preds, n_failures: int = 4) -> Path:
    """A run folder as notebook 03 leaves it: best_model.pth with a stored EER threshold, failures.json."""
    preds, threshold = train_preds
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(tiny_checkpoint, run / "checkpoints" / "best_model.pth")
    E.store_threshold(run / "checkpoints" / "best_model.pth", E.ThresholdChoice("eer", threshold, "val"))
    failures = E.find_failures(preds, threshold)[:n_failures]
    E.write_failures(run, failures, "train", threshold, tiny_data, len(preds), run / "checkpoints" / "best_model.pth")
    return run


def test_load_failures_and_rebase_moved_data(tmp_path, tiny_checkpoint, tiny_data, train_preds):
    run = make_run(tmp_path, tiny_checkpoint, tiny_data, train_preds)
    fs = load_failures(run)
    assert fs.split == "train" and len(fs.records) == 4 and fs.missing == []
    assert [s.label for s in fs.samples] == [["real", "fake"].index(r["true_label"]) for r in fs.records]
    payload = json.loads((run / "failures.json").read_text())
    payload["data_dir"] = "/somewhere/else"
    payload["failures"] = [
        {**r, "path": r["path"].replace(str(tiny_data), "/somewhere/else")} for r in payload["failures"]
    ] + [{**payload["failures"][0], "path": "/gone/real/x.jpg"}]
    (run / "failures.json").write_text(json.dumps(payload))
    moved = load_failures(run, data_dir=tiny_data)
    assert [r["path"] for r in moved.records] == [r["path"] for r in fs.records]
    assert moved.missing == ["/gone/real/x.jpg"]
    with pytest.raises(FileNotFoundError, match="03_evaluate"):
        load_failures(tmp_path / "no_run")


def test_check_splits_refuses_reporting_on_training_data():
    assert check_splits("train", "test", "val") == []
    with pytest.raises(ValueError, match="where the failures come from"):
        check_splits("tune", "tune", "val")
    with pytest.raises(ValueError, match="replay images"):
        check_splits("tune", "train", "val")
    assert "optimistic" in check_splits("train", "test", "test")[0]
    with pytest.raises(ValueError, match="VAL_SPLIT 'val' is where the failures come from"):
        check_splits("val", "test", "val")
    with pytest.raises(ValueError, match="VAL_SPLIT 'tune' is where the replay images come from"):
        check_splits("train", "test", "tune", replay_split="tune")


def test_replay_is_correctly_classified_training_images(tmp_path, tiny_checkpoint, tiny_data, train_preds):
    preds, threshold = train_preds
    run = make_run(tmp_path, tiny_checkpoint, tiny_data, train_preds)
    fs = load_failures(run)
    model, _ = load_model(tiny_checkpoint)
    ft = build_finetune_set(model, fs, tiny_data, F.FinetuneConfig(replay_ratio=1.0))
    failure_paths = {str(s.path) for s in ft.failures}
    replay_paths = [str(s.path) for s in ft.replay]
    assert ft.wanted_replay == 4 and len(replay_paths) == len(set(replay_paths))
    assert not failure_paths & set(replay_paths)
    assert all(Path(p).parent.parent.name == "train" for p in replay_paths)
    check = E.predict_samples(model, ft.replay, progress=False)
    assert ((check.probs >= threshold).astype(int) == check.labels).all()  # every replay image is classified right
    correct = (preds.probs >= threshold).astype(int) == preds.labels
    available = {y: int((correct & (preds.labels == y)).sum()) for y in (0, 1)}
    n_fake = sum(s.label == 1 for s in ft.replay)
    assert n_fake == min(2, available[1])  # half FAKE where possible, REAL fills the rest
    assert len(ft.replay) == min(4, available[0] + available[1])
    assert ft.summary()["n_failures"] == 4 and ft.samples == ft.failures + ft.replay


def test_finetune_changes_weights_and_keeps_the_checkpoint_contract(tmp_path, tiny_checkpoint, tiny_data, train_preds):
    run = make_run(tmp_path, tiny_checkpoint, tiny_data, train_preds)
    before_path = run / "checkpoints" / "best_model.pth"
    original = load_checkpoint(before_path)
    model, ckpt = load_model(before_path)
    cfg = F.FinetuneConfig(
        epochs=1, lr=1e-3, batch_size=4, replay_ratio=1.0, device="cpu", progress=False, keep_original_if_worse=False
    )
    fs = load_failures(run)
    ft = build_finetune_set(model, fs, tiny_data, cfg)
    val = scan_split(tiny_data, "val", validate=False).samples
    result = F.finetune(model, ckpt, ft, val, run, cfg)

    assert result.status == "done" and result.checkpoint == run / "checkpoints" / "best_model_finetuned.pth"
    tuned = load_checkpoint(result.checkpoint)  # weights_only=True
    for key in ("format", "format_version", "library_version", "class_names"):
        assert tuned[key] == original[key]
    assert tuned["config"] == original["config"]
    assert tuned["state_dict"].keys() == original["state_dict"].keys()
    assert tuned["threshold"] == pytest.approx(result.threshold_after) and 0 < tuned["threshold"] < 1
    assert tuned["threshold_info"]["method"] == "eer" and tuned["threshold_info"]["chosen_by"] == "fine-tuning"
    assert tuned["threshold_info"]["split"] == "val"
    changed = [k for k, v in tuned["state_dict"].items() if not torch.equal(v, original["state_dict"][k])]
    assert any(k.startswith("head.") for k in changed) and any(k.startswith("lstm.") for k in changed)
    assert not any("running_" in k for k in changed)  # BatchNorm statistics frozen
    assert torch.equal(
        load_checkpoint(before_path)["state_dict"]["head.4.weight"], original["state_dict"]["head.4.weight"]
    )
    assert model_from_checkpoint(tuned).config.image_size == 32
    assert result.fit["epochs_run"] == 1 and np.isfinite(result.val_loss_after)
    assert not list((run / "finetune" / "checkpoints").glob("*.pth")) and (run / "finetune" / "history.json").exists()

    comparison = compare_checkpoints(before_path, result.checkpoint, tiny_data, "test", device="cpu", progress=False)
    table = comparison.table()
    assert list(table.columns) == ["before", "after", "change"] and "auc" in table.index
    assert comparison.before["threshold"] == pytest.approx(original["threshold"])
    assert comparison.after["threshold"] == pytest.approx(tuned["threshold"])
    assert comparison.before["n"] == comparison.after["n"] == 16
    record = F.finetune_record(result, comparison, fs, ft, cfg, "val")
    assert record["status"] == "done" and record["eval_split"] == "test" and record["failures_split"] == "train"
    assert record["set"]["n_failures"] == 4 and record["change"]["auc"] == pytest.approx(table.loc["auc", "change"])
    json.dumps(record)

    # the fine-tuned model knows which weights it came from; 05 and predict pick it while best_model is unchanged
    assert tuned["source_weights_id"] == original["weights_id"] == fs.weights_id != tuned["weights_id"]
    assert find_checkpoint(run) == result.checkpoint


def test_the_comparison_scores_each_checkpoint_with_its_stored_tta_and_temperature(
    tmp_path, tiny_checkpoint, tiny_data
):
    """04's before/after table scores as 03 and predict do, so "before" is 03's report and each stored threshold
    meets the scores it was chosen on."""
    plain = tmp_path / "plain.pth"
    flipped = tmp_path / "flipped.pth"
    save_checkpoint({**load_checkpoint(tiny_checkpoint), "tta": "none"}, plain)
    save_checkpoint({**load_checkpoint(tiny_checkpoint), "tta": "hflip", "temperature": 2.0}, flipped)
    comparison = compare_checkpoints(plain, flipped, tiny_data, "test", device="cpu", progress=False)

    model, _ = load_model(tiny_checkpoint)
    none = E.predict_split(model, tiny_data, "test", progress=False, tta="none")
    model.set_temperature(2.0)
    hflip = E.predict_split(model, tiny_data, "test", progress=False, tta="hflip")
    np.testing.assert_allclose(comparison.preds_before.probs, none.probs, atol=1e-6)
    np.testing.assert_allclose(comparison.preds_after.probs, hflip.probs, atol=1e-6)
    assert not np.allclose(none.logits / 2.0, hflip.logits, atol=1e-6)  # the views differ: the test can fail


def test_a_retrained_model_makes_failures_and_the_fine_tuned_model_stale(
    tmp_path, tiny_checkpoint, tiny_data, train_preds
):
    """Re-training after 03 and 04 ran: fine-tuning on the old failures is refused, and find_checkpoint passes
    over the old fine-tuned model (by weights id, or by age for files written before ids)."""
    run = make_run(tmp_path, tiny_checkpoint, tiny_data, train_preds, n_failures=0)
    best = run / "checkpoints" / "best_model.pth"
    model, ckpt = load_model(best)
    result = F.finetune(
        model,
        ckpt,
        build_finetune_set(model, load_failures(run), tiny_data, F.FinetuneConfig()),
        [],
        run,
        F.FinetuneConfig(device="cpu"),
    )
    assert find_checkpoint(run) == result.checkpoint  # "skipped" still derives from the current best_model
    retrained = tiny_model(lstm_hidden=16, dropout=0.3)
    torch.manual_seed(1)
    with torch.no_grad():
        retrained.head[-1].weight.add_(torch.randn_like(retrained.head[-1].weight))
    save_model(retrained, best, threshold=0.5)
    with pytest.warns(UserWarning, match="fine-tuned from other weights .* re-trained since; run 04_finetune again"):
        assert find_checkpoint(run) == best
    with pytest.raises(StaleFailuresError, match="run 03_evaluate again first"):
        build_finetune_set(retrained, load_failures(run), tiny_data, F.FinetuneConfig())
    # files from before weights ids: the older fine-tuned model loses to a newer best_model
    old = load_checkpoint(result.checkpoint)
    old.pop("source_weights_id")
    save_checkpoint(old, result.checkpoint)
    os.utime(result.checkpoint, (1_000_000, 1_000_000))
    with pytest.warns(UserWarning, match="older than best_model.pth"):
        assert find_checkpoint(run) == best
    os.utime(result.checkpoint, None)
    assert find_checkpoint(run) == result.checkpoint


def test_no_failures_keeps_the_model(tmp_path, tiny_checkpoint, tiny_data, train_preds):
    run = make_run(tmp_path, tiny_checkpoint, tiny_data, train_preds, n_failures=0)
    fs = load_failures(run)
    assert fs.records == []
    model, ckpt = load_model(run / "checkpoints" / "best_model.pth")
    ft = build_finetune_set(model, fs, tiny_data, F.FinetuneConfig())
    assert ft.samples == []
    result = F.finetune(model, ckpt, ft, [], run, F.FinetuneConfig(device="cpu"))
    assert result.status == "skipped" and "no failures" in result.reason and "nothing to fine-tune" in result.reason
    kept = load_checkpoint(result.checkpoint)
    assert kept["finetune"]["status"] == "skipped" and kept["threshold"] == pytest.approx(ckpt["threshold"])
    assert all(torch.equal(v, ckpt["state_dict"][k]) for k, v in kept["state_dict"].items())
    assert not (run / "finetune").exists()


def test_one_class_set_is_not_trained(tmp_path, tiny_checkpoint, tiny_data, train_preds):
    run = make_run(tmp_path, tiny_checkpoint, tiny_data, train_preds)
    model, ckpt = load_model(run / "checkpoints" / "best_model.pth")
    fs = load_failures(run)
    ft = build_finetune_set(model, fs, tiny_data, F.FinetuneConfig(replay_ratio=0))
    ft.failures = [s for s in ft.failures if s.label == ft.failures[0].label]
    result = F.finetune(model, ckpt, ft, [], run, F.FinetuneConfig(device="cpu"))
    assert result.status == "skipped" and "only" in result.reason and "replay ratio" in result.reason
    assert load_checkpoint(result.checkpoint)["finetune"]["reason"] == result.reason


def test_original_is_kept_when_fine_tuning_does_not_lower_the_val_loss(
    tmp_path, tiny_checkpoint, tiny_data, train_preds
):
    run = make_run(tmp_path, tiny_checkpoint, tiny_data, train_preds)
    model, ckpt = load_model(run / "checkpoints" / "best_model.pth")
    fs = load_failures(run)
    cfg = F.FinetuneConfig(epochs=1, lr=0.0, batch_size=8, replay_ratio=1.0, device="cpu", progress=False)
    ft = build_finetune_set(model, fs, tiny_data, cfg)
    val = scan_split(tiny_data, "val", validate=False).samples
    result = F.finetune(model, ckpt, ft, val, run, cfg)  # lr = 0: the val loss cannot go down
    assert result.status == "kept_original" and "original model is kept" in result.reason
    assert result.val_loss_after == pytest.approx(result.val_loss_before) and not result.improved_on_val
    kept = load_checkpoint(result.checkpoint)
    assert kept["finetune"]["status"] == "kept_original" and kept["threshold"] == ckpt["threshold"]
    assert all(torch.equal(v, ckpt["state_dict"][k]) for k, v in kept["state_dict"].items())
    assert result.fit["epochs_run"] == 1 and result.summary()["status"] == "kept_original"


def test_a_self_blended_model_keeps_its_pseudo_fakes_in_fine_tuning(tmp_path, tiny_checkpoint, tiny_data, train_preds):
    """Real failures alone would be one class; with a pseudo-fake of each real image the set trains, and the
    fine-tuned checkpoint still says which fakes its model was trained on (and how its videos were cut)."""
    from deepfake_lib.data import selfblend

    run = make_run(tmp_path, tiny_checkpoint, tiny_data, train_preds, n_failures=16)
    ckpt_path = run / "checkpoints" / "best_model.pth"
    clips = {"frames": 1, "clips": 2, "stride": None, "size": 32, "faces": None}
    save_checkpoint({**load_checkpoint(ckpt_path), "fakes": "self-blended", "clips": clips}, ckpt_path)
    model, ckpt = load_model(ckpt_path)
    ft = build_finetune_set(model, load_failures(run), tiny_data, F.FinetuneConfig(replay_ratio=0))
    ft.failures = [s for s in ft.failures if s.label == 0]
    assert ft.failures
    plain = selfblend.finetune_dataset(ft.samples, "labelled", 32, run, progress=False)
    assert len(plain) == len(ft.failures) and set(plain.labels) == {0}
    blended = selfblend.finetune_dataset(ft.samples, "self-blended", 32, run, progress=False)
    assert len(blended) == 2 * len(ft.failures) and blended.labels.count(1) == len(ft.failures)
    val = scan_split(tiny_data, "val", validate=False).samples
    cfg = F.FinetuneConfig(device="cpu", epochs=1, progress=False, keep_original_if_worse=False)
    result = F.finetune(model, ckpt, ft, val, run, cfg, train_dataset=blended)
    assert result.status == "done"
    tuned = load_checkpoint(result.checkpoint)
    assert tuned["fakes"] == "self-blended" and tuned["clips"] == clips  # videos are cut as for the original
