"""A run's parameters: ``-p`` values and YAML config files read, the recipe a run starts from, and the parameters
merged with ``--data``/``--device``/``--demo`` and handed to each notebook."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from deepfake_lib.core.recipe import RECIPE_FILE, Recipe, RecipeError, load_recipe
from deepfake_lib.core.runs import resolve_path
from deepfake_lib.core.strict_yaml import StrictYamlError, load_strict
from deepfake_lib.pipeline.errors import PipelineInputError

DEMO_DATA = "data/demo"
DEMO_RECIPE = "demo"  # core.recipe's preset for --demo: 240 training images are learnt within a few epochs


def parse_value(text: str) -> Any:
    """A ``-p`` value as YAML (numbers, booleans, lists); ``None``/``null`` -> None; text that is not plain YAML
    (or holds an alias) stays text."""
    if text in ("None", "null", "~"):
        return None
    try:
        value, _ = load_strict(text)
    except StrictYamlError:
        return text
    if isinstance(value, str):
        try:
            return float(value)  # YAML 1.1 reads "1e-3" as a string
        except ValueError:
            return value
    return value


def load_config(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a YAML run config -> (options: data/device/steps/run_id, notebook parameters). A file that is not
    YAML, not a mapping, whose ``parameters`` is not a mapping, or that holds aliases or duplicate keys is
    refused with the file and the line (``core.strict_yaml``)."""
    p = resolve_path(path)
    if not p.is_file():
        raise PipelineInputError(f"config file {p} not found")
    try:
        raw, root = load_strict(p.read_text(encoding="utf-8"))
        raw = raw or {}
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelineInputError(f"config file {p}: cannot read it ({exc})") from None
    except StrictYamlError as exc:
        where = f", line {exc.line}" if exc.line else ""
        raise PipelineInputError(f"config file {p}{where}: {exc.problem}") from None
    if not isinstance(raw, dict):
        line = root.start_mark.line + 1 if root is not None else 1
        raise PipelineInputError(f"{p}, line {line}: expected a mapping of settings, found {type(raw).__name__}")
    if raw.get("parameters") is not None and not isinstance(raw["parameters"], dict):
        key = next(k for k, _ in root.value if k.value == "parameters")
        raise PipelineInputError(
            f"{p}, line {key.start_mark.line + 1}: parameters must be a mapping of NAME: value, "
            f"found {type(raw['parameters']).__name__}"
        )
    params = dict(raw.pop("parameters", None) or {})
    params.update({k: v for k, v in raw.items() if isinstance(k, str) and k.isupper()})
    options = {k: v for k, v in raw.items() if not (isinstance(k, str) and k.isupper())}
    unknown = set(options) - {"data", "device", "steps", "run_id", "runs_dir", "recipe"}
    if unknown:
        raise PipelineInputError(f"{p}: unknown setting(s) {sorted(map(str, unknown))}; parameters must be UPPER_CASE")
    return options, params


def _run_recipe(recipe: str | os.PathLike[str] | Recipe | None, demo: bool, run_dir: Path) -> Recipe:
    """The recipe a run starts from: the one given, else the run folder's own (a step re-run continues its run),
    else the demo preset for ``demo``, else the defaults; ``PipelineInputError`` for one that cannot be read."""
    own = run_dir / RECIPE_FILE
    source = recipe if recipe is not None else own if own.is_file() else DEMO_RECIPE if demo else None
    try:
        return load_recipe(source)
    except RecipeError as exc:
        raise PipelineInputError(f"--recipe: {exc}") from None


def merge_parameters(
    params: dict[str, Any] | None,
    run_dir: Path,
    data_dir: str | os.PathLike[str] | None = None,
    device: str | None = None,
    demo: bool = False,
) -> dict[str, Any]:
    """The notebook parameters of a run: ``params`` (from -p / the config), then ``--data``/``--device``,
    the run folder, and with ``demo`` the demo data folder unless given (the demo's recipe is ``DEMO_RECIPE``).
    Outside the demo a missing data folder must be an error, so ``BUILD_DEMO_DATA`` is off."""
    merged = dict(params or {})
    if data_dir is not None:
        merged["DATA_DIR"] = str(data_dir)
    if device is not None:
        merged["DEVICE"] = device
    if demo:
        merged.setdefault("DATA_DIR", DEMO_DATA)
    else:
        merged.setdefault("BUILD_DEMO_DATA", False)
    merged["RUN_DIR"] = str(run_dir)
    return merged


def _given_parameters(
    base: Recipe, params: dict[str, Any], available: dict[str, Path], declared: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """What each notebook is given: its part of the recipe ``base`` with ``params`` over it, only the parameters
    it declares."""
    given = {k: {**base.notebook_parameters(available[k].stem), **params} for k in available}
    return {k: {n: v for n, v in values.items() if n in declared[k]} for k, values in given.items()}
