"""Training on several processes (CPU, gloo): sharded epochs, one set of files, gathered validation, the same
training as one process with the same global batch, resume across process counts, launch errors, the CLI."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import BatchSampler

from deepfake_lib import data, pipeline
from deepfake_lib.cli import pipeline as pipeline_cli
from deepfake_lib.cli import train as train_cli
from deepfake_lib.core.runs import read_json
from deepfake_lib.data.samplers import LengthGroupedBatchSampler, ShardedBatchSampler
from deepfake_lib.evaluation.inference import predict_loader
from deepfake_lib.evaluation.metrics import basic_metrics
from deepfake_lib.models.checkpoint import load_checkpoint, load_model
from deepfake_lib.training import launch
from deepfake_lib.training.epochs import _epoch_seed
from deepfake_lib.training.loop import TrainConfig, fit
from tests.conftest import tiny_model

FAST = {"num_workers": 0, "progress": False, "device": "cpu", "seed": 0}


class RecordingDataset(data.DeepfakeDataset):
    """Appends ``index`` to ``<folder>/rank<RANK>.txt`` for every item a process loads (forked processes inherit
    the class and the folder)."""

    folder: Path | None = None

    def __getitem__(self, index: int) -> dict:
        if self.folder is not None:
            with (self.folder / f"rank{os.environ.get('RANK', '0')}.txt").open("a") as f:
                f.write(f"{index}\n")
        return super().__getitem__(index)


def _datasets(root: Path, augment: bool = True, cls: type = data.DeepfakeDataset):
    scans = data.scan_dataset(root, ["train", "val"])
    return (
        cls(scans["train"].samples, data.build_transform(32, train=augment)),
        data.DeepfakeDataset(scans["val"].samples, data.build_transform(32, train=False)),
    )


def _deterministic(**overrides):
    """A tiny model without dropout or drop-connect: runs differ only where the training differs."""
    model = tiny_model(dropout=0.0, **overrides)
    model.backbone._global_params = model.backbone._global_params._replace(drop_connect_rate=0.0)
    return model


# --------------------------------------------------------------------------- the sampler
@pytest.mark.parametrize("world", [2, 3])
def test_shards_are_disjoint_and_together_the_oversampled_epoch(world: int) -> None:
    labels = [0] * 30 + [1] * 7

    def epoch_batches(rank: int | None) -> list[list[int]]:
        sampler = data.make_oversampler(labels, seed=5)  # every process draws with the same seed
        batches = BatchSampler(sampler, 4, drop_last=False)
        return [list(b) for b in (batches if rank is None else ShardedBatchSampler(batches, rank, world))]

    whole = epoch_batches(None)
    shards = [epoch_batches(r) for r in range(world)]
    pad = ShardedBatchSampler.padding(len(whole), world)
    assert len(whole) == 10 and pad == (-10) % world
    assert all(len(s) == len(shards[0]) for s in shards)  # every process takes the same number of steps
    dealt = [shards[k % world][k // world] for k in range(len(whole) + pad)]
    assert dealt == whole + whole[:pad]  # round robin over the one draw: disjoint, all of it, padded from the start
    assert sum(len(b) for b in whole) == len(labels)
    assert abs(sum(labels[i] for b in whole for i in b) / len(labels) - 0.5) < 0.25  # oversampled: about even


def test_shards_keep_one_sequence_length_per_batch() -> None:
    lengths = [1, 4] * 10
    batches = LengthGroupedBatchSampler(range(20), lengths, 3)
    for rank in (0, 1):
        for batch in ShardedBatchSampler(batches, rank, 2):
            assert len({lengths[i] for i in batch}) == 1
    with pytest.raises(ValueError, match="rank"):
        ShardedBatchSampler(batches, 2, 2)


# --------------------------------------------------------------------------- two processes
def test_two_processes_shard_the_epoch_write_one_run_and_validate_on_all_data(separable: Path, tmp_path: Path) -> None:
    train_ds, val_ds = _datasets(separable, cls=RecordingDataset)
    train_ds.folder = tmp_path
    run = tmp_path / "run"
    cfg = TrainConfig(epochs=2, batch_size=4, precise_bn_batches=0, **FAST)
    result = launch.fit_processes(tiny_model(), train_ds, val_ds, run, cfg, num_processes=2)
    assert (result.processes, result.global_batch_size, len(result.history)) == (2, 8, 2)

    # each process trained on its round-robin share of each epoch's one oversampled draw
    seen = {r: [int(x) for x in (tmp_path / f"rank{r}.txt").read_text().split()] for r in (0, 1)}
    expected: dict[int, list[int]] = {0: [], 1: []}
    for epoch in range(2):
        sampler = data.make_oversampler(train_ds.labels, seed=0)
        sampler.generator.manual_seed(_epoch_seed(0, epoch))
        batches = [list(b) for b in BatchSampler(sampler, 4, drop_last=True)]  # 24 images: 6 batches, 3 each
        for r in (0, 1):
            expected[r] += [i for b in batches[r::2] for i in b]
    assert seen == expected

    # one set of files, written by rank 0
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best_model.pth", "last.pth"]
    assert sorted(p.name for p in run.iterdir() if p.is_file()) == ["history.json", "metrics.json", "progress.json"]
    assert read_json(run / "history.json") == result.history
    last = load_checkpoint(run / "checkpoints" / "last.pth")
    assert last["processes"] == {"processes": 2, "batch_size": 4, "global_batch_size": 8}
    assert read_json(run / "metrics.json")["train"]["global_batch_size"] == 8

    # the gathered validation metrics are those of one process evaluating the saved model on the whole split
    model, _ = load_model(run / "checkpoints" / "last.pth")
    preds = predict_loader(model, data.make_loader(val_ds, 8), torch.device("cpu"), amp=False, progress=False)
    single = basic_metrics(preds.labels, preds.probs)
    row = result.history[-1]
    assert len(preds) == len(val_ds) == 12
    assert row["val_loss"] == pytest.approx(single["log_loss"], abs=1e-5)
    assert row["val_auc"] == pytest.approx(single["auc"], abs=1e-9)
    assert row["val_accuracy"] == pytest.approx(single["accuracy"], abs=1e-9)


def test_two_processes_train_like_one_with_the_same_global_batch(separable: Path, tmp_path: Path) -> None:
    """Backbone frozen (BatchNorm in eval mode), no augmentation, no dropout: the runs then differ only in how the
    work is split (sums in another order), and the curves agree within 5e-3 (Adam's normalised steps magnify rounding
    in near-zero gradients; measured up to 2e-3). With BatchNorm layers training, each CPU process
    normalises with its own batch's statistics (there is no SyncBatchNorm on the CPU), and the curves differ by the
    noise of a half-size batch's statistics (measured up to 0.16 in loss at 4 images of 32 px per process)."""
    train_ds, val_ds = _datasets(separable, augment=False)
    common = {"epochs": 3, "lr": 1e-2, "patience": 10, **FAST}
    one = fit(_deterministic(trainable_blocks=0), train_ds, val_ds, tmp_path / "one", batch_size=8, **common)
    two = launch.fit_processes(
        _deterministic(trainable_blocks=0), train_ds, val_ds, tmp_path / "two", TrainConfig(batch_size=4, **common),
        num_processes=2,
    )  # fmt: skip
    for a, b in zip(one.history, two.history, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], abs=5e-3)
        assert b["val_loss"] == pytest.approx(a["val_loss"], abs=5e-3)
    assert one.history[0]["train_loss"] != one.history[-1]["train_loss"]  # it trained


def test_resume_across_process_counts(separable: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train_ds, val_ds = _datasets(separable)
    run, common = tmp_path / "run", {"batch_size": 4, "head_warmup_epochs": 1, **FAST}
    first = launch.fit_processes(tiny_model(), train_ds, val_ds, run, TrainConfig(epochs=2, **common), num_processes=2)
    then = fit(tiny_model(), train_ds, val_ds, run, TrainConfig(epochs=3, **common))  # 2 processes -> 1
    assert "resuming a run trained on 2 process(es) (global batch 8) on 1 (global batch 4)" in capsys.readouterr().out
    assert then.resumed_from_epoch == 2 and then.history[:2] == first.history and len(then.history) == 3
    assert (then.processes, then.global_batch_size) == (1, 4)
    again = launch.fit_processes(tiny_model(), train_ds, val_ds, run, TrainConfig(epochs=4, **common), num_processes=2)
    assert again.resumed_from_epoch == 3 and again.history[:3] == then.history and len(again.history) == 4
    assert load_checkpoint(run / "checkpoints" / "last.pth")["epoch"] == 4
    # the warm-up's frozen backbone trains again afterwards, in the model handed in too
    model = tiny_model(trainable_blocks=-1)
    fit(model, train_ds, val_ds, tmp_path / "warm", TrainConfig(epochs=1, **common))
    assert all(p.requires_grad for p in model.parameters()) and not model.head_only


def test_launch_errors_are_clear(separable: Path, tmp_path: Path) -> None:
    train_ds, val_ds = _datasets(separable)
    with pytest.raises(ValueError, match="NUM_PROCESSES must be an integer >= 1"):
        launch.fit_processes(tiny_model(), train_ds, val_ds, tmp_path, TrainConfig(**FAST), num_processes=0)
    one_class = data.DeepfakeDataset([s for s in val_ds.samples if s.label == 0], val_ds.transform)
    cfg = TrainConfig(epochs=1, batch_size=4, monitor="val_auc", **FAST)
    with pytest.raises(launch.LaunchError, match=r"process \d.*monitor='val_auc' needs REAL and FAKE"):
        launch.fit_processes(tiny_model(), train_ds, one_class, tmp_path / "bad", cfg, num_processes=2)
    assert launch.kernel_device("auto", 2) == "cpu" and launch.kernel_device("cpu", 1) == "cpu"


def test_launch_refuses_more_processes_than_gpus_and_a_kernel_that_used_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launch, "resolve_device", lambda device: torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match=r"NUM_PROCESSES = 2 but this machine has 1 GPU\(s\)"):
        launch.check_num_processes(2, "auto")
    assert launch.check_num_processes(1, "auto") == 1
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    with pytest.raises(launch.LaunchError, match="CUDA is already in use in this kernel"):
        launch.run_processes(print, (), 2)


def test_a_kernel_that_ran_torch_export_and_a_training_cannot_fork_trainings_and_is_told_so(
    separable: Path, tmp_path: Path
) -> None:
    """After ``torch.export`` (what the ONNX export runs) and a training in the same process, autograd's worker
    threads are running and processes forked from it cannot run backward. A fresh interpreter (this one must keep
    forking) exports a layer, trains one epoch, then launches two processes."""
    script = f"""
import sys
from pathlib import Path
import torch
from deepfake_lib.training import launch
from deepfake_lib.training.loop import TrainConfig, fit
from tests.conftest import tiny_model
from tests.test_distributed import FAST, _datasets

torch.export.export(torch.nn.Linear(2, 2), (torch.randn(1, 2),))
train_ds, val_ds = _datasets(Path("{separable}"))
cfg = TrainConfig(epochs=1, batch_size=4, **FAST)
fit(tiny_model(), train_ds, val_ds, "{tmp_path}/one", cfg)
try:
    launch.fit_processes(tiny_model(), train_ds, val_ds, "{tmp_path}/run", cfg, num_processes=2)
except launch.LaunchError as exc:
    print("LaunchError:", exc)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).parent.parent)  # fmt: skip
    assert "LaunchError: 2 processes failed: process " in proc.stdout, proc.stderr[-3000:]
    assert "autograd's worker threads (an ONNX export followed by a training does)" in proc.stdout
    assert "restart the kernel and run 02 from the top" in proc.stdout


# --------------------------------------------------------------------------- the command line
def test_cli_defaults_are_notebook_02s() -> None:
    declared = pipeline.declared_parameters(pipeline.notebooks_dir() / "02_train.ipynb")
    args = train_cli.build_parser().parse_args(["--data", "d", "--run-dir", "r"])
    compared = []
    for name, value in vars(args).items():
        if (key := name.upper()) in declared and name != "run_dir":
            got = train_cli.PRETRAINED_CHOICES[value] if name == "pretrained" else value
            assert got == ast.literal_eval(declared[key]), name
            compared.append(key)
    assert len(compared) >= 20, compared


def test_cli_trains_on_two_processes_under_torchrun(tiny_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "deepfake_lib.cli.train",
        "--data", str(tiny_data), "--run-dir", str(run), "--image-size", "32", "--epochs", "2", "--batch-size", "4",
        "--pretrained", "false", "--device", "cpu", "--num-workers", "0", "--no-progress", "--batch-groups",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(printed) == 1 and printed[0]["processes"] == 2 and printed[0]["global_batch_size"] == 8
    metrics = read_json(run / "metrics.json")
    assert len(metrics["train"]["history"]) == 2 and metrics["fakes"]["mode"] == "labelled"
    best = load_checkpoint(run / "checkpoints" / "best_model.pth")
    assert best["config"]["image_size"] == 32 and best["train_config"]["batch_groups"] is True


def test_pipeline_passes_num_processes_to_02(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen = {}
    monkeypatch.setattr(pipeline_cli, "run_pipeline", lambda params, **kw: seen.update(params))
    assert pipeline_cli.main(["--data", str(tmp_path), "--num-processes", "2", "-p", "EPOCHS", "1"]) == 0
    assert seen == {"NUM_PROCESSES": 2, "EPOCHS": 1}
    with pytest.raises(SystemExit):
        pipeline_cli.main(["--num-processes", "0"])


def test_cli_reports_bad_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data" / "train" / "real").mkdir(parents=True)
    code = train_cli.main(["--data", str(tmp_path / "data"), "--run-dir", str(tmp_path / "run"), "--device", "cpu"])
    assert code == 2 and "error:" in capsys.readouterr().err
