"""python -m deepfake_lib.cli.export (deepfake-export): a checkpoint -> an ONNX file checked against PyTorch."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from deepfake_lib.cli.argtypes import MAX_CLIP_FRAMES, clip_frames, count_up_to, positive_float, positive_int
from deepfake_lib.cli.paths import check_input, check_output
from deepfake_lib.cli.runner import ArgumentParser, CommandError, add_debug_flag, run_command
from deepfake_lib.deploy.export import DEFAULT_OPSET, DEFAULT_TOLERANCE, ExportError, export_onnx


# --------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m deepfake_lib.cli.export",
        description="Export a workbench checkpoint to ONNX and check it against PyTorch with onnxruntime. "
        "Prints one JSON object (file, size, largest probability difference).",
        epilog="Score the file with: python -m deepfake_lib.predict --runtime onnx --weights model.onnx --frame IMG "
        "--out DIR. Exit codes: 0 written, 2 bad input or usage, 1 the check failed or an unexpected error "
        "(nothing written).",
    )
    parser.add_argument("--weights", required=True, metavar="W", help="a workbench checkpoint (.pth)")
    parser.add_argument("--out", required=True, metavar="FILE", help="the ONNX file to write (e.g. model.onnx)")
    parser.add_argument(
        "--frames",
        type=clip_frames,
        default=1,
        metavar="T",
        help=f"clip length: the graph takes clips of T frames (default 1: images; at most {MAX_CLIP_FRAMES})",
    )
    parser.add_argument(
        "--opset", type=positive_int, default=DEFAULT_OPSET, metavar="N", help="ONNX opset (default 18)"
    )
    parser.add_argument("--check-images", metavar="DIR", help="verify on images from DIR (default: synthetic images)")
    parser.add_argument(
        "--n-check", type=count_up_to(256), default=8, metavar="N", help="clips to verify on (default 8, at most 256)"
    )
    parser.add_argument(
        "--tolerance", type=positive_float, default=DEFAULT_TOLERANCE, metavar="E", help="largest allowed difference"
    )
    add_debug_flag(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit code: 0 written, 2 bad input or usage, 1 check failed or unexpected."""
    from deepfake_lib.models.checkpoint import CheckpointError
    from deepfake_lib.predict.results import PredictError

    args = build_parser().parse_args(argv)

    def body() -> int:
        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            raise CommandError(
                f"export needs onnx and onnxruntime ({exc.name} missing): pip install -e '.[onnx]'"
            ) from None
        check_input(args.weights, "--weights", "file")
        if args.check_images:
            check_input(args.check_images, "--check-images", "folder")
        check_output(args.out, "--out", "file", [args.weights, args.check_images], [args.check_images])
        result = export_onnx(
            args.weights, args.out, args.frames, args.opset, args.check_images, args.n_check, args.tolerance
        )
        print(json.dumps(result.summary()))
        return 0

    # ExportError carries its own exit code (1 when the exported model disagrees with PyTorch)
    return run_command(body, bad_input=(CheckpointError, PredictError, ExportError), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
