"""What a run leaves in its folder besides the executed notebooks: ``config.json`` (settings, parameters, step
times), ``recipe.yaml``, ``provenance.json``, the run summary, and the ``latest`` link."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deepfake_lib import __version__
from deepfake_lib.core.provenance import PROVENANCE_FILE, provenance
from deepfake_lib.core.recipe import RECIPE_FILE, Recipe, recipe_from_parameters, save_recipe
from deepfake_lib.core.runs import CHECKPOINTS, CONFIG_FILE, FIGURES, METRICS_FILE, read_json, resolve_path, write_json
from deepfake_lib.pipeline.execute import EXECUTED_DIR, StepResult
from deepfake_lib.prepare.datasets.spec import input_path
from deepfake_lib.report.summary import SUMMARY_FILE, write_summary

# What a pipeline writes in its run folder: none of it may be a user's input (a config saved as the run's own)
RUN_FOLDER_WRITES = (
    CONFIG_FILE,
    RECIPE_FILE,
    PROVENANCE_FILE,
    EXECUTED_DIR,
    METRICS_FILE,
    SUMMARY_FILE,
    CHECKPOINTS,
    FIGURES,
)


def _start_record(
    run_dir: Path,
    available: dict[str, Path],
    selected: list[str],
    params: dict[str, Any],
    declared: dict[str, dict[str, Any]],
    given: dict[str, dict[str, Any]],
    base: Recipe,
    demo: bool,
) -> dict[str, Any]:
    """Create the run folder and write what the run starts from: ``config.json`` (a re-used run's earlier
    invocations kept in it), ``recipe.yaml`` and ``provenance.json``; returns the config, for ``_finish_record``."""
    executed_dir = run_dir / EXECUTED_DIR
    executed_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / CONFIG_FILE
    previous = read_json(config_path, default={})
    earlier = previous.pop("earlier_invocations", [])
    config = {
        "run_id": run_dir.name,
        "library_version": __version__,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "steps": [available[k].name for k in selected],
        "parameters": params,
        "recipe": base.name,
        "demo": demo,
        "notebook_parameters": {available[k].name: {**declared[k], **given[k]} for k in selected},
        "earlier_invocations": earlier + ([previous] if previous else []),
    }
    write_json(config_path, config)
    save_recipe(recipe_from_parameters({available[k].stem: given[k] for k in selected}, base), run_dir / RECIPE_FILE)
    data = input_path(params.get("DATA_DIR"))  # a dataset's root for "NAME:ROOT?options"
    write_json(run_dir / PROVENANCE_FILE, provenance(resolve_path(data) if isinstance(data, str) else None))
    return config


def _finish_record(run_dir: Path, config: dict[str, Any], results: list[StepResult], log) -> None:
    """Finish ``config.json`` with the end time and each notebook's seconds, write the run summary, point
    ``latest`` at the run and ``log`` the summary's line."""
    config_path = run_dir / CONFIG_FILE
    config["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    config["step_seconds"] = {r.notebook: round(r.seconds, 2) for r in results}
    write_json(config_path, config)
    summary = write_summary(run_dir)
    _point_latest(run_dir)
    log(f"summary: {summary}", flush=True)


def _point_latest(run_dir: Path) -> None:
    """``<runs_dir>/latest`` -> this run (a symlink; skipped where symlinks are not allowed)."""
    link = run_dir.parent / "latest"
    try:
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(run_dir.name, target_is_directory=True)
    except OSError:
        pass
