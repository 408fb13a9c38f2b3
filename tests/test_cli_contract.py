"""The bad-input contract of every command line, as a table: each bad input gives exit 2, one ``error:`` line that
names the user's path (or option), no traceback, and leaves every input file byte-identical. New commands and new
bad inputs join the tables."""

from __future__ import annotations

import csv
import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deepfake_lib.cli import demo as demo_cli
from deepfake_lib.cli import export as export_cli
from deepfake_lib.cli import faces as faces_cli
from deepfake_lib.cli import pipeline as pipeline_cli
from deepfake_lib.cli import predict as predict_cli
from deepfake_lib.cli import prepare as prepare_cli
from deepfake_lib.cli import probe as probe_cli
from deepfake_lib.cli import spectral as spectral_cli
from deepfake_lib.cli import splits as splits_cli
from deepfake_lib.cli import train as train_cli
from deepfake_lib.core.video import write_video


@dataclass(frozen=True)
class Case:
    """A bad input: the argv (``{data}``, ``{flat}``, ``{ckpt}``, ``{img}``, ``{tmp}``, ``{file}``, ``{cfg}`` and
    the other ``World`` fields are filled in), a fragment the error line must hold, and the path it must name (a
    template too, or None)."""

    argv: tuple[str, ...]
    match: str
    names: str | None = None
    config: str | None = None  # the text of {cfg}, when the case needs a config file


@dataclass
class World:
    data: Path  # a split data folder
    flat: Path  # a flat {real,fake} folder
    ckpt: Path
    img: Path
    tmp: Path
    file: Path  # a plain file that is not a folder
    cfg: Path
    named: Path  # an image called like predict's heatmap, in the folder given as --out
    loop: Path  # a symlink that leads to itself
    video: Path  # a 12-frame video
    ckpt_t: Path  # a checkpoint whose stored threshold is 7.5
    ckpt_nan: Path  # a checkpoint with NaN weights
    empty: Path  # an empty folder
    realonly: Path  # a flat folder with real/ only

    def fill(self, text: str) -> str:
        return text.format(**{k: str(v) for k, v in vars(self).items()})


def snapshot(*roots: Path) -> dict[str, str]:
    """sha256 of every file under ``roots`` (following links once)."""
    out: dict[str, str] = {}
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for p in files:
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def world(tiny_data: Path, tiny_checkpoint: Path, tmp_path: Path) -> World:
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data, symlinks=False)
    flat = tmp_path / "flat"
    for label in ("real", "fake"):
        shutil.copytree(tiny_data / "train" / label, flat / label)
    ckpt = tmp_path / "w" / "model.pth"
    ckpt.parent.mkdir()
    shutil.copy(tiny_checkpoint, ckpt)
    img = data / "val" / "real" / "real_0000.jpg"
    file = tmp_path / "a_file"
    file.write_text("not a folder")
    (data / "predictions.csv").write_text("path,probability\nmine,0.5\n")  # a user's file beside the images
    named = tmp_path / "shots" / "gradcam.png"
    named.parent.mkdir()
    Image.open(img).save(named)
    (tmp_path / "shots" / "heatmaps").mkdir()
    Image.open(img).save(tmp_path / "shots" / "heatmaps" / "a.png")
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    video = write_video(tmp_path / "clip.mp4", [np.full((32, 32, 3), 10 * i, np.uint8) for i in range(12)])
    ckpts = {}
    for name, change in (("t", {"threshold": 7.5}), ("nan", {"nan": True})):
        raw = torch.load(ckpt, weights_only=True)
        if change.pop("nan", False):
            raw["state_dict"] = {k: v.float().fill_(float("nan")) if v.is_floating_point() else v
                                 for k, v in raw["state_dict"].items()}  # fmt: skip
        raw.update(change)
        ckpts[name] = tmp_path / "w" / f"model_{name}.pth"
        torch.save(raw, ckpts[name])
    (tmp_path / "empty").mkdir()
    shutil.copytree(tiny_data / "train" / "real", tmp_path / "realonly" / "real")
    return World(
        data, flat, ckpt, img, tmp_path, file, tmp_path / "run.yaml", named, loop, video, ckpts["t"], ckpts["nan"],
        tmp_path / "empty", tmp_path / "realonly",
    )  # fmt: skip


ALIAS_BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b]\n"
)


PREDICT = {
    "out is the input folder": Case(("--input", "{data}", "--weights", "{ckpt}", "--out", "{data}"), "is the input"),
    "out inside the input folder": Case(
        ("--input", "{data}", "--weights", "{ckpt}", "--out", "{data}/out"), "inside the input folder"
    ),
    "out through .. back into the input": Case(
        ("--input", "{data}/val", "--weights", "{ckpt}", "--out", "{data}/val/../val/x"), "inside the input folder"
    ),
    "out is the weights file": Case(("--frame", "{img}", "--weights", "{ckpt}", "--out", "{ckpt}"), "is the input"),
    "out is a file": Case(("--frame", "{img}", "--weights", "{ckpt}", "--out", "{file}"), "not a folder", "{file}"),
    "out under a file": Case(("--frame", "{img}", "--weights", "{ckpt}", "--out", "{file}/o"), "output", "{file}"),
    "negative workers": Case(
        ("--input", "{data}", "--weights", "{ckpt}", "--out", "{tmp}/o", "--num-workers", "-3"), "--num-workers"
    ),
    "zero batch size": Case(
        ("--input", "{data}", "--weights", "{ckpt}", "--out", "{tmp}/o", "--batch-size", "0"), "--batch-size"
    ),
    "missing image": Case(("--frame", "{tmp}/nope.jpg", "--weights", "{ckpt}", "--out", "{tmp}/o"), "nope.jpg"),
    "the heatmap would replace the image": Case(
        ("--frame", "{named}", "--weights", "{ckpt}", "--out", "{tmp}/shots"), "would replace the input", "{named}"
    ),
    "the heatmap folder is the input folder": Case(
        ("--input", "{tmp}/shots/heatmaps", "--weights", "{ckpt}", "--out", "{tmp}/shots"), "would replace the input"
    ),
    "the frame is a symlink loop": Case(
        ("--frame", "{loop}", "--weights", "{ckpt}", "--out", "{tmp}/o"), "symlink loop", "{loop}"
    ),
    "the video is a symlink loop": Case(
        ("--video", "{loop}", "--weights", "{ckpt}", "--out", "{tmp}/o"), "symlink loop", "{loop}"
    ),
    "the weights are a symlink loop": Case(
        ("--frame", "{img}", "--weights", "{loop}", "--out", "{tmp}/o"), "symlink loop", "{loop}"
    ),
    "more video frames than the video has": Case(
        ("--video", "{video}", "--weights", "{ckpt}", "--out", "{tmp}/o", "--video-frames", "100000"),
        "at most 32",
        "{video}",
    ),
    "a stored threshold of 7.5": Case(
        ("--frame", "{img}", "--weights", "{ckpt_t}", "--out", "{tmp}/o"),
        "threshold 7.5 is not a probability",
        "{ckpt_t}",
    ),
    "NaN weights": Case(("--frame", "{img}", "--weights", "{ckpt_nan}", "--out", "{tmp}/o"), "NaN", "{ckpt_nan}"),
    "--resume with one image": Case(
        ("--frame", "{img}", "--weights", "{ckpt}", "--out", "{tmp}/o", "--resume"), "--resume only applies to a folder"
    ),
    "a NaN threshold": Case(
        ("--frame", "{img}", "--weights", "{ckpt}", "--out", "{tmp}/o", "--threshold", "nan"), "--threshold"
    ),
}
EXPORT = {
    "out is the checkpoint": Case(("--weights", "{ckpt}", "--out", "{ckpt}"), "is the input", "{ckpt}"),
    "opset the exporter cannot write": Case(("--weights", "{ckpt}", "--out", "{tmp}/m.onnx", "--opset", "1"), "opset"),
    "out is a folder": Case(("--weights", "{ckpt}", "--out", "{tmp}"), "is a folder", "{tmp}"),
    "out inside the check images": Case(
        ("--weights", "{ckpt}", "--check-images", "{data}", "--out", "{data}/m.onnx"), "inside the input folder"
    ),
    "zero frames": Case(("--weights", "{ckpt}", "--out", "{tmp}/m.onnx", "--frames", "0"), "--frames"),
    "missing weights": Case(("--weights", "{tmp}/none.pth", "--out", "{tmp}/m.onnx"), "not found", "{tmp}/none.pth"),
    "a clip longer than the cap": Case(
        ("--weights", "{ckpt}", "--out", "{tmp}/m.onnx", "--frames", "100000"), "the cap"
    ),
    "more checks than the cap": Case(
        ("--weights", "{ckpt}", "--out", "{tmp}/m.onnx", "--n-check", "100000"), "the cap"
    ),
    "a stored threshold of 7.5": Case(("--weights", "{ckpt_t}", "--out", "{tmp}/m.onnx"), "threshold 7.5", "{ckpt_t}"),
}
PIPELINE = {
    "config is not YAML": Case(("--config", "{cfg}", "--data", "{data}"), "line 2", "{cfg}", "a: [1, 2\nb: ]: x\n"),
    "config is a list": Case(("--config", "{cfg}", "--data", "{data}"), "expected a mapping", "{cfg}", "- 1\n- 2\n"),
    "parameters is a list": Case(
        ("--config", "{cfg}", "--data", "{data}"), "line 2", "{cfg}", "steps: '01'\nparameters:\n  - EPOCHS\n"
    ),
    "runs dir is a file": Case(("--data", "{data}", "--runs-dir", "{file}"), "not a folder", "{file}"),
    "runs dir inside the data": Case(("--data", "{data}", "--runs-dir", "{data}/runs"), "inside the input folder"),
    "image size below the backbone's stride": Case(
        ("--data", "{data}", "--runs-dir", "{tmp}/r", "-p", "IMAGE_SIZE", "8"), "IMAGE_SIZE 8 is out of range"
    ),
    "negative workers": Case(
        ("--data", "{data}", "--runs-dir", "{tmp}/r", "-p", "NUM_WORKERS", "-4"), "NUM_WORKERS -4 is out of range"
    ),
    "a number that is text": Case(("--data", "{data}", "--runs-dir", "{tmp}/r", "-p", "EPOCHS", "many"), "EPOCHS"),
    "data is missing": Case(("--data", "{tmp}/none", "--runs-dir", "{tmp}/r"), "not found", "{tmp}/none"),
    "run id is a path out of the runs folder": Case(
        ("--data", "{data}", "--runs-dir", "{tmp}/r", "--run-id", "../data"), "not a path"
    ),
    "run id is absolute": Case(("--data", "{data}", "--runs-dir", "{tmp}/r", "--run-id", "{data}"), "not a path"),
    "run id in the config is a path": Case(
        ("--config", "{cfg}", "--data", "{data}", "--runs-dir", "{tmp}/r"), "not a path", None, "run_id: ../../x\n"
    ),
    "a NaN learning rate": Case(
        ("--data", "{data}", "--runs-dir", "{tmp}/r", "-p", "LR", "nan"), "LR nan is not a finite"
    ),
    "an infinite epoch count": Case(
        ("--data", "{data}", "--runs-dir", "{tmp}/r", "-p", "EPOCHS", ".inf"), "not a finite"
    ),
    "a NaN image size in the config": Case(
        ("--config", "{cfg}", "--data", "{data}", "--runs-dir", "{tmp}/r"),
        "IMAGE_SIZE nan",
        "{cfg}",
        "IMAGE_SIZE: .nan\n",
    ),
    "an unknown augmentation": Case(
        ("--data", "{data}", "--runs-dir", "{tmp}/r", "-p", "AUGMENT", "fancy"), "AUGMENT 'fancy' is not one of"
    ),
    "a number where a choice goes": Case(
        ("--data", "{data}", "--runs-dir", "{tmp}/r", "-p", "CALIBRATE", "1"), "CALIBRATE 1"
    ),
    "an unknown fakes mode in the config": Case(
        ("--config", "{cfg}", "--data", "{data}", "--runs-dir", "{tmp}/r"),
        "FAKES 'all'",
        "{cfg}",
        "parameters:\n  FAKES: all\n",
    ),
    "a config of aliases": Case(
        ("--config", "{cfg}", "--data", "{data}", "--runs-dir", "{tmp}/r"), "alias", "{cfg}", ALIAS_BOMB
    ),
    "a config with a key twice": Case(
        ("--config", "{cfg}", "--data", "{data}", "--runs-dir", "{tmp}/r"),
        "line 3: duplicate key 'EPOCHS' (first at line 1)",
        "{cfg}",
        "EPOCHS: 1\nLR: 0.001\nEPOCHS: 2\n",
    ),
    "data is a file": Case(("--data", "{file}", "--runs-dir", "{tmp}/r"), "is a file, not a folder", "{file}"),
    "data is an empty folder": Case(("--data", "{empty}", "--runs-dir", "{tmp}/r"), "nothing to prepare", "{empty}"),
    "data holds real images only": Case(
        ("--data", "{realonly}", "--runs-dir", "{tmp}/r"), "nothing to prepare", "{realonly}"
    ),
    "data split without fakes": Case(
        ("--data", "{tmp}/splitreal", "--runs-dir", "{tmp}/r"), "no fake folder", "{tmp}/splitreal"
    ),
    "a device this machine lacks": Case(
        ("--data", "{data}", "--runs-dir", "{tmp}/r", "--device", "quantum"), "--device quantum"
    ),
    "prepared folder inside the data": Case(
        ("--data", "{data}", "--runs-dir", "{tmp}/r", "-p", "PREPARED_DIR", "{data}/prepared"), "inside the data folder"
    ),
}
SPECTRAL = {
    "cache dir is a file": Case(("--data", "{data}", "--cache-dir", "{file}"), "not a folder", "{file}"),
    "out is a folder": Case(("--data", "{data}", "--out", "{tmp}"), "is a folder", "{tmp}"),
    "out inside the data": Case(("--data", "{data}", "--out", "{data}/s.json"), "inside the input folder"),
    "image size 0": Case(("--data", "{data}", "--image-size", "0"), "--image-size"),
    "a device this machine lacks": Case(("--data", "{data}", "--device", "quantum"), "unknown device 'quantum'"),
}
PROBE = {
    "out is a folder": Case(("--data", "{data}", "--out", "{tmp}"), "is a folder", "{tmp}"),
    "data is missing": Case(("--data", "{tmp}/none"), "not found", "{tmp}/none"),
    "a device this machine lacks": Case(("--data", "{data}", "--device", "cuda:7"), "--device cuda:7"),
}
TRAIN = {
    "run dir is a file": Case(("--data", "{data}", "--run-dir", "{file}"), "not a folder", "{file}"),
    "run dir inside the data": Case(("--data", "{data}", "--run-dir", "{data}/run"), "inside the input folder"),
    "negative workers": Case(("--data", "{data}", "--run-dir", "{tmp}/r", "--num-workers", "-2"), "--num-workers"),
    "a device this machine lacks": Case(
        ("--data", "{data}", "--run-dir", "{tmp}/r", "--device", "quantum"), "--device quantum"
    ),
    "a NaN weight decay": Case(("--data", "{data}", "--run-dir", "{tmp}/r", "--weight-decay", "nan"), "--weight-decay"),
    "an infinite learning rate": Case(("--data", "{data}", "--run-dir", "{tmp}/r", "--lr", "inf"), "--lr"),
}
STEPS = {  # the cached preparation steps already refused overlaps; they join the table
    "faces: out inside the source": (faces_cli, Case(("{data}", "--out", "{data}/faces"), "inside", "{data}")),
    "splits: out is the source": (splits_cli, Case(("{flat}", "--out", "{flat}"), "{flat}")),
    "prepare: only real/": (
        prepare_cli,
        Case(("{flat}/real", "--out", "{tmp}/p"), "nothing to prepare", "{flat}/real"),
    ),
    "splits: source is a file": (splits_cli, Case(("{file}", "--out", "{tmp}/s"), "is a file, not a folder", "{file}")),
    "faces: source is a file": (faces_cli, Case(("{file}", "--out", "{tmp}/f"), "is a file, not a folder", "{file}")),
    "prepare: source is a file": (
        prepare_cli,
        Case(("{file}", "--out", "{tmp}/p"), "is a file, not a folder", "{file}"),
    ),
    "demo: --force on a folder of somebody's data": (
        demo_cli,
        Case(("--out", "{flat}", "--force"), "not a demo dataset", "{flat}"),
    ),
    "demo: out is a file": (
        demo_cli,
        Case(
            (
                "--out",
                "{file}",
            ),
            "not a folder",
            "{file}",
        ),
    ),
}

TABLE: list[tuple[str, Callable[..., int], Case]] = [
    *((f"predict: {k}", predict_cli.main, c) for k, c in PREDICT.items()),
    *((f"export: {k}", export_cli.main, c) for k, c in EXPORT.items()),
    *((f"pipeline: {k}", pipeline_cli.main, c) for k, c in PIPELINE.items()),
    *((f"spectral: {k}", spectral_cli.main, c) for k, c in SPECTRAL.items()),
    *((f"probe: {k}", probe_cli.main, c) for k, c in PROBE.items()),
    *((f"train: {k}", train_cli.main, c) for k, c in TRAIN.items()),
    *((k, module.main, c) for k, (module, c) in STEPS.items()),
]


@pytest.mark.parametrize(("main", "case"), [pytest.param(m, c, id=name) for name, m, c in TABLE])
def test_bad_input_gives_one_line_exit_2_and_changes_no_input(
    main: Callable[..., int], case: Case, world: World, capsys: pytest.CaptureFixture
) -> None:
    if case.config is not None:
        world.cfg.write_text(case.config)
    (world.tmp / "splitreal" / "train").mkdir(parents=True)
    shutil.copytree(world.flat / "real", world.tmp / "splitreal" / "train" / "real")
    inputs = (world.data, world.flat, world.ckpt, world.file, world.tmp / "shots", world.video, world.realonly)
    inputs += (world.ckpt_t, world.ckpt_nan, world.tmp / "splitreal") + ((world.cfg,) if case.config else ())
    before = snapshot(*inputs)
    argv = [world.fill(a) for a in case.argv]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err and ".tmp" not in lines[0]
    assert world.fill(case.match).lower() in lines[0].lower(), lines[0]
    if case.names is not None:
        assert world.fill(case.names) in lines[0], lines[0]
    assert snapshot(*inputs) == before


def test_output_inside_input_is_refused_before_the_model_loads(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The output checks run before any checkpoint is opened: a broken checkpoint is not even read."""
    world.ckpt.write_bytes(b"broken")
    assert predict_cli.main(["--input", str(world.data), "--weights", str(world.ckpt), "--out", str(world.data)]) == 2


def test_unwritable_output_folder_names_the_users_path(world: World, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """A folder the process may not write to: ``cannot write to DIR: permission denied``, exit 2, no temp name."""
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    out = world.tmp / "locked"
    code = predict_cli.main(["--frame", str(world.img), "--weights", str(world.ckpt), "--out", str(out)])
    line = capsys.readouterr().err.strip()
    assert code == 2 and line == f"error: cannot write to {out}: permission denied"


def test_a_config_kept_in_the_run_folder_is_not_replaced_by_the_run(world: World, capsys) -> None:
    """Re-running a run from its own folder's config: the pipeline would write its config.json over the input."""
    run = world.tmp / "runs" / "exp1"
    run.mkdir(parents=True)
    config = run / "config.json"
    config.write_text('{"EPOCHS": 1}')
    before = snapshot(config, world.data)
    argv = [
        "--config",
        str(config),
        "--data",
        str(world.data),
        "--runs-dir",
        str(world.tmp / "runs"),
        "--run-id",
        "exp1",
    ]
    assert pipeline_cli.main(argv) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith("error: --run-id") and "would replace the input" in line and str(config) in line
    assert snapshot(config, world.data) == before


def test_a_link_from_the_input_to_the_output_is_not_followed_on_a_rerun(world: World, capsys) -> None:
    """A symlink inside ``--input`` that leads to ``--out``: a rerun must not score the first run's heatmaps."""
    source, out = world.tmp / "in", world.tmp / "out"
    shutil.copytree(world.data / "val" / "real", source)
    (source / "results").symlink_to(out, target_is_directory=True)
    before = snapshot(source)
    argv = ["--input", str(source), "--weights", str(world.ckpt), "--out", str(out), "--no-progress"]
    assert predict_cli.main(argv) == 0
    assert any((out / "heatmaps").iterdir())
    assert predict_cli.main(argv) == 0
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    scored = [r["path"] for r in rows if r["probability"]]
    assert len(scored) == len(list(source.glob("*.jpg"))) and not any("heatmaps" in p for p in scored)
    assert next(r for r in rows if r["path"].endswith("results"))["error"].startswith("lies in the output folder")
    assert snapshot(source) == before


def test_a_probability_that_is_not_a_number_never_reaches_the_json_or_the_csv() -> None:
    from deepfake_lib.cli.predict import _emit
    from deepfake_lib.predict.folder import NOT_FINITE, _record_score
    from deepfake_lib.predict.results import PredictError

    with pytest.raises(PredictError, match="not a finite number"):
        _emit({"decision": "REAL", "probability": float("nan")})
    row = {"probability": "", "decision": "", "error": ""}
    assert not _record_score(row, float("nan"), "REAL") and row == {
        "probability": "",
        "decision": "",
        "error": NOT_FINITE,
    }
    assert _record_score(row, 0.25, "REAL") and row["probability"] == "0.250000"
