"""``run_pipeline``: a run as a short sequence of named steps: select the notebooks, resolve and check every
input, record the run's start, execute the notebooks, record its end."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from deepfake_lib.core.cpu_env import set_for_children
from deepfake_lib.core.recipe import Recipe
from deepfake_lib.core.runs import new_run_id, resolve_path
from deepfake_lib.pipeline.checks import check_data, check_device, check_parameters, check_run_id
from deepfake_lib.pipeline.config import DEMO_DATA, _given_parameters, _run_recipe, merge_parameters
from deepfake_lib.pipeline.execute import _execute_steps
from deepfake_lib.pipeline.notebooks import declared_parameters, list_notebooks, select_steps
from deepfake_lib.pipeline.record import _finish_record, _start_record


def run_pipeline(
    params: dict[str, Any] | None = None,
    steps: str | None = None,
    run_id: str | None = None,
    runs_dir: str | os.PathLike[str] = "outputs/runs",
    data_dir: str | os.PathLike[str] | None = None,
    device: str | None = None,
    demo: bool = False,
    notebooks: Path | None = None,
    log=print,
    verbose: bool = False,
    recipe: str | os.PathLike[str] | Recipe | None = None,
) -> Path:
    """Execute the selected notebooks in order into ``<runs_dir>/<run_id>/executed/``; returns the run folder.

    ``log`` gets one line per finished notebook (and the live progress line, ``core.progress``) and one for the
    summary; ``verbose`` adds the set-up lines and streams each notebook's output. Raises ``PipelineError`` naming
    the notebook and the failing cell; the partial executed notebook stays. ``recipe`` (a preset name, a YAML file or a ``Recipe``; ``--demo``: the demo preset)
    gives notebooks 01-04 their recipe parameters, each notebook its own (``EPOCHS`` is 02's epochs and 04's
    fine-tuning epochs); ``params`` win over it. The run folder keeps the recipe it ran with as ``recipe.yaml``.
    """
    detail = log if verbose else (lambda *a, **k: None)
    set_for_children()  # the notebook kernels start with the fast allocator settings
    available = list_notebooks(notebooks)
    selected = select_steps(steps, available)
    run_dir = resolve_path(runs_dir) / (check_run_id(run_id) if run_id else new_run_id("demo" if demo else "run"))
    params = merge_parameters(params, run_dir, data_dir, device, demo)
    declared = {k: declared_parameters(nb) for k, nb in available.items()}
    check_parameters(params, declared)  # every check runs before any kernel starts
    base = _run_recipe(recipe, demo, run_dir)
    given = _given_parameters(base, params, available, declared)
    check_device(params.get("DEVICE"))
    _build_or_check_data(params, declared, demo, verbose, detail)
    config = _start_record(run_dir, available, selected, params, declared, given, base, demo)
    detail(f"run folder: {run_dir}")
    results = _execute_steps(available, selected, given, run_dir, log, verbose)
    _finish_record(run_dir, config, results, log)
    return run_dir


def _build_or_check_data(
    params: dict[str, Any], declared: dict[str, dict[str, Any]], demo: bool, verbose: bool, detail
) -> None:
    """The data folder a run reads: with ``demo`` on the demo data, it is built (``detail`` gets its line), else a
    ``DATA_DIR`` given as a path is checked (``check_data``)."""
    if demo and params["DATA_DIR"] == DEMO_DATA:
        from deepfake_lib.demo.images import build_demo_dataset

        detail(f"demo data: {build_demo_dataset(resolve_path(DEMO_DATA), progress=verbose)}")
    elif isinstance(params.get("DATA_DIR"), str):
        check_data(params, declared)
