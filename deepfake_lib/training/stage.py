"""Train a recipe on a dataset into a run folder: the one training stage that notebook 02, ``cli.train`` and the
benchmarks call, so the three train the same model from the same settings.

``prepare_training`` builds what training starts from (the scans, the training and validation sets, the model);
``train_run`` adds ``fit`` (on one process or several) and writes the run's ``recipe.yaml``. The recipe gives every
setting that changes the model; the keyword arguments are where and how it runs (device, workers, decoding,
processes, resuming, progress bars), which do not.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepfake_lib.core.recipe import RECIPE_FILE, Recipe, save_recipe
from deepfake_lib.models.detector import EfficientNetLSTM, ModelConfig
from deepfake_lib.training.loop import FitResult, TrainConfig


@dataclass
class TrainingSetup:
    """What training starts from: the run folder, the data folder read (what 01 prepared, if it did), the
    ``train``/``val`` scans, the two datasets, the ``fakes`` record (``selfblend.fakes_record``) and the model."""

    run_dir: Path
    data_dir: Path
    scans: dict[str, Any]
    train_ds: Any
    val_ds: Any
    fakes: dict[str, Any]
    model: EfficientNetLSTM


@dataclass
class TrainedRun:
    """A finished ``train_run``: its setup, ``fit``'s result and the recipe file written."""

    setup: TrainingSetup
    result: FitResult
    recipe_path: Path


def model_config(recipe: Recipe, frames: int = 1) -> ModelConfig:
    """The ``ModelConfig`` of ``recipe``'s model section; ``frames``: the clip length it trains on (1: images)."""
    m = recipe.model
    return ModelConfig(
        backbone=m.backbone, pretrained=m.pretrained, weights_path=m.weights_path, image_size=m.image_size,
        trainable_blocks=m.trainable_blocks, frames=frames, frequency_branch=m.frequency_branch,
    )  # fmt: skip


def train_config(recipe: Recipe, **runtime: Any) -> TrainConfig:
    """The ``TrainConfig`` of ``recipe``'s train and data sections; ``runtime``: the fields that only say where and
    how it runs (``device``, ``num_workers``, ``decode``, ``resume``, ``progress``)."""
    allowed = {"device", "num_workers", "decode", "resume", "progress"}
    if unknown := sorted(set(runtime) - allowed):
        raise TypeError(f"train_config: {unknown} are not run-time settings ({', '.join(sorted(allowed))})")
    t, d = recipe.train, recipe.data
    return TrainConfig(
        epochs=t.epochs, batch_size=t.batch_size, lr=t.lr, backbone_lr=t.backbone_lr, weight_decay=t.weight_decay,
        head_warmup_epochs=t.head_warmup_epochs, balance=d.balance, patience=t.patience, monitor=t.monitor,
        scheduler=t.scheduler, warmup_epochs=t.warmup_epochs, ema_decay=t.ema_decay,
        label_smoothing=t.label_smoothing, batch_groups=d.batch_groups, seed=t.seed, **runtime,
    )  # fmt: skip


def prepare_training(
    recipe: Recipe,
    data_dir: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    device: str = "auto",
    num_processes: int = 1,
    progress: bool = True,
) -> TrainingSetup:
    """Seed, scan ``train`` and ``val`` of the data folder (what 01 prepared from ``data_dir`` for this run, if it
    did), build the two datasets for ``recipe.data.fakes`` and the model, and record the fakes in metrics.json.

    Under ``torchrun`` / ``accelerate launch`` (a joined process group) the first process builds first (it fills the
    landmark cache and fetches the weights, the others reuse them) and only it writes; with ``num_processes`` > 1
    (processes forked later by ``train_run``) this process keeps off CUDA (``launch.kernel_device``).
    """
    from deepfake_lib.core import runs
    from deepfake_lib.core.device import resolve_device, seed_everything
    from deepfake_lib.data import scan_dataset, selfblend
    from deepfake_lib.prepare.dataset import data_dir_for_run
    from deepfake_lib.prepare.splits import split_groups
    from deepfake_lib.training import distributed
    from deepfake_lib.training.launch import kernel_device

    ranks = distributed.current()
    run = runs.run_paths(run_dir)["root"]
    data = data_dir_for_run(data_dir, run)
    seed_everything(recipe.train.seed)
    if ranks.distributed:
        where = str(distributed.process_device(resolve_device(device), ranks))
    else:
        where = kernel_device(device, num_processes)
    fakes_mode = recipe.data.fakes
    with distributed.main_first(ranks):
        scans = scan_dataset(data, ["train", "val"], required=selfblend.required_classes(fakes_mode))
        train_ds, val_ds, fakes = selfblend.datasets_for(
            scans, fakes_mode, recipe.model.image_size, run, recipe.train.seed, where,
            progress=progress and ranks.is_main, augment=recipe.data.augment, group_of=split_groups(data),
        )  # fmt: skip
        model = EfficientNetLSTM(model_config(recipe, frames=train_ds.clip_length))
    if ranks.is_main:
        runs.update_metrics(run, "fakes", fakes)
    return TrainingSetup(run, data, scans, train_ds, val_ds, fakes, model)


def train_run(
    recipe: Recipe,
    data_dir: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    device: str = "auto",
    num_workers: int = -1,
    decode: str = "auto",
    num_processes: int = 1,
    resume: bool = True,
    progress: bool = True,
    setup: TrainingSetup | None = None,
    provenance: bool = False,
) -> TrainedRun:
    """Train ``recipe`` on ``data_dir`` into ``run_dir``: ``prepare_training`` (unless ``setup`` is given: notebook
    02 shows it first), then ``fit`` on ``num_processes`` processes (``launch.fit_processes``; under a launcher each
    process calls this with 1), best and last checkpoints under ``checkpoints/`` with the data's preparation (face
    crops, clips) and the fakes, and the recipe as ``recipe.yaml`` (by the first process). ``provenance``: also write
    ``provenance.json`` (the data's fingerprint, the package versions), as the pipeline does for its runs."""
    from deepfake_lib.prepare.dataset import checkpoint_info
    from deepfake_lib.training import distributed
    from deepfake_lib.training.launch import fit_processes

    setup = setup or prepare_training(recipe, data_dir, run_dir, device, num_processes, progress)
    config = train_config(
        recipe, device=device, num_workers=num_workers, decode=decode, resume=resume, progress=progress
    )
    extra = {**checkpoint_info(setup.data_dir), "fakes": recipe.data.fakes}
    result = fit_processes(
        setup.model, setup.train_ds, setup.val_ds, setup.run_dir, config, checkpoint_extra=extra,
        num_processes=num_processes,
    )  # fmt: skip
    recipe_path = setup.run_dir / RECIPE_FILE
    if distributed.current().is_main:
        save_recipe(recipe, recipe_path)
        if provenance:
            from deepfake_lib.core.provenance import PROVENANCE_FILE
            from deepfake_lib.core.provenance import provenance as provenance_of
            from deepfake_lib.core.runs import write_json

            write_json(setup.run_dir / PROVENANCE_FILE, provenance_of(setup.data_dir))
    return TrainedRun(setup, result, recipe_path)
