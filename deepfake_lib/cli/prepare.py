"""python -m deepfake_lib.cli.prepare (deepfake-prepare): raw images and videos -> a training-ready data folder."""

from __future__ import annotations

import argparse
import json
import sys

from deepfake_lib.cli.argtypes import positive_float, positive_int, size_or_native, unit_interval
from deepfake_lib.cli.runner import ArgumentParser, add_debug_flag, run_command
from deepfake_lib.prepare import dataset
from deepfake_lib.prepare.dataset import prepare_data


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m deepfake_lib.cli.prepare", description=dataset.__doc__.split("\n\n")[0])
    p.add_argument(
        "data",
        help="a flat {real,fake} folder, one with <split>/{real,fake}, or a dataset as it downloads: "
        "NAME:ROOT?options (ffpp, dfdc, dfdcp, celebdf, folders; see docs/datasets.md)",
    )
    p.add_argument("--out", default=None, help="prepared_root (default outputs/prepared/<name>-<hash>)")
    p.add_argument("--faces", action="store_true", help="crop faces with MTCNN first")
    p.add_argument("--face-margin", type=positive_float, default=1.3)
    p.add_argument("--face-size", type=size_or_native, default=224, help="0 keeps the crop's native size")
    p.add_argument("--all-faces", action="store_true", help="keep every face, not only the largest")
    p.add_argument("--face-min-score", type=unit_interval, default=0.9)
    p.add_argument("--frames", type=positive_int, default=8, help="videos: frames per clip (T)")
    p.add_argument("--clips-per-video", type=positive_int, default=2, help="videos: clips per face track")
    p.add_argument("--frame-stride", type=positive_int, default=None, help="videos: every k-th frame (default uniform)")
    p.add_argument("--image-size", type=positive_int, default=224, help="videos without --faces: frame size")
    p.add_argument("--no-splits", action="store_true", help="never split (the folder must have splits)")
    p.add_argument("--fractions", type=unit_interval, nargs="+", default=[0.7, 0.15, 0.15])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--group-regex", default=None, help="group key: first capture group of this regex on file names")
    p.add_argument("--group-csv", default=None)
    p.add_argument("--group-column", default=None)
    p.add_argument("--device", default="cpu")
    add_debug_flag(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        result = prepare_data(
            args.data, args.out, faces=args.faces, face_margin=args.face_margin, face_size=args.face_size or None,
            face_keep="all" if args.all_faces else "largest", face_min_score=args.face_min_score,
            make_splits=False if args.no_splits else "auto", split_fractions=args.fractions, seed=args.seed,
            group_regex=args.group_regex, group_csv=args.group_csv, group_column=args.group_column,
            frames=args.frames, clips_per_video=args.clips_per_video, frame_stride=args.frame_stride,
            image_size=args.image_size, device=args.device,
        )  # fmt: skip
        print(json.dumps({"data_dir": str(result.data_dir), "steps": result.steps}))
        return 0

    # PrepareError, FacePrepError and SplitError are ValueErrors
    return run_command(body, bad_input=(ValueError,), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
