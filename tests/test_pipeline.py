"""The papermill pipeline: step selection, parameters, config files, run folders, failures, summary."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from deepfake_lib import pipeline as P
from deepfake_lib.cli import pipeline as pipeline_cli
from deepfake_lib.core.recipe import DEFAULT_RECIPE, load_recipe
from deepfake_lib.core.runs import read_json
from deepfake_lib.pipeline.config import DEMO_DATA
from deepfake_lib.pipeline.execute import kernel_options
from tests.conftest import NotebookRun

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "IMAGE_SIZE": "32", "EPOCHS": "1", "BATCH_SIZE": "8", "PRETRAINED": "False", "NUM_WORKERS": "0", "DEVICE": "cpu",
    "DEGRADATIONS": "[jpeg:50]", "LINEAR_PROBE": "False",
}  # fmt: skip


def _argv(data: Path, runs: Path, run_id: str, *extra: str, **params: str) -> list[str]:
    argv = ["--data", str(data), "--runs-dir", str(runs), "--run-id", run_id, *extra]
    for k, v in {**TINY, **params}.items():
        argv += ["-p", k, v]
    return argv


def test_select_steps() -> None:
    nbs = {k: Path(f"{k}_x.ipynb") for k in ("01", "02", "03", "04", "05")}
    assert P.select_steps(None, nbs) == ["01", "02", "03", "04", "05"]
    assert P.select_steps("02-04", nbs) == ["02", "03", "04"]
    assert P.select_steps("5", nbs) == ["05"]
    assert P.select_steps("01,03", nbs) == ["01", "03"]
    for bad in ("07", "x", "08-09"):
        with pytest.raises(P.PipelineError):
            P.select_steps(bad, nbs)


def test_parse_value() -> None:
    assert P.parse_value("3") == 3 and P.parse_value("1e-3") == 1e-3 and P.parse_value("0.5") == 0.5
    assert P.parse_value("False") is False and P.parse_value("None") is None
    assert P.parse_value("[train, val]") == ["train", "val"] and P.parse_value("auto") == "auto"


def test_load_config(tmp_path: Path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text("data: data/x\nsteps: 02-03\nparameters:\n  EPOCHS: 3\nLR: 0.01\n")
    options, params = P.load_config(cfg)
    assert options == {"data": "data/x", "steps": "02-03"} and params == {"EPOCHS": 3, "LR": 0.01}
    cfg.write_text("epochs: 3\n")
    with pytest.raises(P.PipelineError, match="UPPER_CASE"):
        P.load_config(cfg)


def test_unknown_parameter_is_refused_before_anything_runs(tiny_data: Path, tmp_path: Path, capsys) -> None:
    assert pipeline_cli.main(_argv(tiny_data, tmp_path, "r", EPOHCS="2")) == 2
    err = capsys.readouterr().err
    assert "unknown parameter(s) EPOHCS" in err and "EPOCHS" in err
    assert not (tmp_path / "r" / "executed").exists()


@pytest.mark.slow
def test_whole_pipeline_then_reuse_a_step(notebook_run: NotebookRun, tiny_data: Path, tmp_path: Path, capfd) -> None:
    """Quiet: one line per notebook and the summary's, and nothing from the kernels on the file descriptors (a
    kernel warning about its TCP transport, or anything else, would show there)."""
    run = notebook_run.root
    steps = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(p.name for p in (run / "executed").glob("*.ipynb")) == steps
    # without a terminal the progress of a notebook at work comes as lines of its own, at most one per epoch
    progress = [line for line in notebook_run.lines if re.match(r"\[\d+/\d+\] \w+: ", line)]
    lines = [line for line in notebook_run.lines if line not in progress]
    assert len(lines) == len(steps) + 1, lines
    train = [line for line in progress if line.startswith(f"[2/{len(steps)}] 02_train: ")]
    assert train and len(train) <= 3, progress  # starting, epoch 1 and epoch 2 (EPOCHS 2), each once at most
    assert re.fullmatch(r"\[2/\d+\] 02_train: epoch [12]/2, val (AUC|loss) [\d.]+, (finished|stopped early)", train[-1])
    assert notebook_run.lines.index(train[-1]) < notebook_run.lines.index(lines[1])  # before 02's "ok" line
    assert notebook_run.fd_out == "" and notebook_run.fd_err == "", (notebook_run.fd_out, notebook_run.fd_err)
    for i, (name, line) in enumerate(zip(steps, lines, strict=False), 1):
        assert re.fullmatch(rf"\[{i}/{len(steps)}\] {name[:-6]} ok \(\d+\.\d s\)", line), line
    config = read_json(run / "config.json")
    assert config["parameters"]["SEED"] == 3 and config["parameters"]["EPOCHS"] == 2
    assert config["parameters"]["DATA_DIR"] == str(tiny_data) and config["steps"] == steps
    assert config["notebook_parameters"]["02_train.ipynb"]["IMAGE_SIZE"] == 32
    ran = load_recipe(run / "recipe.yaml")  # the recipe it ran with: the defaults and the -p values
    assert (ran.model.image_size, ran.train.epochs, ran.finetune.epochs, ran.train.seed) == (32, 2, 2, 3)
    assert ran.train.lr == DEFAULT_RECIPE.train.lr and ran.evaluate.tta == DEFAULT_RECIPE.evaluate.tta
    assert (run / "checkpoints" / "best_model.pth").exists()
    summary = (run / "summary.md").read_text()
    assert "## Data" in summary and "## Training" in summary and "executed/02_train.ipynb" in summary
    assert "## Evaluation" in summary and "## Hard-example fine-tuning" in summary and "![05_gradcam_grid]" in summary
    assert lines[-1] == f"summary: {run / 'summary.md'}"
    assert (notebook_run.runs_dir / "latest").resolve() == run.resolve()

    # re-run only the last step against (a copy of) the same run folder, through the command line
    runs = tmp_path / "runs"
    shutil.copytree(run, runs / "full", symlinks=True)
    last = steps[-1]
    before = (runs / "full" / "executed" / steps[0]).stat().st_mtime_ns
    assert pipeline_cli.main(_argv(tiny_data, runs, "full", "--steps", last[:2])) == 0
    out, err = capfd.readouterr()
    assert out.strip().splitlines()[0].startswith(f"[1/1] {last[:-6]} ok") and err == ""
    assert (runs / "full" / "executed" / steps[0]).stat().st_mtime_ns == before
    config = read_json(runs / "full" / "config.json")
    assert config["steps"] == [last] and len(config["earlier_invocations"]) == 1


@pytest.mark.slow
def test_failing_notebook_is_named_with_its_cell(tiny_data: Path, tmp_path: Path, capsys) -> None:
    """A data folder without a val split: 02 stops with a clear message, and the pipeline names the notebook
    and the cell and keeps the partial executed notebook."""
    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    (data / "train" / "real").symlink_to(tiny_data / "train" / "real")
    (data / "train" / "fake").symlink_to(tiny_data / "train" / "fake")
    assert pipeline_cli.main(_argv(data, tmp_path, "bad", "--steps", "02")) == 1
    err = capsys.readouterr().err
    assert "02_train.ipynb failed in cell" in err and re.search(r"split folder .* not found", err), err
    partial = tmp_path / "bad" / "executed" / "02_train.ipynb"
    assert partial.exists() and "DataLayoutError" in json.dumps(json.loads(partial.read_text()))


def test_missing_data_folder_fails_with_the_reason(tmp_path: Path, capsys) -> None:
    assert pipeline_cli.main(_argv(tmp_path / "nothing", tmp_path, "nodata", "--steps", "01")) == 2  # bad input
    assert "data folder" in capsys.readouterr().err
    assert not (tmp_path / "nothing").exists()  # no demo data was made in its place
    assert not (tmp_path / "nodata" / "executed").exists()  # refused before any notebook started


def test_a_dataset_that_is_not_there_is_refused_before_any_notebook(tmp_path: Path, capsys) -> None:
    """``--data NAME:ROOT``: the reader's one line for a wrong root, and a bad TEST_DATASETS entry, stop the run before
    any notebook starts."""
    (tmp_path / "empty").mkdir()
    assert pipeline_cli.main(_argv(f"ffpp:{tmp_path / 'empty'}", tmp_path, "noffpp", "--steps", "01")) == 2
    err = capsys.readouterr().err
    assert "DATA_DIR: not a FaceForensics++ root" in err and len(err.strip().splitlines()) == 1, err
    argv = [*_argv(tmp_path / "empty", tmp_path, "nocdf", "--steps", "01"), "-p", "TEST_DATASETS", "['celebdf:/nope']"]
    assert pipeline_cli.main(argv) == 2
    assert "TEST_DATASETS: not a Celeb-DF root" in capsys.readouterr().err
    assert not (tmp_path / "noffpp" / "executed").exists() and not (tmp_path / "nocdf" / "executed").exists()


@pytest.mark.skipif(os.name != "posix", reason="Unix-domain sockets (ipc) are POSIX only")
def test_each_kernel_gets_its_own_socket_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernels started at once from one folder (two pipelines, parallel tests) never share sockets, and nothing is
    left in the working folder."""
    monkeypatch.chdir(tmp_path)
    manager_class = kernel_options()["kernel_manager_class"]
    a, b = manager_class(), manager_class()
    assert a.transport == "ipc" and Path(a.ip).parent != Path(b.ip).parent
    for manager in (a, b):
        manager.write_connection_file()
        assert Path(manager.ip).parent.is_dir() and not Path(manager.ip).is_relative_to(tmp_path)
    assert list(tmp_path.iterdir()) == []
    for manager in (a, b):
        manager.cleanup_connection_file()
        manager.cleanup_ipc_files()
        assert not Path(manager.ip).parent.exists()


def test_merge_parameters(tmp_path: Path) -> None:
    run = tmp_path / "r"
    demo = P.merge_parameters({"EPOCHS": 2}, run, demo=True, device="cpu")
    assert demo == {"EPOCHS": 2, "DATA_DIR": DEMO_DATA, "DEVICE": "cpu", "RUN_DIR": str(run)}
    real = P.merge_parameters({"DATA_DIR": "x"}, run, data_dir="data/mine")
    assert real == {"DATA_DIR": "data/mine", "BUILD_DEMO_DATA": False, "RUN_DIR": str(run)}
    # every name the pipeline sets is declared by some notebook
    declared = set().union(*(P.declared_parameters(nb) for nb in P.list_notebooks().values()))
    assert set(demo) | set(real) <= declared


@pytest.mark.skipif(os.name != "posix", reason="the IPC kernel manager is POSIX-only")
def test_kernels_are_not_interrupted_before_a_clean_shutdown(monkeypatch: pytest.MonkeyPatch) -> None:
    """jupyter_client sends SIGINT before every shutdown; a kernel finishing its last message then logs
    "KeyboardInterrupt caught in kernel". The pipeline's manager skips that interrupt while shutting down and keeps
    every other one (a user's or papermill's interrupt of a running cell)."""
    import asyncio

    from jupyter_client.manager import AsyncKernelManager

    sent: list[str] = []

    async def interrupt(self) -> None:
        sent.append("SIGINT")

    monkeypatch.setattr(AsyncKernelManager, "_async_interrupt_kernel", interrupt)
    manager = kernel_options()["kernel_manager_class"]()
    manager.shutting_down = True
    asyncio.run(manager._async_interrupt_kernel())
    assert sent == []
    manager.shutting_down = False
    asyncio.run(manager._async_interrupt_kernel())
    assert sent == ["SIGINT"]
