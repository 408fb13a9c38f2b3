"""python -m deepfake_lib.cli.probe (deepfake-probe): the linear-probe baseline of a data set."""

from __future__ import annotations

import argparse
import json
import sys

from deepfake_lib.cli.argtypes import image_size, positive_int
from deepfake_lib.cli.paths import check_device, check_input, check_output
from deepfake_lib.cli.runner import ArgumentParser, add_debug_flag, run_command
from deepfake_lib.evaluation import probe
from deepfake_lib.evaluation.baselines import KEYS
from deepfake_lib.evaluation.probe import linear_probe


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m deepfake_lib.cli.probe", description=probe.__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="DATA_DIR with <split>/{real,fake}")
    p.add_argument("--backbone", default="efficientnet-b0")
    p.add_argument("--pretrained", default="auto", choices=["auto", "true"], help="'auto' falls back like training")
    p.add_argument("--weights-path", default=None)
    p.add_argument("--image-size", type=image_size, default=224)
    p.add_argument("--train-split", default="train")
    p.add_argument("--threshold-split", default="val")
    p.add_argument("--report-split", default="test")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="also write the result as JSON here")
    add_debug_flag(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from deepfake_lib.core.runs import write_json
    from deepfake_lib.data.scan import DataLayoutError
    from deepfake_lib.models.backbones import PretrainedWeightsUnavailable

    def body() -> int:
        check_device(args.device)
        check_input(args.data, "--data", "folder")
        if args.weights_path:
            check_input(args.weights_path, "--weights-path", "file")
        if args.out:
            check_output(args.out, "--out", "file", [args.data, args.weights_path], [args.data], create=False)
        result = linear_probe(
            args.data, args.backbone, True if args.pretrained == "true" else "auto", args.weights_path,
            args.image_size, args.train_split, args.threshold_split, args.report_split,
            batch_size=args.batch_size, device=args.device, seed=args.seed,
        )  # fmt: skip
        if args.out:
            write_json(args.out, result)
        keys = {k: round(result["report"][k], 4) for k in KEYS}
        print(json.dumps({"backbone": result["model"]["backbone"], **keys}))
        return 0

    return run_command(body, bad_input=(DataLayoutError, PretrainedWeightsUnavailable, ValueError), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
