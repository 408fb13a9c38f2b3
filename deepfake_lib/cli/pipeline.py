"""python -m deepfake_lib.pipeline (deepfake-pipeline): run the numbered notebooks with papermill into a run folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deepfake_lib import pipeline
from deepfake_lib.cli.argtypes import positive_int
from deepfake_lib.cli.paths import check_input, check_output
from deepfake_lib.cli.runner import ArgumentParser, add_debug_flag, run_command
from deepfake_lib.core.runs import resolve_path
from deepfake_lib.pipeline import PipelineError, load_config, parse_value, run_pipeline
from deepfake_lib.pipeline.record import RUN_FOLDER_WRITES
from deepfake_lib.prepare.datasets.spec import input_path


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m deepfake_lib.pipeline", description=pipeline.__doc__.split("\n\n")[0])
    p.add_argument("--demo", action="store_true", help="build the offline demo dataset and run on it")
    p.add_argument("--config", help="YAML file: parameters (UPPER_CASE) and data/device/steps/run_id")
    p.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    p.add_argument(
        "--recipe", metavar="NAME|FILE",
        help="a preset (defaults, face-swap, demo) or a recipe YAML file: the parameters of 01-04 (-p wins)",
    )  # fmt: skip
    p.add_argument("--steps", help="which notebooks, e.g. 02-05, 05 or 01,03 (default: all)")
    p.add_argument("--data", help="DATA_DIR for every notebook")
    p.add_argument("--run-id", help="run folder name; an existing run is reused (e.g. with --steps 05)")
    p.add_argument("--runs-dir", default=None, help="where run folders go (default outputs/runs)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument(
        "--num-processes", type=positive_int, help="02 trains on this many processes, one per GPU (NUM_PROCESSES)"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="show the notebooks' output and the kernels' log")
    add_debug_flag(p)
    return p


def main(argv: list[str] | None = None) -> int:
    """The command line; returns 0 when every notebook ran, 1 when the pipeline stopped (one ``error:`` line)."""
    args = build_parser().parse_args(argv)

    def body() -> int:
        if args.config:
            check_input(args.config, "--config", "file")
        options, params = load_config(args.config) if args.config else ({}, {})
        problems = [problem for name, value in params.items() if (problem := pipeline.parameter_problem(name, value))]
        if problems:  # named with the file they came from
            raise pipeline.PipelineInputError(f"config file {args.config}: {'; '.join(problems)}")
        runs_dir = args.runs_dir or options.get("runs_dir") or "outputs/runs"
        data = args.data or options.get("data")
        read = input_path(data)  # a dataset's root for "NAME:ROOT?options"
        recipe = args.recipe or options.get("recipe")
        recipe_file = recipe if recipe is not None and Path(str(recipe)).is_file() else None
        check_output(runs_dir, "--runs-dir", "folder", [read, args.config, recipe_file], [read], create=False)
        run_id = args.run_id or options.get("run_id")
        if run_id is not None:  # an existing run is re-used: what it writes there must not be an input
            run_dir = resolve_path(runs_dir) / pipeline.check_run_id(run_id)
            check_output(
                run_dir,
                "--run-id",
                "folder",
                [read, args.config, recipe_file],
                create=False,
                writes=RUN_FOLDER_WRITES,
            )
        params.update({name: parse_value(value) for name, value in args.param})
        if args.num_processes:
            params["NUM_PROCESSES"] = args.num_processes
        run_pipeline(
            params=params,
            steps=args.steps or options.get("steps"),
            run_id=run_id,
            runs_dir=runs_dir,
            data_dir=data,
            device=args.device or options.get("device"),
            demo=args.demo,
            verbose=args.verbose,
            recipe=recipe,
        )
        return 0

    return run_command(body, bad_input=(PipelineError,), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
