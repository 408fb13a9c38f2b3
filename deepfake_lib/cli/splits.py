"""python -m deepfake_lib.cli.splits (deepfake-splits): a flat {real,fake} folder -> grouped train/val/test splits."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from deepfake_lib.cli.argtypes import unit_interval
from deepfake_lib.cli.runner import ArgumentParser, add_debug_flag, run_command
from deepfake_lib.prepare.split_writer import INFO_FILE, MANIFEST_FILE
from deepfake_lib.prepare.splits import make_splits


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m deepfake_lib.cli.splits",
        description="Split a flat SRC/{real,fake} image folder into OUT/{train,val,test}/{real,fake} with no "
        "group (identity, source video, source photo) on two sides. Prints a one-line JSON summary.",
        epilog=f"Writes symlinks (or copies with --copy), OUT/{MANIFEST_FILE} and OUT/{INFO_FILE}; the source "
        "is never changed. Exit codes: 0 done, 2 bad input (one 'error:' line on stderr).",
    )
    parser.add_argument("src", metavar="SRC", help="flat folder holding real/ and fake/")
    parser.add_argument("--out", required=True, metavar="OUT", help="output folder (new, empty, or made by this)")
    parser.add_argument("--fractions", type=unit_interval, nargs="+", default=[0.7, 0.15, 0.15], metavar="F")
    parser.add_argument("--seed", type=int, default=0)
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--group-regex", metavar="R", help="group key: first capture group of R in the file name")
    how.add_argument("--group-csv", metavar="F", help="CSV mapping paths (or file names) to groups")
    parser.add_argument("--group-column", metavar="C", help="the CSV column holding the group")
    parser.add_argument("--path-column", default="path", metavar="P", help="the CSV column holding the path")
    parser.add_argument("--copy", action="store_true", help="copy files instead of symlinking them")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_debug_flag(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns 0 when done, 2 for bad input (one ``error:`` line on stderr)."""
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)

    def body() -> int:
        args = build_parser().parse_args(argv)
        result = make_splits(
            args.src,
            args.out,
            fractions=args.fractions,
            seed=args.seed,
            group_regex=args.group_regex,
            group_csv=args.group_csv,
            group_column=args.group_column,
            path_column=args.path_column,
            mode="copy" if args.copy else "link",
            progress=not args.no_progress,
        )
        print(json.dumps(result.summary()))
        return 0

    return run_command(body, bad_input=(ValueError, OSError), debug=debug)


if __name__ == "__main__":
    sys.exit(main())
