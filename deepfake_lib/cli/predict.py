"""``python -m deepfake_lib.predict`` (``deepfake-predict``): an image, a folder or a video -> one JSON line.

    python -m deepfake_lib.predict --frame IMG --weights W --out DIR [--threshold T] [--device D]
    python -m deepfake_lib.predict --input FOLDER --weights W --out DIR [--batch-size N] [--no-heatmap] [--resume]
    python -m deepfake_lib.predict --frame IMG|FOLDER --weights W --out DIR --faces [--face-margin M]
    python -m deepfake_lib.predict --frame IMG|FOLDER --weights model.onnx --out DIR [--runtime onnx]
    python -m deepfake_lib.predict --video FILE --weights W --out DIR [--faces]

``--faces`` scores each detected face; ``--video`` cuts the video into clips the way the model's training videos
were cut and prints the video's verdict with per-frame scores (``predict.video``); folders may hold videos too
(``predict.folder``). A model exported with ``python -m deepfake_lib.cli.export`` scores through onnxruntime
(``predict.onnx_predictor``: the same JSON and CSV, no Grad-CAM, no PyTorch needed for whole images).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from deepfake_lib.cli.argtypes import positive_float, positive_int, unit_interval, workers
from deepfake_lib.cli.paths import check_input, check_output
from deepfake_lib.cli.runner import (
    EXIT_INTERRUPTED,
    ArgumentParser,
    CommandError,
    add_debug_flag,
    one_line,
    run_command,
)
from deepfake_lib.core.choices import DECODE_MODES, TTA_MODES
from deepfake_lib.core.cpu_env import MALLOC_ENV, NO_REEXEC_ENV, reexec_with_malloc_env
from deepfake_lib.core.images import ImageLoadError, load_image
from deepfake_lib.core.video import VideoError
from deepfake_lib.data.faces import no_face_reason
from deepfake_lib.evaluation.aggregate import VIDEO_SCORES
from deepfake_lib.predict.folder import (
    FolderInterrupted,
    _no_images,
    check_resume,
    predict_folder,
    predict_folder_faces,
)
from deepfake_lib.predict.predictors import BasePredictor, Predictor
from deepfake_lib.predict.results import CSV_FILE, HEATMAP_DIR, HEATMAP_FILE, NoFaceError, PredictError
from deepfake_lib.predict.video import TIMELINE_FILE, VIDEO_FRAMES, NoClipError

if TYPE_CHECKING:
    import torch

    from deepfake_lib.data.faces import FaceDetector


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m deepfake_lib.predict",
        description="Is an image or a video FAKE or REAL? Prints one JSON object and writes a Grad-CAM heatmap. "
        "Given a folder, scores every image and video in it and writes a CSV.",
        epilog=f'Image: prints {{"decision", "probability", "heatmap"}} and writes DIR/{HEATMAP_FILE}. '
        f"Folder: writes DIR/{CSV_FILE} (one row per file, unusable ones with the reason) and "
        f"DIR/{HEATMAP_DIR}/<stem>_gradcam.png, prints a JSON summary. With --faces the JSON also lists the "
        f'faces ("box", "score", "probability", "decision") and the CSV gets an n_faces column. '
        f'Video: also "frames" (time, probability, box per sampled frame), "clips", "scores" and DIR/timeline.png. '
        f"Folder mode writes DIR/{CSV_FILE} as it goes, so Ctrl-C (exit 130) or a kill keeps every scored row; "
        f'--resume keeps them and scores the rest, and the summary gets "resumed" (rows kept). '
        f"Exit codes: 0 done, 2 bad input or usage (one line on stderr), 1 unexpected error, 130 interrupted. "
        f"On Linux the command re-execs itself once with glibc malloc settings that make CPU inference faster; {NO_REEXEC_ENV}=1 skips that.",
    )
    _add_input_options(parser)
    _add_scoring_options(parser)
    _add_video_and_face_options(parser)
    add_debug_flag(parser, help="show warnings, log messages and tracebacks")
    return parser


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    """What is scored and with what: ``--frame``/``--input``/``--video``, ``--weights``, ``--runtime``, ``--out``."""
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--frame", metavar="PATH", help="an image file, or a folder of images (folder mode)")
    src.add_argument("--input", metavar="PATH", help="same as --frame")
    src.add_argument(
        "--video",
        metavar="FILE",
        help="a video (mp4, avi, mov, mkv, webm): the video's verdict, per-frame scores and DIR/timeline.png",
    )
    parser.add_argument(
        "--weights", required=True, metavar="W", help="a workbench checkpoint (.pth), or a model exported to ONNX"
    )
    parser.add_argument(
        "--runtime",
        choices=("auto", "torch", "onnx"),
        default="auto",
        help="torch: a .pth checkpoint; onnx: an exported .onnx file through onnxruntime, no Grad-CAM "
        "(default auto: onnx for a .onnx file)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created if needed)")


def _add_scoring_options(parser: argparse.ArgumentParser) -> None:
    """How images and folders are scored: the threshold, the device, heatmaps, folder batches and loader workers,
    ``--resume``, ``--compile``, test-time augmentation and where JPEGs are decoded."""
    parser.add_argument("--threshold", type=unit_interval, metavar="T", help="FAKE when p >= T (default: stored)")
    parser.add_argument("--device", default="auto", metavar="D", help="auto (default), cpu, cuda, cuda:1, mps")
    parser.add_argument("--no-heatmap", action="store_true", help="skip Grad-CAM (faster)")
    parser.add_argument(
        "--batch-size", type=positive_int, default=16, metavar="N", help="folder mode batch size (default 16)"
    )
    parser.add_argument(
        "--num-workers", type=workers, default=-1, metavar="N", help="folder mode loader workers (-1: automatic)"
    )
    parser.add_argument("--no-progress", action="store_true", help="folder mode: no progress bar")
    parser.add_argument(
        "--resume",
        action="store_true",
        help=f"folder mode: keep the scored rows of DIR/{CSV_FILE} (files still in the folder, with their heatmaps) "
        "and score only the rest; without it a rerun starts clean",
    )
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile the model (with --no-heatmap; pays off on large folders)"
    )
    parser.add_argument(
        "--tta",
        choices=TTA_MODES,
        default=None,
        help="test-time augmentation: average the logits of the image and its mirror (hflip) or of 4 views (more); "
        "default: what the checkpoint was calibrated with (torch runtime; an ONNX export has it built in)",
    )
    parser.add_argument(
        "--decode",
        choices=DECODE_MODES,
        default="auto",
        help="folder mode: where JPEGs are decoded: on the model's device (nvJPEG on CUDA, the loader workers only "
        "read bytes) or with PIL in the workers; auto (default): the device on CUDA, PIL elsewhere (torch runtime)",
    )


def _add_video_and_face_options(parser: argparse.ArgumentParser) -> None:
    """Videos (frames scored, the deciding score) and faces (``--faces``, ``--face-margin``)."""
    parser.add_argument(
        "--video-frames",
        type=positive_int,
        default=VIDEO_FRAMES,
        metavar="N",
        help=f"videos: score N frames spread over the video, as clips of the model's length (default {VIDEO_FRAMES}; "
        "at most the video's length)",
    )
    parser.add_argument(
        "--video-aggregate",
        choices=("auto", *VIDEO_SCORES),
        default="auto",
        help="videos: the score that decides (all are in the JSON): the LSTM's clip score, the mean of frame scores "
        "per face track, their max, sbi (most suspicious face per frame, mean over frames) or confident_mean (the "
        "DFDC winner's rule); default auto: lstm for a model trained on clips, else frame_mean",
    )
    parser.add_argument(
        "--faces",
        action="store_true",
        help="detect faces (MTCNN), score each face crop; the image gets its most suspicious face's decision "
        "(videos: follow face tracks even if the model was trained on whole frames)",
    )
    parser.add_argument(
        "--face-margin",
        type=positive_float,
        metavar="M",
        help="with --faces: crop side / face box side (default: the checkpoint's, else 1.3)",
    )


def _prepare_out(out: Path) -> Path:
    """Create the output folder and check a file can be written there (inputs were checked up front)."""
    return check_output(out, "--out", "folder")


def _device(args: argparse.Namespace) -> torch.device:
    from deepfake_lib.core.device import resolve_device

    try:
        return resolve_device(args.device)
    except (RuntimeError, ValueError) as exc:
        raise PredictError(f"--device {args.device}: {one_line(exc)}") from None


def runtime_for(weights: str | os.PathLike[str], runtime: str = "auto") -> str:
    """``torch`` or ``onnx``: ``auto`` picks ONNX for a ``.onnx`` file and PyTorch otherwise."""
    if runtime != "auto":
        return runtime
    return "onnx" if Path(weights).suffix.lower() == ".onnx" else "torch"


def _load_predictor(args: argparse.Namespace) -> BasePredictor:
    if args.runtime == "onnx":  # no torch import on this path
        from deepfake_lib.predict.onnx_predictor import OnnxPredictor

        return OnnxPredictor.from_file(args.weights, args.device, args.threshold)
    from deepfake_lib.models.checkpoint import CheckpointError

    device = _device(args)
    try:
        return Predictor.from_checkpoint(
            args.weights, device, args.threshold, compile_model=args.compile, tta=args.tta, decode=args.decode
        )
    except CheckpointError as exc:
        raise PredictError(str(exc)) from None


@contextlib.contextmanager
def _quiet(quiet: bool) -> Iterator[None]:
    """Keep stderr to the one-line messages: no Python warnings, no library log records (restored on exit)."""
    if not quiet:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        yield
        return
    logger = logging.getLogger("deepfake_lib")
    handler, propagate = logging.NullHandler(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _detector(args: argparse.Namespace, min_score: float = 0.9, video: bool = False) -> FaceDetector:
    """MTCNN on the command's device; for video frames ``faces.video_detector``."""
    from deepfake_lib.data.faces import FaceDetector, video_detector

    if video:
        return video_detector(str(_device(args)), min_score)
    return FaceDetector(device=str(_device(args)), min_score=float(min_score))


def _check_video_aggregate(args: argparse.Namespace, predictor: BasePredictor) -> None:
    """``--video-aggregate`` must suit the model (``aggregate.decisive_rule``: ``lstm`` needs clips), before any
    video is scored."""
    from deepfake_lib.evaluation.aggregate import decisive_rule

    if isinstance(predictor, Predictor):
        try:
            decisive_rule(args.video_aggregate, predictor.model.config.frames)
        except ValueError as exc:
            raise PredictError(f"--video-aggregate: {exc}") from None


def _run_faces(args: argparse.Namespace, source: Path, image: Image.Image, out: Path) -> int:
    """Face mode for one image: detect (before the model is loaded), score each face, write the heatmap."""
    detector = _detector(args)
    faces = detector.detect(image)
    if not faces:
        reason = no_face_reason(detector.min_score)
        raise NoFaceError(f"{source}: {reason}; run without --faces to score the whole image")
    predictor = _load_predictor(args)
    result = predictor.score_faces([image], [faces], args.face_margin, heatmaps=not args.no_heatmap)[0]
    heatmap_path = None
    if not args.no_heatmap:
        from deepfake_lib.core.runs import atomic_write

        picture = result.overlay()
        heatmap_path = atomic_write(out / HEATMAP_FILE, lambda tmp: picture.save(tmp, format="PNG"))
    _emit(_with_note(result.to_dict(heatmap_path), args))
    return 0


def _warn_if_trained_on_faces(predictor: BasePredictor) -> None:
    if predictor.trained_on_faces:
        print(
            f"warning: this model was trained on face crops (margin {predictor.face_margin:g}); whole images are "
            "outside what it learned: pass --faces to crop faces the same way",
            file=sys.stderr,
        )


def _with_note(result: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The ONNX runtime says why there is no heatmap."""
    if args.runtime == "onnx":
        from deepfake_lib.predict.onnx_predictor import NO_HEATMAP_NOTE

        result["note"] = NO_HEATMAP_NOTE
    return result


def _run_video(args: argparse.Namespace, source: Path, out: Path) -> int:
    """One video: check it (before the model is loaded), cut it into clips, score, write heatmap and timeline."""
    from deepfake_lib.core.video import probe_video
    from deepfake_lib.predict.video import frames_cap, predict_video, settings_for, write_outputs

    if source.is_dir():
        raise PredictError(f"{source}: --video takes a video file; give a folder with --input")
    if args.runtime == "onnx":
        raise PredictError("--video needs --runtime torch (a .pth checkpoint): clips and Grad-CAM need PyTorch")
    info = probe_video(source)  # a bad video fails here, before the model is loaded
    if args.video_frames > frames_cap(info.frames):
        raise PredictError(
            f"--video-frames {args.video_frames}: {source} has {info.frames} frames; give at most "
            f"{frames_cap(info.frames)}"
        )
    _prepare_out(out)
    predictor = _load_predictor(args)
    settings = settings_for(predictor, True if args.faces else None, args.video_frames)
    if args.face_margin is not None:
        if settings.faces is None:
            raise PredictError("--face-margin only applies to face tracks (--faces, or a model trained on faces)")
        settings = replace(settings, faces={**settings.faces, "margin": args.face_margin})
    detector = _detector(args, settings.faces["min_score"], video=True) if settings.faces is not None else None
    _check_video_aggregate(args, predictor)
    result = predict_video(predictor, source, settings, detector, not args.no_heatmap, aggregate=args.video_aggregate)
    heatmap_path, timeline = write_outputs(result, out)
    _emit(result.to_dict(heatmap_path, timeline))
    return 0


def _emit(result: dict[str, Any]) -> None:
    """Print the result as one line of strict JSON: a probability that is not a finite number (NaN from broken
    weights or input) is an error, never ``NaN`` in the output, which no JSON reader takes."""
    try:
        print(json.dumps(result, allow_nan=False))
    except ValueError:
        raise PredictError(
            "the model's output is not a finite number (NaN or infinity): the checkpoint's weights or the input are "
            "broken; nothing was decided"
        ) from None


def _written_names(args: argparse.Namespace, given: Path) -> tuple[str, ...]:
    """The names this command writes inside ``--out``: none of them may be an input (an image called
    ``gradcam.png`` in the output folder would be replaced by its own heatmap)."""
    if args.video:
        return (HEATMAP_FILE, TIMELINE_FILE)
    if given.is_dir():
        return (CSV_FILE, HEATMAP_DIR)
    return () if args.no_heatmap else (HEATMAP_FILE,)


def _run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    given = Path(args.video or args.frame or args.input)
    check_output(
        out, "--out", "folder", [given, args.weights], [given] if given.is_dir() else [], create=False,
        writes=_written_names(args, given),
    )  # fmt: skip
    args.runtime = runtime_for(args.weights, args.runtime)
    if args.resume and not given.is_dir():
        raise PredictError("--resume only applies to a folder (--input FOLDER)")
    if args.video:
        return _run_video(args, Path(args.video), out)
    source = Path(args.frame or args.input)
    if args.face_margin is not None and not args.faces:
        raise PredictError("--face-margin only applies with --faces")
    if args.runtime == "onnx":
        if args.compile:
            raise PredictError("--compile only applies with --runtime torch")
        if args.tta is not None:
            raise PredictError("--tta only applies with --runtime torch (an ONNX export has its TTA built in)")
        if args.decode != "auto":
            raise PredictError("--decode only applies with --runtime torch")
        args.no_heatmap = True
    if source.is_dir():
        from deepfake_lib.core.images import list_image_files
        from deepfake_lib.core.video import list_video_files

        check_input(source, "--frame" if args.frame else "--input", "folder")
        if list_image_files(source) == ([], []) and not list_video_files(source):
            raise _no_images(source)  # before the model is loaded
        _prepare_out(out)
        if args.resume:
            check_resume(out, args.faces)  # before the model is loaded
        predictor = _load_predictor(args)
        _check_video_aggregate(args, predictor)
        try:
            if args.faces:
                result = predict_folder_faces(
                    predictor, source, out, _detector(args), args.face_margin, args.batch_size, not args.no_heatmap,
                    not args.no_progress, args.video_frames, args.video_aggregate, resume=args.resume,
                )  # fmt: skip
            else:
                _warn_if_trained_on_faces(predictor)
                result = predict_folder(
                    predictor, source, out, args.batch_size, args.num_workers, not args.no_heatmap,
                    not args.no_progress, args.video_frames, args.video_aggregate, resume=args.resume,
                )  # fmt: skip
        except FolderInterrupted as exc:
            stop = CommandError(f"interrupted: {exc}; rerun with --resume to score the rest")
            stop.exit_code = EXIT_INTERRUPTED
            raise stop from None
        _emit(_with_note(result.summary(), args))
        if result.scored == 0:
            msg = f"error: no image in {source} could be scored ({result.bad} unusable); see {result.csv_path}"
            print(msg, file=sys.stderr)
            return 2
        if result.bad:
            print(f"warning: {result.bad} file(s) could not be scored; see {result.csv_path}", file=sys.stderr)
        return 0
    image = load_image(source)  # a bad image fails here, before the model is loaded
    _prepare_out(out)
    if args.faces:
        return _run_faces(args, source, image, out)
    predictor = _load_predictor(args)
    _warn_if_trained_on_faces(predictor)
    pred = predictor.predict([image], heatmaps=not args.no_heatmap)[0]
    heatmap_path = None
    if pred.heatmap is not None:
        from deepfake_lib.explain.heatmaps import save_overlay

        heatmap_path = out / HEATMAP_FILE
        save_overlay(image, pred.heatmap, heatmap_path)
    _emit(_with_note(pred.to_dict(heatmap_path), args))
    return 0


def main(argv: Sequence[str] | None = None, reexec: bool = False) -> int:
    """The command line; returns the exit code: 0 done, 2 bad input or usage, 1 unexpected error.

    ``reexec`` (the ``python -m`` entry point): first re-exec this process once with ``MALLOC_ENV`` added
    when those variables are missing (skip with ``DEEPFAKE_NO_REEXEC=1``).
    """
    if reexec:
        reexec_with_malloc_env()
    args = build_parser().parse_args(argv)
    if args.debug:
        settings = ", ".join(f"{k}={os.environ.get(k, 'unset')}" for k in MALLOC_ENV)
        print(f"debug: {settings}, {NO_REEXEC_ENV}={os.environ.get(NO_REEXEC_ENV, 'unset')}", file=sys.stderr)

    def body() -> int:
        with _quiet(not args.debug):
            return _run(args)

    return run_command(body, bad_input=(PredictError, ImageLoadError, VideoError, NoClipError), debug=args.debug)


def entry_point() -> int:
    """The console script ``deepfake-predict`` (re-execs with the fast malloc settings, like ``python -m``)."""
    return main(reexec=True)
