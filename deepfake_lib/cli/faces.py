"""python -m deepfake_lib.cli.faces (deepfake-faces): crop the faces of a folder into a cached face folder."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from deepfake_lib.cli.argtypes import positive_float, size_or_native, unit_interval
from deepfake_lib.cli.paths import check_device
from deepfake_lib.cli.runner import ArgumentParser, add_debug_flag, run_command
from deepfake_lib.prepare.faces import CONFIG_FILE, MANIFEST_FILE, REPORT_FILE, FacePrepError, prepare_faces


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m deepfake_lib.cli.faces",
        description="Detect faces (MTCNN) in every image under SRC and write square face crops (PNG) into OUT, "
        "keeping SRC's folder layout. Re-runs into the same OUT only process new or changed files.",
        epilog=f"Writes OUT/{MANIFEST_FILE}, OUT/{REPORT_FILE} (files with no face or unreadable, with the "
        f"reason) and OUT/{CONFIG_FILE}; prints a one-line JSON summary. Exit codes: 0 done, 2 bad input or "
        "usage (one line on stderr), 1 unexpected error.",
    )
    parser.add_argument("src", metavar="SRC", help="folder of images (searched recursively)")
    parser.add_argument("--out", required=True, metavar="OUT", help="output folder (not inside SRC)")
    parser.add_argument(
        "--margin", type=positive_float, default=1.3, metavar="M", help="crop side / face box side (default 1.3)"
    )
    parser.add_argument(
        "--size", type=size_or_native, default=224, metavar="PX", help="crop size (default 224; 0 = native)"
    )
    parser.add_argument("--all-faces", action="store_true", help="keep every face, not only the largest")
    parser.add_argument(
        "--min-score", type=unit_interval, default=0.9, metavar="S", help="detector score (default 0.9)"
    )
    parser.add_argument("--device", default="cpu", metavar="D", help="cpu (default), cuda, auto")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_debug_flag(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit code: 0 done, 2 bad input or usage, 1 unexpected error."""
    args = build_parser().parse_args(argv)

    def body() -> int:
        check_device(args.device)
        result = prepare_faces(
            args.src,
            args.out,
            margin=args.margin,
            size=args.size or None,
            keep="all" if args.all_faces else "largest",
            min_score=args.min_score,
            device=args.device,
            progress=not args.no_progress,
        )
        print(json.dumps(result.summary()))
        return 0

    return run_command(body, bad_input=(FacePrepError,), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
