"""Runs you can reproduce and compare: provenance (data fingerprint, versions), the comparison table and curves,
the runs command, and a rerun from what a run folder recorded."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import pytest

from deepfake_lib.cli import runs as runs_cli
from deepfake_lib.core.provenance import data_fingerprint, package_versions, provenance, provenance_differences
from deepfake_lib.core.recipe import DEFAULT_RECIPE, PRESETS, load_recipe, save_recipe
from deepfake_lib.report import compare
from tests.conftest import NotebookRun


def test_the_data_fingerprint_follows_the_listing(tmp_path: Path) -> None:
    (tmp_path / "d" / "real").mkdir(parents=True)
    (tmp_path / "d" / "real" / "a.jpg").write_bytes(b"12345")
    (tmp_path / "d" / ".cache").mkdir()
    (tmp_path / "d" / ".cache" / "x").write_bytes(b"ignored")
    first = data_fingerprint(tmp_path / "d")
    assert first["files"] == 1 and first["bytes"] == 5 and len(first["sha256"]) == 16
    shutil.copytree(tmp_path / "d", tmp_path / "copy")
    assert data_fingerprint(tmp_path / "copy") == first  # the same files anywhere: the same fingerprint
    (tmp_path / "d" / "real" / "a.jpg").write_bytes(b"123456")
    assert data_fingerprint(tmp_path / "d")["sha256"] != first["sha256"]
    versions = package_versions()
    assert versions["torch"] and versions["python"] and "deepfake-workbench" in versions
    before, after = provenance(tmp_path / "copy"), provenance(tmp_path / "d")
    assert provenance_differences(before, after)[0].startswith(f"data: {first['sha256']} (1 files) -> ")


def fake_run(root: Path, name: str, recipe, auc: float, val_aucs: list[float]) -> Path:
    run = root / name
    run.mkdir(parents=True)
    history = [{"epoch": i + 1, "val_auc": v, "val_loss": 1 - v} for i, v in enumerate(val_aucs)]
    metrics = {
        "train": {"history": history, "epochs_run": len(history), "best_epoch": len(history)},
        "evaluate": {"report": {"auc": auc, "n_fake": 50, "n_real": 150, "ece": 0.04, "tpr_at_5pct_fpr": 0.5}},
    }
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "config.json").write_text(json.dumps({"step_seconds": {"02_train.ipynb": 120.0, "03_evaluate.ipynb": 60}}))
    (run / "provenance.json").write_text(json.dumps({"data": {"folder": "/x/faces", "sha256": "abc", "files": 3}}))
    save_recipe(recipe, run / "recipe.yaml")
    return run


def test_runs_side_by_side_with_recipe_differences_intervals_and_curves(tmp_path: Path, capsys) -> None:
    a = fake_run(tmp_path, "a", DEFAULT_RECIPE, 0.88, [0.7, 0.8, 0.85])
    b = fake_run(tmp_path, "b", PRESETS["face-swap"], 0.87, [0.6, 0.82])
    table = compare.compare_runs([a, b])
    assert list(table["run"]) == ["a", "b"] and list(table["recipe"]) == ["defaults", "face-swap"]
    assert (
        table.loc[1, "differs from the first"]
        == "data.augment 'strong', train.scheduler 'warmup_cosine', train.ema_decay 0.999"
    )
    assert table.loc[0, "test AUC"] == 0.88 and table.loc[0, "minutes"] == 3.0 and table.loc[0, "data"] == "faces abc"
    low, high = map(float, table.loc[0, "AUC 95% interval"].split("-"))
    assert low < 0.88 < high and high - low < 0.15
    fig = compare.learning_curves_figure([a, b])
    assert [len(line.get_xdata()) for line in fig.axes[0].lines] == [3, 2]

    assert (
        runs_cli.main(["compare", str(a), str(b), "--csv", str(tmp_path / "t.csv"), "--plot", str(tmp_path / "c.png")])
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("| run | recipe |") and out[2].startswith("| a | defaults |") and len(out) == 4
    assert [r["run"] for r in csv.DictReader((tmp_path / "t.csv").open())] == ["a", "b"]
    assert (tmp_path / "c.png").stat().st_size > 0
    assert compare.latest_runs(tmp_path, 1) in ([a], [b])


def test_a_run_without_the_pipeline_s_timings_shows_its_training_time(tmp_path: Path) -> None:
    run = fake_run(tmp_path, "trained", DEFAULT_RECIPE, 0.9, [0.7, 0.8])
    (run / "config.json").write_text("{}")  # cli.train and the benchmarks write no step_seconds
    metrics = json.loads((run / "metrics.json").read_text())
    for row, seconds in zip(metrics["train"]["history"], (100.0, 80.0), strict=True):
        row["epoch_seconds"] = seconds
    (run / "metrics.json").write_text(json.dumps(metrics))
    assert compare.compare_runs([run]).loc[0, "minutes"] == 3.0
    for row in metrics["train"]["history"]:
        del row["epoch_seconds"]
    (run / "metrics.json").write_text(json.dumps(metrics))
    assert math.isnan(compare.compare_runs([run]).loc[0, "minutes"])  # nothing recorded: no time, not 0 minutes


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [(["compare"], "give run folders"), (["compare", "{tmp}/none"], "not found"), (["rerun", "{tmp}"], "config.json")],
)
def test_the_runs_command_refuses_what_is_not_a_run(argv: list[str], fragment: str, tmp_path: Path, capsys) -> None:
    assert runs_cli.main([a.format(tmp=tmp_path) for a in argv]) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith("error: ") and fragment in line and "\n" not in line


def test_a_run_is_run_again_from_what_its_folder_recorded(notebook_run: NotebookRun, tmp_path: Path) -> None:
    """The tiny pipeline run, copied, run again (only notebook 08, to stay quick) into a new folder beside it: the
    same recipe, parameters and data; the new run records them too."""
    runs = tmp_path / "runs"
    shutil.copytree(notebook_run.root, runs / "orig", symlinks=True)
    settings = runs_cli.rerun_settings(runs / "orig")
    assert settings["params"]["SEED"] == 3 and settings["params"]["EPOCHS"] == 2 and not settings["demo"]
    assert settings["recipe"] == runs / "orig" / "recipe.yaml"
    assert runs_cli.main(["rerun", str(runs / "orig"), "--run-id", "again", "--steps", "08"]) == 0
    again = runs / "again"
    assert load_recipe(again / "recipe.yaml").differences(load_recipe(runs / "orig" / "recipe.yaml")) == {}
    config = json.loads((again / "config.json").read_text())
    assert config["parameters"]["SEED"] == 3 and config["parameters"]["DATA_DIR"] == settings["data_dir"]
    recorded = json.loads((again / "provenance.json").read_text())
    assert recorded["data"] == json.loads((runs / "orig" / "provenance.json").read_text())["data"]
    assert (again / "figures" / "08_learning_curves.png").exists()
