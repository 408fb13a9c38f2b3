"""``python -m deepfake_lib.cli.runs`` (``deepfake-runs``): compare runs side by side, or run one again.

    python -m deepfake_lib.cli.runs compare outputs/runs/a outputs/runs/b [--plot curves.png] [--csv runs.csv]
    python -m deepfake_lib.cli.runs compare --last 5 [--runs-dir outputs/runs]
    python -m deepfake_lib.cli.runs rerun outputs/runs/a [--run-id a-again] [--steps 01-03]

``compare`` prints one row per run (recipe differences from the first, data fingerprint, test AUC with its 95%
interval, ECE, TPR at 5% FPR, epochs, minutes) and can draw the learning curves overlaid. ``rerun`` runs the
pipeline again with what the run folder recorded (its recipe.yaml, its parameters, its data and steps) into a new
run folder beside it, and says what differs in the data or the package versions.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from deepfake_lib.cli.argtypes import positive_int
from deepfake_lib.cli.paths import check_input, check_output
from deepfake_lib.cli.runner import ArgumentParser, CommandError, add_debug_flag, run_command


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m deepfake_lib.cli.runs", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compare", help="runs side by side")
    c.add_argument("runs", nargs="*", metavar="RUN", help="run folders (the first is the reference)")
    c.add_argument("--last", type=positive_int, metavar="N", help="the N most recent runs of --runs-dir")
    c.add_argument("--runs-dir", default="outputs/runs", help="where --last looks (default outputs/runs)")
    c.add_argument("--plot", metavar="FILE", help="write the learning curves overlaid to FILE (.png)")
    c.add_argument("--csv", metavar="FILE", help="write the table as CSV")
    r = sub.add_parser("rerun", help="run a run again from what its folder recorded")
    r.add_argument("run", metavar="RUN", help="the run folder")
    r.add_argument("--run-id", help="the new run's name (default: RUN-rerun-<time>)")
    r.add_argument("--steps", help="which notebooks (default: the ones the run ran)")
    for sp in (c, r):
        add_debug_flag(sp)
    return p


def compare(args: argparse.Namespace) -> int:
    from deepfake_lib.report.compare import compare_runs, latest_runs, learning_curves_figure, markdown_table

    runs = [Path(r) for r in args.runs] + (latest_runs(args.runs_dir, args.last) if args.last else [])
    if not runs:
        raise CommandError("give run folders, or --last N")
    for run in runs:
        check_input(run, "RUN", "folder")
    for out in (args.plot, args.csv):
        if out:
            check_output(out, "--plot" if out == args.plot else "--csv", "file", runs, runs)
    try:
        table = compare_runs(runs)
    except FileNotFoundError as exc:
        raise CommandError(str(exc)) from None
    print(markdown_table(table))
    if args.csv:
        from deepfake_lib.core.runs import atomic_write

        atomic_write(args.csv, lambda tmp: table.to_csv(tmp, index=False))
    if args.plot:
        from deepfake_lib.core.runs import save_figure_file

        save_figure_file(learning_curves_figure(runs), args.plot)
    return 0


def rerun_settings(run: Path) -> dict[str, Any]:
    """What ``run_pipeline`` needs to run ``run`` again: its parameters (without the run folder), data, steps,
    recipe and whether it was the demo."""
    from deepfake_lib.core.recipe import RECIPE_FILE
    from deepfake_lib.core.runs import CONFIG_FILE, read_json

    config = read_json(run / CONFIG_FILE, default=None)
    if not isinstance(config, dict) or "parameters" not in config:
        raise CommandError(f"{run}: no config.json with parameters: not a pipeline run folder")
    params = dict(config["parameters"])
    params.pop("RUN_DIR", None)
    demo = bool(config.get("demo", "BUILD_DEMO_DATA" not in params))
    steps = ",".join(str(name)[:2] for name in config.get("steps") or []) or None
    recipe = run / RECIPE_FILE if (run / RECIPE_FILE).is_file() else None
    return {"params": params, "data_dir": params.pop("DATA_DIR", None), "steps": steps, "recipe": recipe, "demo": demo}


def rerun(args: argparse.Namespace) -> int:
    from deepfake_lib import pipeline
    from deepfake_lib.core.provenance import PROVENANCE_FILE, provenance_differences
    from deepfake_lib.core.runs import read_json

    run = check_input(args.run, "RUN", "folder").resolve()
    settings = rerun_settings(run)
    run_id = pipeline.check_run_id(args.run_id or f"{run.name}-rerun-{datetime.now():%Y%m%d-%H%M%S}")
    if (run.parent / run_id).resolve() == run:
        raise CommandError(f"--run-id {run_id}: that is the run itself; a rerun goes into a new run folder")
    new = pipeline.run_pipeline(
        params=settings["params"], steps=args.steps or settings["steps"], run_id=run_id, runs_dir=run.parent,
        data_dir=settings["data_dir"], demo=settings["demo"], recipe=settings["recipe"],
    )  # fmt: skip
    before, after = read_json(run / PROVENANCE_FILE, default={}), read_json(new / PROVENANCE_FILE, default={})
    for line in provenance_differences(before or {}, after or {}) if before else []:
        print(f"note: differs from {run.name}: {line}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns 0 done, 2 bad input or usage, 1 an unexpected error or a failed notebook."""
    from deepfake_lib.pipeline import PipelineError

    args = build_parser().parse_args(argv)
    body = (lambda: compare(args)) if args.command == "compare" else (lambda: rerun(args))
    return run_command(body, bad_input=(PipelineError,), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
