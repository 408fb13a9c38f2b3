"""Shared fixtures: tiny generated datasets and tiny models, so every test runs in seconds on a CPU."""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deepfake_lib.data.datasets import DeepfakeDataset
from deepfake_lib.data.scan import scan_dataset
from deepfake_lib.data.transforms import build_transform
from deepfake_lib.demo.images import DemoSpec, build_demo_dataset
from deepfake_lib.demo.videos import VideoDemoSpec
from deepfake_lib.models.checkpoint import save_model
from deepfake_lib.models.detector import EfficientNetLSTM, ModelConfig

# Small and fast everywhere: the CI machine has 2 cores. Under pytest-xdist (``make test``: two workers) the cores
# are shared out: each worker, and the notebook kernels and command lines it starts, gets its share of threads, so
# OpenMP threads of several workers do not oversubscribe the cores and spin against each other.
XDIST_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
THREADS = max(1, min(2, (os.cpu_count() or 1) // XDIST_WORKERS))
if XDIST_WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
torch.set_num_threads(THREADS)

ASTRONAUT_FACE = (180.0, 60.0, 270.0, 175.0)  # x1, y1, x2, y2 of the face in skimage's 512x512 astronaut
TINY_SIZE = 32
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64 + b"\nsize 12345\n"
TINY_MODEL = {"pretrained": False, "image_size": TINY_SIZE, "lstm_hidden": 16, "head_hidden": 8}


TINY_FRAMES = 4  # clip length of the tiny video data


def tiny_spec(
    real: int = 12, fake: int = 4, size: int = TINY_SIZE, seed: int = 0, videos: VideoDemoSpec | None = None
) -> DemoSpec:
    """Images only unless ``videos`` is given."""
    counts = {"real": real, "fake": fake}
    return DemoSpec(
        counts={"train": dict(counts), "val": dict(counts), "test": dict(counts)}, size=size, seed=seed, videos=videos
    )


def tiny_video_spec(real: int = 3, fake: int = 3, n_frames: int = 10, size: int = 48) -> VideoDemoSpec:
    counts = {"real": real, "fake": fake}
    return VideoDemoSpec(
        counts={"train": dict(counts), "val": dict(counts), "test": dict(counts)}, n_frames=n_frames, size=size
    )


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<tmp>/data/{train,val,test}/{real,fake}``: 12 real + 4 fake 32x32 JPEGs per split (read-only use)."""
    return build_demo_dataset(tmp_path_factory.mktemp("tiny") / "data", tiny_spec())


@pytest.fixture(scope="session")
def tiny_video_clips(tiny_video_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny_video_data`` prepared: its videos cut into clips of ``TINY_FRAMES`` frames at ``TINY_SIZE`` px, the
    images linked, the splits kept (read-only use)."""
    from deepfake_lib.prepare.dataset import prepare_data

    prep = prepare_data(
        tiny_video_data, tmp_path_factory.mktemp("tinyclips"), frames=TINY_FRAMES, image_size=TINY_SIZE, progress=False
    )
    assert prep.steps == ["clips"]
    return prep.data_dir


@pytest.fixture(scope="session")
def tiny_video_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Like ``tiny_data`` (8 real + 4 fake images per split) plus 3 real and 3 fake 10-frame 48x48 mp4 videos per
    split, next to the images (read-only use)."""
    spec = tiny_spec(real=8, fake=4, videos=tiny_video_spec())
    return build_demo_dataset(tmp_path_factory.mktemp("tinyvideo") / "data", spec)


FOOTAGE_SECONDS = 3.0  # 75 frames at 25 fps: keyframes at frames 0 and 50


@pytest.fixture(scope="session")
def footage(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """``{720: path, 1080: path}``: 3 s H.264 camera files at 1280x720 and 1920x1080 (``demo.footage``: a camera
    panning and zooming over the enlarged astronaut, B-frames, a keyframe every 2 s; read-only use)."""
    from deepfake_lib.demo.footage import write_footage

    folder = tmp_path_factory.mktemp("footage")
    return {
        720: write_footage(folder / "walk_720p.mp4", 1280, 720, FOOTAGE_SECONDS, seed=1),
        1080: write_footage(folder / "walk_1080p.mp4", 1920, 1080, FOOTAGE_SECONDS, seed=2),
    }


def calibrate_batchnorm(model: EfficientNetLSTM, steps: int = 4) -> EfficientNetLSTM:
    """Give a randomly initialised model real BatchNorm running statistics (from random inputs).

    A fresh EfficientNet in eval mode has unit running variances, under which its activations vanish
    (features ~1e-14) and every input gets the same output; a trained model never looks like that.
    """
    size = model.config.image_size
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    torch.nn.Module.train(model, True)  # every BatchNorm, frozen blocks included
    with torch.no_grad():
        for _ in range(steps):
            model(torch.randn(8, 1, 3, size, size))
    for m, momentum in zip(bns, saved, strict=True):
        m.momentum = momentum
    return model.eval()


def tiny_model(calibrate: bool = True, **overrides) -> EfficientNetLSTM:
    """A small random EfficientNetLSTM at 32x32 (BatchNorm statistics calibrated unless told otherwise)."""
    torch.manual_seed(0)
    model = EfficientNetLSTM(ModelConfig(**{**TINY_MODEL, **overrides}))
    return calibrate_batchnorm(model) if calibrate else model


# fit() settings for the tests' tiny trainings: small batches, no workers or progress bars, the CPU, seed 0
# Small, fast fits; the tests of fit's mechanics pin the optimisation they were written for (the recipe's
# defaults, val AUC monitoring and a head warm-up, are exercised by the notebook runs)
FIT_FAST = {
    "batch_size": 8, "num_workers": 0, "progress": False, "device": "cpu", "seed": 0, "monitor": "val_loss",
    "head_warmup_epochs": 0, "backbone_lr": None, "weight_decay": 1e-4,
}  # fmt: skip


def train_val_datasets(root: Path) -> tuple[DeepfakeDataset, DeepfakeDataset]:
    """The train (augmented) and val datasets of ``root/{train,val}/{real,fake}`` at the tiny model's 32 px."""
    scans = scan_dataset(root, ["train", "val"])
    return (
        DeepfakeDataset(scans["train"].samples, build_transform(TINY_SIZE, train=True)),
        DeepfakeDataset(scans["val"].samples, build_transform(TINY_SIZE, train=False)),
    )


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An (untrained) tiny EfficientNetLSTM checkpoint at 32x32 with threshold 0.5."""
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    save_model(tiny_model(), path, threshold=0.5)
    return path


@pytest.fixture(scope="session")
def exported(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory):
    """``tiny_checkpoint`` exported to ONNX with the defaults (``export.ExportResult``; skipped without the
    ``[onnx]`` extra). The export runs in a separate process: ``torch.export`` plus any training in one process
    starts autograd's worker threads, after which processes forked from it cannot train (the multi-process tests
    fork)."""
    pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed: pip install -e '.[onnx]'")
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from deepfake_lib.deploy.export import export_onnx

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(export_onnx, tiny_checkpoint, tmp_path_factory.mktemp("onnx") / "tiny.onnx").result()


@pytest.fixture(scope="session")
def separable(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """REAL = dark noisy images, FAKE = bright noisy images (3:1 in train): trivially learnable."""
    root = tmp_path_factory.mktemp("separable")
    rng = np.random.default_rng(0)
    for split, n_real, n_fake in [("train", 18, 6), ("val", 6, 6)]:
        for name, n, base in [("real", n_real, 40), ("fake", n_fake, 200)]:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                arr = np.clip(base + rng.normal(0, 25, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(arr).save(folder / f"{i}.png")
    return root


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture
def mixed_folder(tiny_data: Path, tmp_path: Path) -> Path:
    """Three good images (two share the stem ``x``), a corrupt JPEG, an LFS pointer and a non-image file."""
    folder = tmp_path / "in"
    for rel, src in (
        ("a/x.jpg", "real/real_0000.jpg"),
        ("b/x.jpg", "fake/fake_0000.jpg"),
        ("y.jpg", "fake/fake_0001.jpg"),
    ):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tiny_data / "val" / src, folder / rel)
    (folder / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 50)
    (folder / "lfs.png").write_bytes(LFS_POINTER)
    (folder / "readme.txt").write_bytes(b"not scored")
    return folder


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------- one pipeline run shared by tests
# The parameters of the shared tiny run: every notebook gets the ones it declares (as with -p on the command line).
NOTEBOOK_RUN_PARAMS = {
    "SAMPLES_PER_CLASS": 3, "IMAGE_SIZE": 32, "EPOCHS": 2, "BATCH_SIZE": 8, "PRETRAINED": False, "NUM_WORKERS": 0,
    "DEVICE": "cpu", "N_FAILURES_SHOWN": 4, "DEGRADATIONS": ["jpeg:50", "blur:1"], "REPLAY_RATIO": 1,
    "N_PER_GROUP": 2,
}  # fmt: skip


@dataclass
class NotebookRun:
    """The shared run of every notebook on ``tiny_data``: its folder, the pipeline's own lines and whatever
    reached the process's stdout/stderr file descriptors meanwhile (the kernels' output included)."""

    root: Path
    runs_dir: Path
    lines: list[str]
    fd_out: str
    fd_err: str


@contextlib.contextmanager
def captured_fds(folder: Path) -> Iterator[tuple[Path, Path]]:
    """Point file descriptors 1 and 2 at files for the duration (child processes inherit them), then restore."""
    sys.stdout.flush()
    sys.stderr.flush()
    out, err = folder / "fd1.txt", folder / "fd2.txt"
    saved = os.dup(1), os.dup(2)
    try:
        with open(out, "wb") as fo, open(err, "wb") as fe:
            os.dup2(fo.fileno(), 1)
            os.dup2(fe.fileno(), 2)
            try:
                yield out, err
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        os.close(saved[0])
        os.close(saved[1])


@pytest.fixture(scope="session")
def notebook_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> NotebookRun:
    """Every notebook runs once through the pipeline (``run_pipeline``, SEED 3 from a YAML config) on tiny
    data, 02 on two training processes, with a second tiny set (5 real + 3 fake per split) as 03's extra test
    folder; the notebook tests read
    its files, the pipeline test its output. Treat it as read-only."""
    from deepfake_lib import pipeline

    base = tmp_path_factory.mktemp("notebook_run")
    extra = build_demo_dataset(base / "extra", tiny_spec(real=5, fake=3, seed=7))  # an out-of-domain set for 03
    config = base / "run.yaml"
    config.write_text("parameters:\n  SEED: 3\n")
    _, params = pipeline.load_config(config)
    lines: list[str] = []
    with captured_fds(base) as (out, err):
        root = pipeline.run_pipeline(
            {**params, **NOTEBOOK_RUN_PARAMS, "EXTRA_TEST_DIRS": [str(extra)], "NUM_PROCESSES": 2}, run_id="shared",
            runs_dir=base / "runs", data_dir=tiny_data,
            log=lambda msg, **_: lines.append(str(msg)),
        )  # fmt: skip
    return NotebookRun(root, base / "runs", lines, out.read_text(), err.read_text())


# Under pytest-xdist (``make test`` runs two workers), a session fixture is built once per worker. The costly
# shared ones stay shared by keeping every test that uses them on one worker (``--dist loadgroup``).
SHARED_FIXTURE_GROUPS = {
    "notebook_run": "notebooks",
    "exported": "onnx",
    "video_run": "video_run",
    "branch_run": "branch_run",
}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which turns the marks into the groups it schedules by
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        group = next((g for name, g in SHARED_FIXTURE_GROUPS.items() if name in item.fixturenames), None)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
