"""python -m deepfake_lib.cli.demo (deepfake-demo): build the offline demo data set."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from deepfake_lib.cli.paths import check_output
from deepfake_lib.cli.runner import ArgumentParser, add_debug_flag, run_command
from deepfake_lib.demo.images import DemoSpec, build_demo_dataset


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m deepfake_lib.cli.demo", description="Build the offline demo dataset.")
    parser.add_argument("--out", default="data/demo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--no-videos", action="store_true", help="images only, no demo videos")
    add_debug_flag(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        check_output(args.out, "--out", "folder", create=False)
        spec = DemoSpec(seed=args.seed, videos=None) if args.no_videos else DemoSpec(seed=args.seed)
        path = build_demo_dataset(args.out, spec, force=args.force)
        print(f"demo data in {path}")
        return 0

    return run_command(body, bad_input=(OSError, ValueError), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
