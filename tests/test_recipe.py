"""The recipe is the single source of every default: the notebooks' parameters cells, the train command's flags,
the benchmarks and the config dataclasses agree with it; presets, YAML and the run folder's recipe.yaml."""

from __future__ import annotations

import ast
import importlib.util
import json
from dataclasses import fields
from pathlib import Path

import pytest

from deepfake_lib.core.recipe import (
    DEFAULT_RECIPE,
    NOTEBOOK_FIELDS,
    PRESETS,
    Recipe,
    RecipeError,
    flat_values,
    load_recipe,
    recipe_from_parameters,
    save_recipe,
)

ROOT = Path(__file__).resolve().parents[1]


def parameters_cell(notebook: str) -> dict[str, object]:
    """The literal values of a notebook's ``parameters`` cell."""
    nb = json.loads((ROOT / "notebooks" / f"{notebook}.ipynb").read_text())
    [cell] = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    tree = ast.parse("".join(cell["source"]))
    return {n.targets[0].id: ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)}


@pytest.mark.parametrize("notebook", sorted(NOTEBOOK_FIELDS))
def test_every_notebook_parameters_cell_holds_the_recipes_defaults(notebook: str) -> None:
    cell = parameters_cell(notebook)
    expected = DEFAULT_RECIPE.notebook_parameters(notebook)
    assert {k: cell[k] for k in expected} == expected
    for name, value in expected.items():  # the same type too: 3 is not 3.0 for papermill's injected cell
        assert type(cell[name]) is type(value) or isinstance(value, float) and isinstance(cell[name], int), name


def test_the_config_dataclasses_take_their_defaults_from_the_recipe() -> None:
    from deepfake_lib.models.detector import ModelConfig
    from deepfake_lib.training.finetuning import FinetuneConfig
    from deepfake_lib.training.loop import TrainConfig

    r = DEFAULT_RECIPE
    for config, section in ((ModelConfig(), r.model), (FinetuneConfig(), r.finetune)):
        for f in fields(section):
            assert getattr(config, f.name) == getattr(section, f.name), f.name
    train = TrainConfig()
    for f in fields(r.train):
        assert getattr(train, f.name) == getattr(r.train, f.name), f.name
    assert (train.balance, train.batch_groups) == (r.data.balance, r.data.batch_groups)


def test_the_train_commands_defaults_are_the_recipes() -> None:
    from deepfake_lib.cli import train as train_cli

    args = train_cli.build_parser().parse_args(["--data", "d", "--run-dir", "r"])
    assert train_cli.args_recipe(args, DEFAULT_RECIPE) == DEFAULT_RECIPE
    swap = PRESETS["face-swap"]
    args = train_cli.build_parser(swap).parse_args(["--data", "d", "--run-dir", "r", "--epochs", "3"])
    trained = train_cli.args_recipe(args, swap)
    assert trained.differences(swap) == {"train.epochs": (3, 15)} and trained.data.augment == "strong"


def test_the_benchmark_rows_are_the_presets() -> None:
    spec = importlib.util.spec_from_file_location("bench_recipe", ROOT / "benchmarks" / "dfdc_faces" / "recipe.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert {"defaults": PRESETS["defaults"], "new": PRESETS["face-swap"]} == bench.RECIPES
    from deepfake_lib.training.stage import model_config, train_config

    swap = PRESETS["face-swap"].with_values({"train.seed": 1})
    model, train = model_config(swap), train_config(swap)
    assert (model.image_size, model.trainable_blocks, model.pretrained) == (128, -1, "auto")
    assert (train.scheduler, train.ema_decay, train.seed, train.epochs) == ("warmup_cosine", 0.999, 1, 15)


def test_presets_round_trip_through_yaml_and_partial_files_start_from_a_preset(tmp_path: Path) -> None:
    for name, recipe in PRESETS.items():
        save_recipe(recipe, tmp_path / f"{name}.yaml")
        assert load_recipe(tmp_path / f"{name}.yaml") == recipe
    assert PRESETS["face-swap"].differences(DEFAULT_RECIPE) == {
        "data.augment": ("strong", "basic"), "train.scheduler": ("warmup_cosine", "cosine"),
        "train.ema_decay": (0.999, 0.0),
    }  # fmt: skip
    (tmp_path / "mine.yaml").write_text("base: face-swap\ntrain:\n  lr: 1e-3\n  epochs: 20\n")
    mine = load_recipe(tmp_path / "mine.yaml")
    assert mine.train.lr == 1e-3 and isinstance(mine.train.lr, float) and mine.data.augment == "strong"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("train:\n  epochs: 2.5\n", "train.epochs 2.5 is not of type int"),
        ("train:\n  lrr: 1\n", "unknown setting 'train.lrr'"),
        ("data:\n  fakes: all\n", "data.fakes 'all' is not one of"),
        ("train:\n  lr: .nan\n", "train.lr nan is not a finite number"),
        ("base: x\n", "base 'x' is not a preset"),
        ("trian:\n  lr: 1\n", "unknown section(s) ['trian']"),
        ("train: &a {lr: 1}\nmodel: *a\n", "alias"),
        ("model:\n  image_size: 8\n", "image_size must be a whole number >= 32"),
    ],
)
def test_a_bad_recipe_file_is_refused_naming_the_file_and_the_value(text: str, fragment: str, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(RecipeError) as err:
        load_recipe(tmp_path / "bad.yaml")
    assert fragment in str(err.value) and str(tmp_path / "bad.yaml") in str(err.value)


def test_a_recipe_from_what_the_notebooks_ran_with() -> None:
    ran = recipe_from_parameters({"02_train": {"EPOCHS": 2, "LR": 3e-4}, "04_finetune.ipynb": {"EPOCHS": 1}})
    assert ran.differences(DEFAULT_RECIPE) == {"train.epochs": (2, 15), "finetune.epochs": (1, 3)}
    assert recipe_from_parameters({}, PRESETS["demo"]) == PRESETS["demo"]
    assert set(flat_values(ran)) == {f"{s}.{k}" for s, keys in Recipe().to_dict().items() if s != "name" for k in keys}


def test_the_train_command_refuses_an_unknown_recipe(capsys) -> None:
    from deepfake_lib.cli import train as train_cli

    assert train_cli.main(["--recipe", "nope", "--data", "d", "--run-dir", "r"]) == 2
    assert capsys.readouterr().err.startswith("error: --recipe: recipe 'nope': neither a preset")


def test_the_pipeline_runs_a_recipe_and_keeps_it_in_the_run_folder(tiny_data: Path, tmp_path: Path, capsys) -> None:
    """``--recipe face-swap`` (only the quick notebook 08 runs): the run folder's recipe.yaml, config and provenance
    record it; an unknown recipe is refused before any notebook, naming it."""
    from deepfake_lib.cli import pipeline as pipeline_cli

    argv = ["--data", str(tiny_data), "--runs-dir", str(tmp_path), "--steps", "08", "--recipe"]
    assert pipeline_cli.main([*argv, "face-swap", "--run-id", "swap"]) == 0
    run = tmp_path / "swap"
    assert load_recipe(run / "recipe.yaml") == PRESETS["face-swap"]
    assert json.loads((run / "config.json").read_text())["recipe"] == "face-swap"
    assert json.loads((run / "provenance.json").read_text())["data"]["files"] > 0
    capsys.readouterr()
    assert pipeline_cli.main([*argv, "nope", "--run-id", "bad"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: --recipe: recipe 'nope': neither a preset")
    assert not (tmp_path / "bad").exists()
