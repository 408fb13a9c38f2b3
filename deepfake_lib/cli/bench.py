"""python -m deepfake_lib.bench (deepfake-bench): the speed benchmark's command line; writes bench.json and prints the table."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from deepfake_lib import bench
from deepfake_lib.bench import format_table, run_bench
from deepfake_lib.bench.inputs import FOOTAGE
from deepfake_lib.cli.argtypes import image_size, non_negative_int, positive_float, positive_int, workers
from deepfake_lib.cli.paths import check_output
from deepfake_lib.cli.runner import ArgumentParser, add_debug_flag, run_command
from deepfake_lib.core.cpu_env import reexec_with_malloc_env
from deepfake_lib.core.runs import atomic_write


def resolutions(text: str) -> tuple[int, ...]:
    """``"480,1080"`` -> ``(480, 1080)``; each of ``bench.inputs.FOOTAGE``."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or any(v not in FOOTAGE for v in values):
        raise argparse.ArgumentTypeError(f"give heights among {', '.join(map(str, FOOTAGE))}, got {text!r}")
    return values


def main(argv: list[str] | None = None, reexec: bool = False) -> int:
    """Command line; ``reexec`` (the ``python -m`` entry point) first applies the fast allocator settings."""
    if reexec:
        reexec_with_malloc_env()
    p = ArgumentParser(prog="python -m deepfake_lib.bench", description=bench.__doc__.split("\n\n")[0])
    p.add_argument("--image-size", type=image_size, default=224)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--threads", type=positive_int, default=None, help="torch intra-op threads (default: torch's choice)"
    )
    p.add_argument("--repeats", type=positive_int, default=5)
    p.add_argument("--warmup", type=non_negative_int, default=2)
    p.add_argument("--n-images", type=positive_int, default=128, help="JPEG files for the folder-prediction row")
    p.add_argument("--workers", type=workers, default=-1, help="DataLoader workers for folder prediction (-1 auto)")
    p.add_argument("--no-amp", action="store_true", help="fp32 on CUDA")
    p.add_argument("--compile", action="store_true", help="also time torch.compile of the full model")
    p.add_argument("--no-onnx", action="store_true", help="skip the onnxruntime folder-prediction row")
    p.add_argument("--n-videos", type=non_negative_int, default=4, help="videos for the video-scoring row (0 skips it)")
    p.add_argument("--footage-seconds", type=positive_float, default=30.0,
                   help="length of the 480p/720p/1080p camera files of rows (v) (0 skips them)")  # fmt: skip
    p.add_argument("--resolutions", type=resolutions, default=(480, 720, 1080), metavar="R,R",
                   help="rows (v): video heights, of 480, 720, 1080 (default all)")  # fmt: skip
    p.add_argument("--processes", type=non_negative_int, default=2, help="DDP processes for row (h) (0 or 1 skips it)")
    p.add_argument("--out", default="bench.json")
    add_debug_flag(p)
    args = p.parse_args(argv)
    if not args.footage_seconds >= 0:
        p.error(f"--footage-seconds must be >= 0, got {args.footage_seconds}")

    def body() -> int:
        check_output(args.out, "--out", "file", create=False)
        result = run_bench(
            args.image_size, args.batch_size, args.device, args.threads, args.repeats, args.warmup, args.n_images,
            args.workers, not args.no_amp, args.compile, not args.no_onnx, args.n_videos, args.processes,
            args.footage_seconds, args.resolutions,
        )  # fmt: skip
        atomic_write(Path(args.out), lambda tmp: tmp.write_text(json.dumps(result, indent=2) + "\n"))
        print(format_table(result))
        print(f"\nwritten: {args.out}")
        return 0

    return run_command(body, debug=args.debug)


def entry_point() -> int:
    """``python -m deepfake_lib.bench`` and ``deepfake-bench``: re-exec once with the fast malloc settings."""
    return main(reexec=True)


if __name__ == "__main__":
    sys.exit(entry_point())
