"""python -m deepfake_lib.cli.spectral (deepfake-spectral): the spectral baseline and band table of a data set."""

from __future__ import annotations

import argparse
import json
import sys

from deepfake_lib.cli.argtypes import image_size, positive_int
from deepfake_lib.cli.paths import check_device, check_input, check_output
from deepfake_lib.cli.runner import ArgumentParser, add_debug_flag, run_command
from deepfake_lib.core.runs import write_json
from deepfake_lib.data.scan import DataLayoutError
from deepfake_lib.explain import spectra
from deepfake_lib.explain.spectra import CHANNELS, REPORT_KEYS, spectral_baseline


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m deepfake_lib.cli.spectral", description=spectra.__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="DATA_DIR with <split>/{real,fake}")
    p.add_argument("--image-size", type=image_size, default=224, help="the detector's input size")
    p.add_argument("--channels", choices=CHANNELS, default="gray")
    p.add_argument("--train-split", default="train")
    p.add_argument("--threshold-split", default="val")
    p.add_argument("--report-split", default="test")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", default=None, help="keep the spectra here and reuse them")
    p.add_argument("--out", default=None, help="also write the record and the band table as JSON here")
    add_debug_flag(p)
    return p


def main(argv: list[str] | None = None) -> int:
    """The spectral baseline on the report split and the band table of the train split, as one JSON line."""
    args = build_parser().parse_args(argv)

    def body() -> int:
        check_device(args.device)
        check_input(args.data, "--data", "folder")
        if args.cache_dir:
            check_output(args.cache_dir, "--cache-dir", "folder", [args.data], [args.data], create=False)
        if args.out:
            check_output(args.out, "--out", "file", [args.data, args.cache_dir], [args.data], create=False)
        result = spectral_baseline(
            args.data, args.image_size, args.train_split, args.threshold_split, args.report_split,
            cache_dir=args.cache_dir, channels=args.channels, seed=args.seed, batch_size=args.batch_size,
            device=args.device,
        )  # fmt: skip
        bands = result.spectra[args.train_split].band_table()
        if args.out:
            write_json(args.out, {**result.record, "bands": bands})
        report = result.record["report"]
        line = {k: round(float(report[k]), 4) for k in REPORT_KEYS}
        print(json.dumps({**line, "bands": {b["band"]: round(b["fake_minus_real"], 4) for b in bands}}))
        return 0

    return run_command(body, bad_input=(DataLayoutError, ValueError), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
