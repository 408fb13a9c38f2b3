"""Notebook 02's training from a shell or a cluster job, on one process or many:

python -m deepfake_lib.cli.train --data DATA_DIR --run-dir RUN_DIR [--epochs 15] [--batch-size 32] ...
accelerate launch --num_processes 4 -m deepfake_lib.cli.train --data DATA_DIR --run-dir RUN_DIR ...
torchrun --nproc-per-node 4 -m deepfake_lib.cli.train --data DATA_DIR --run-dir RUN_DIR ...

The options are 02's parameters with their defaults; ``--batch-size`` is per process. Rank 0 writes the run folder
(checkpoints, history, metrics.json) as 02 does, so 03-07 continue from it, and prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from deepfake_lib.cli.argtypes import (
    ema_decay,
    image_size,
    label_smoothing,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    workers,
)
from deepfake_lib.cli.paths import check_device, check_input, check_output
from deepfake_lib.cli.runner import ArgumentParser, add_debug_flag, run_command
from deepfake_lib.core.choices import AUGMENTATIONS, BACKBONES, BALANCES, FAKES_MODES, MONITORS, SCHEDULERS
from deepfake_lib.core.recipe import DEFAULT_RECIPE, PRESETS, RECIPE_FILE, Recipe, RecipeError, load_recipe

PRETRAINED_CHOICES = {"auto": "auto", "true": True, "false": False}


def build_parser(recipe: Recipe | None = None) -> argparse.ArgumentParser:
    """The parser; its defaults are ``recipe``'s (the default recipe, or the one ``--recipe`` names)."""
    r = recipe or DEFAULT_RECIPE
    m, d, t = r.model, r.data, r.train
    p = ArgumentParser(
        prog="python -m deepfake_lib.cli.train",
        description="Train the detector as notebook 02 does; under accelerate launch or torchrun on several "
        "processes (GPUs or CPU processes).",
        epilog="Exit codes: 0 trained, 2 bad data or usage, 1 an unexpected error.",
    )
    p.add_argument("--data", required=True, help="a data folder with train/ and val/ splits (or what 01 prepared)")
    p.add_argument("--run-dir", required=True, help="the run folder (checkpoints/, history.json, metrics.json)")
    p.add_argument(
        "--recipe", metavar="NAME|FILE",
        help=f"a preset ({', '.join(PRESETS)}) or a recipe YAML file: its values are the defaults of the options "
        "below (an option given wins); the run folder gets the recipe it trained with as recipe.yaml",
    )  # fmt: skip
    p.add_argument("--image-size", type=image_size, default=m.image_size)
    p.add_argument("--epochs", type=positive_int, default=t.epochs)
    p.add_argument("--batch-size", type=positive_int, default=t.batch_size, help="images per process per step")
    p.add_argument("--lr", type=positive_float, default=t.lr, help="LSTM and head")
    p.add_argument("--backbone-lr", type=positive_float, default=t.backbone_lr, help="the trainable backbone layers")
    p.add_argument("--weight-decay", type=non_negative_float, default=t.weight_decay)
    p.add_argument("--backbone", choices=BACKBONES, default=m.backbone)
    p.add_argument("--pretrained", choices=sorted(PRETRAINED_CHOICES), default=str(m.pretrained).lower())
    p.add_argument("--weights-path", default=m.weights_path, help="local ImageNet weights file for offline use")
    p.add_argument(
        "--trainable-blocks", type=int, default=m.trainable_blocks, help="last MBConv blocks to train, -1 for all"
    )
    p.add_argument("--head-warmup-epochs", type=non_negative_int, default=t.head_warmup_epochs)
    p.add_argument("--augment", choices=AUGMENTATIONS, default=d.augment, help="training augmentation recipe")
    p.add_argument("--scheduler", choices=SCHEDULERS, default=t.scheduler)
    p.add_argument("--warmup-epochs", type=non_negative_float, default=t.warmup_epochs, help="warmup_cosine's")
    p.add_argument(
        "--ema-decay", type=ema_decay, default=t.ema_decay, help="weight moving average (e.g. 0.999), 0 = off"
    )
    p.add_argument("--label-smoothing", type=label_smoothing, default=t.label_smoothing)
    p.add_argument(
        "--batch-groups", action=argparse.BooleanOptionalAction, default=d.batch_groups,
        help="train each group of the split (a real face and its forgeries) in one batch",
    )  # fmt: skip
    p.add_argument("--frequency-branch", action=argparse.BooleanOptionalAction, default=m.frequency_branch)
    p.add_argument("--fakes", choices=FAKES_MODES, default=d.fakes)
    p.add_argument("--balance", choices=BALANCES, default=d.balance)
    p.add_argument("--patience", type=positive_int, default=t.patience)
    p.add_argument("--monitor", choices=MONITORS, default=t.monitor)
    p.add_argument("--no-resume", dest="resume", action="store_false", help="start over instead of last.pth")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--num-workers", type=workers, default=-1, help="DataLoader workers per process, -1 = automatic")
    p.add_argument("--seed", type=int, default=t.seed)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    add_debug_flag(p)
    return p


def train(args: argparse.Namespace, recipe: Recipe) -> dict[str, Any]:
    """Join the launcher's processes (if any) and train ``recipe`` as 02 does (``training.stage.train_run``: the
    run folder gets it as recipe.yaml). Returns the ``train`` summary that rank 0 also writes into metrics.json."""
    from deepfake_lib.training import distributed
    from deepfake_lib.training.stage import train_run

    distributed.init_processes(args.device)
    trained = train_run(
        recipe, args.data, args.run_dir, device=args.device, num_workers=args.num_workers, resume=args.resume,
        progress=args.progress, provenance=True,
    )  # fmt: skip
    summary = trained.result.summary()
    summary.pop("history")
    return summary


# the train command's options that are recipe settings ("section.field")
RECIPE_OPTIONS = {
    "image_size": "model.image_size", "backbone": "model.backbone", "weights_path": "model.weights_path",
    "trainable_blocks": "model.trainable_blocks", "frequency_branch": "model.frequency_branch",
    "augment": "data.augment", "batch_groups": "data.batch_groups", "fakes": "data.fakes", "balance": "data.balance",
    **{k: f"train.{k}" for k in ("epochs", "batch_size", "lr", "backbone_lr", "weight_decay", "head_warmup_epochs",
                                 "scheduler", "warmup_epochs", "ema_decay", "label_smoothing", "patience", "monitor",
                                 "seed")},
}  # fmt: skip


def args_recipe(args: argparse.Namespace, base: Recipe) -> Recipe:
    """The recipe this command trained with: ``base`` with the options' values."""
    values = {dotted: getattr(args, option) for option, dotted in RECIPE_OPTIONS.items()}
    values["model.pretrained"] = PRETRAINED_CHOICES[args.pretrained]
    changed = {k: v for k, v in values.items() if base.get(k) != v}
    return base.with_values(values, name=f"{base.name} (changed)" if changed else base.name)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit code: 0 trained, 2 bad data or usage, 1 unexpected."""
    from deepfake_lib.data.scan import DataLayoutError
    from deepfake_lib.models.checkpoint import CheckpointError
    from deepfake_lib.training import distributed

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--recipe")
    try:
        recipe = load_recipe(pre.parse_known_args(argv)[0].recipe)
    except RecipeError as exc:
        print(f"error: --recipe: {exc}", file=sys.stderr)
        return 2
    args = build_parser(recipe).parse_args(argv)

    def body() -> int:
        check_device(args.device)
        check_input(args.data, "--data", "folder")
        check_output(
            args.run_dir, "--run-dir", "folder", [args.data, pre.parse_known_args(argv)[0].recipe], [args.data],
            create=False, writes=(RECIPE_FILE,),
        )  # fmt: skip
        summary = train(args, args_recipe(args, recipe))
        ranks = distributed.current()
        if ranks.is_main:
            keys = ("processes", "global_batch_size", "best_epoch", "epochs_run", "best_checkpoint")
            print(json.dumps({k: summary[k] for k in keys}))
        if ranks.distributed:
            import torch.distributed

            torch.distributed.destroy_process_group()
        return 0

    bad_input = (DataLayoutError, CheckpointError, FileNotFoundError, ValueError)
    return run_command(body, bad_input=bad_input, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
