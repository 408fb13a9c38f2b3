"""One orchestration per stage: ``training.stage.train_run`` and ``evaluation.stage.evaluate_run`` are what notebook 02
and 03, the ``train`` command and the DFDC benchmark call. A recipe trained by the command and by the stage gives the
same weights; evaluating a run stores exactly what it decided; the benchmark's row comes from the two stages."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import shutil
from dataclasses import fields, replace
from pathlib import Path

import pytest
import torch

from deepfake_lib.core.recipe import DEFAULT_RECIPE, load_recipe, notebook_recipe, run_recipe, save_recipe
from deepfake_lib.evaluation.metrics import full_metrics
from deepfake_lib.evaluation.stage import evaluate_run, score_splits
from deepfake_lib.models.checkpoint import load_checkpoint
from deepfake_lib.training.stage import TrainedRun, model_config, train_config, train_run

ROOT = Path(__file__).resolve().parents[1]
# the tiny data's 32 px, a random backbone, one short epoch: a stage's mechanics, not its quality
TINY_RECIPE = DEFAULT_RECIPE.with_values(
    {"model.pretrained": False, "model.image_size": 32, "train.epochs": 1, "train.batch_size": 8,
     "train.head_warmup_epochs": 0, "evaluate.batch_size": 16},
    name="tiny",
)  # fmt: skip
RUNTIME = {"device": "cpu", "num_workers": 0, "progress": False}


@pytest.fixture(scope="module")
def trained(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    return train_run(TINY_RECIPE, tiny_data, tmp_path_factory.mktemp("stage") / "run", **RUNTIME)


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def test_the_configs_carry_every_setting_of_the_recipe() -> None:
    recipe = DEFAULT_RECIPE.with_values({"train.lr": 1e-3, "data.balance": "weight", "model.frequency_branch": True})
    train, model = train_config(recipe, device="cpu"), model_config(recipe, frames=4)
    for f in fields(recipe.train):
        assert getattr(train, f.name) == getattr(recipe.train, f.name), f.name
    assert (train.balance, train.batch_groups, train.device) == ("weight", False, "cpu")
    for f in fields(recipe.model):
        assert getattr(model, f.name) == getattr(recipe.model, f.name), f.name
    assert model.frames == 4
    with pytest.raises(TypeError, match="'lr'"):
        train_config(recipe, lr=0.1)  # a setting that changes the model belongs in the recipe


def test_train_run_writes_a_run_folder_with_the_recipe_it_trained(trained: TrainedRun) -> None:
    run = trained.setup.run_dir
    assert trained.recipe_path == run / "recipe.yaml" and load_recipe(trained.recipe_path) == TINY_RECIPE
    assert run_recipe(run) == TINY_RECIPE and run_recipe(run / "elsewhere") == DEFAULT_RECIPE
    ckpt = load_checkpoint(trained.result.best_path)
    assert ckpt["config"]["image_size"] == 32 and ckpt["config"]["pretrained"] is False
    assert ckpt["train_config"]["epochs"] == 1 and ckpt["fakes"] == "labelled"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["fakes"]["mode"] == "labelled" and len(trained.result.history) == 1


def test_the_train_command_trains_what_the_stage_trains(trained: TrainedRun, tiny_data: Path, tmp_path: Path) -> None:
    """The same recipe through ``cli.train`` gives the same weights, bit for bit, and the same recipe.yaml."""
    from deepfake_lib.cli import train as train_cli

    save_recipe(TINY_RECIPE, tmp_path / "tiny.yaml")
    argv = ["--recipe", str(tmp_path / "tiny.yaml"), "--data", str(tiny_data), "--run-dir", str(tmp_path / "cli")]
    assert train_cli.main([*argv, "--device", "cpu", "--num-workers", "0", "--no-progress"]) == 0
    assert load_recipe(tmp_path / "cli" / "recipe.yaml").differences(TINY_RECIPE) == {}
    assert json.loads((tmp_path / "cli" / "provenance.json").read_text())["data"]["files"] > 0
    ours = load_checkpoint(trained.result.best_path)["state_dict"]
    theirs = load_checkpoint(tmp_path / "cli" / "checkpoints" / "best_model.pth")["state_dict"]
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_notebook_parameters_make_the_recipe_and_keep_the_runs_name() -> None:
    params = {**TINY_RECIPE.notebook_parameters("02_train"), "WARMUP_EPOCHS": 1, "DEVICE": "cpu"}  # int for a float
    assert notebook_recipe("02_train", params, base=TINY_RECIPE) == TINY_RECIPE  # unchanged: the name stays
    changed = notebook_recipe("02_train", {**params, "EPOCHS": 3}, base=TINY_RECIPE)
    assert changed.name == "tiny (changed)" and changed.differences(TINY_RECIPE) == {"train.epochs": (3, 1)}


def test_evaluate_run_stores_what_it_decided(trained: TrainedRun, tiny_data: Path) -> None:
    run = trained.setup.run_dir
    ev = evaluate_run(run, tiny_data, TINY_RECIPE.evaluate, **RUNTIME)
    ckpt = load_checkpoint(run / "checkpoints" / "best_model.pth")
    assert ckpt["threshold"] == pytest.approx(ev.scores.choice.threshold)
    assert ckpt["temperature"] == pytest.approx(ev.scores.temperature) == pytest.approx(ev.model.temperature.item())
    assert ckpt["threshold_info"]["method"] == "eer" and ckpt["tta"] == "hflip"
    failures = json.loads((run / "failures.json").read_text())
    assert failures["split"] == "train" and failures["n_failures"] == len(ev.failures)
    record = json.loads((run / "metrics.json").read_text())["evaluate"]
    assert record["report_split"] == "test" and record["report"]["auc"] == pytest.approx(ev.report["auc"])
    assert set(ev.scores.raw) == {"val", "test", "train"}
    test = ev.final
    assert ev.report["auc"] == pytest.approx(full_metrics(test.labels, test.probs, ev.scores.choice.threshold)["auc"])


def test_score_splits_writes_nothing_and_without_calibration_keeps_the_raw_scores(
    trained: TrainedRun, tiny_data: Path
) -> None:
    run = trained.setup.run_dir
    from deepfake_lib.models import load_model

    model, _ = load_model(run / "checkpoints" / "best_model.pth")
    model.set_temperature(1.0)
    before = tree_digest(run)
    settings = replace(TINY_RECIPE.evaluate, calibrate=False, tta="none", threshold_method="fixed")
    s = score_splits(model, tiny_data, ["val", "test"], settings, num_workers=0, progress=False)
    assert tree_digest(run) == before
    assert s.fit is None and s.temperature == 1.0 and s.choice.threshold == 0.5
    assert all((s.raw[k].probs == s.preds[k].probs).all() for k in ("val", "test"))
    assert s.reports["test"]["n"] == len(s.preds["test"])


def flat_face_set(tiny_data: Path, out: Path) -> Path:
    """The tiny data as a flat ``{real,fake}`` set with a ``manifest.csv`` of groups (a DFDC face set's layout)."""
    rows = []
    for i, image in enumerate(sorted(tiny_data.glob("*/*/*.jpg"))):
        rel = f"{image.parent.name}/{i:03d}.jpg"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image, out / rel)
        rows.append({"path": rel, "group": f"g{i // 2}"})
    with (out / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, ["path", "group"])
        writer.writeheader()
        writer.writerows(rows)
    return out


def test_the_dfdc_benchmark_row_comes_from_the_two_stages(tiny_data: Path, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_recipe", ROOT / "benchmarks" / "dfdc_faces" / "recipe.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    data = flat_face_set(tiny_data, tmp_path / "faces")
    sets = [f"{k}={json.dumps(v)}" for k, v in
            {"model.pretrained": False, "model.image_size": 32, "train.epochs": 1, "train.batch_size": 8}.items()]  # fmt: skip
    argv = ["--data", str(data), "--recipe", "defaults", "--seed", "1", "--out", str(tmp_path / "row")]
    assert bench.main([*argv, *(a for s in sets for a in ("--set", s))]) == 0
    row = json.loads((tmp_path / "row" / "row.json").read_text())
    assert set(row["tta"]) == {"none", "hflip", "more"} and row["tta"]["none"]["relative_cost"] == 1.0
    assert row["tta"]["hflip"]["test_auc"] == pytest.approx(row["run_test_auc"])  # the run's own evaluation
    run = tmp_path / "row" / "run"
    recipe = load_recipe(run / "recipe.yaml")
    assert recipe.train.seed == 1 and recipe.name == "defaults (changed)" and (run / "failures.json").is_file()
    assert json.loads((run / "provenance.json").read_text())["data"]["folder"].startswith(str(tmp_path / "row"))
    assert json.loads((run / "metrics.json").read_text())["evaluate"]["tta"] == "hflip"
    assert sum(sum(c.values()) for c in row["split_counts"].values()) == len(list(data.glob("*/*.jpg")))
