"""One row of the quality table: split a face set by its groups, train a recipe, calibrate, score the test split.

    python benchmarks/dfdc_faces/recipe.py --data ../shared/data/dfdc_faces_dev --rows 4000 --seed 0 \
        --recipe new --out outputs/bench/dfdc/new-s0

``--rows N`` takes the first N rows of the set's ``manifest.csv`` (the quick subset: 4,000); without it the
whole folder. The split is 70/15/15 by ``--group-column`` of ``--group-csv`` (default: the set's manifest).
Writes ``row.json`` (test AUC, balanced accuracy, EER, ECE and Brier before and after temperature scaling,
TPR at 1% / 5% FPR, the target-FPR threshold's false alarms on val and test, per-TTA AUC and cost, epochs,
seconds per epoch) into ``--out``; the training run folder is ``--out/run``. It calls the same library
functions as notebooks 01-03.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from deepfake_lib.core.recipe import PRESETS, Recipe

# the rows' recipes are core.recipe's presets: 02's defaults and the face-swap recipe
RECIPES = {"defaults": PRESETS["defaults"], "new": PRESETS["face-swap"]}


def configs(recipe: Recipe, seed: int) -> tuple[Any, Any]:
    """The ``ModelConfig`` and ``TrainConfig`` of ``recipe`` (as 02 builds them), with ``seed``."""
    from deepfake_lib.models import ModelConfig
    from deepfake_lib.training import TrainConfig

    m, d, t = recipe.model, recipe.data, recipe.train
    model = ModelConfig(backbone=m.backbone, pretrained=m.pretrained, weights_path=m.weights_path,
                        image_size=m.image_size, trainable_blocks=m.trainable_blocks,
                        frequency_branch=m.frequency_branch)  # fmt: skip
    train = TrainConfig(
        epochs=t.epochs, batch_size=t.batch_size, lr=t.lr, backbone_lr=t.backbone_lr, weight_decay=t.weight_decay,
        head_warmup_epochs=t.head_warmup_epochs, balance=d.balance, patience=t.patience, monitor=t.monitor,
        scheduler=t.scheduler, warmup_epochs=t.warmup_epochs, ema_decay=t.ema_decay,
        label_smoothing=t.label_smoothing, batch_groups=d.batch_groups, seed=seed, progress=False, resume=True,
    )  # fmt: skip
    return model, train


def subset(src: Path, manifest: Path, rows: int, out: Path) -> Path:
    """A flat folder of symlinks to the first ``rows`` files of ``manifest`` (same relative paths)."""
    with manifest.open(newline="") as f:
        chosen = [r["path"] for r in list(csv.DictReader(f))[:rows]]
    for rel in chosen:
        link = out / rel
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to((src / rel).resolve())
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--group-csv", type=Path, default=None, help="default: DATA/manifest.csv")
    p.add_argument("--group-column", default="group")
    p.add_argument("--rows", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--recipe", choices=sorted(RECIPES), default="new")
    p.add_argument(
        "--set", action="append", default=[], metavar="SECTION.FIELD=VALUE", help="override a recipe value (JSON)"
    )
    p.add_argument("--fakes", default="labelled", help="labelled | self-blended | both")
    p.add_argument("--extra-test", type=Path, action="append", default=[], help="a further {real,fake} folder")
    p.add_argument("--robustness", action="store_true", help="also score the test split under 03's degradations")
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)

    import torch

    from deepfake_lib.core.device import seed_everything
    from deepfake_lib.core.recipe import RECIPE_FILE, save_recipe
    from deepfake_lib.data import scan_dataset, scan_split
    from deepfake_lib.data.selfblend import datasets_for
    from deepfake_lib.evaluation import calibration, evaluate
    from deepfake_lib.evaluation.metrics import full_metrics
    from deepfake_lib.models import EfficientNetLSTM, load_model
    from deepfake_lib.prepare import make_splits, split_groups
    from deepfake_lib.training import fit

    changes = {key: json.loads(value) for key, value in (kv.split("=", 1) for kv in args.set)}
    recipe = RECIPES[args.recipe].with_values(changes)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    seed_everything(args.seed)
    group_csv = args.group_csv or (args.data / "manifest.csv")
    src = subset(args.data, group_csv, args.rows, out / "source") if args.rows else args.data
    splits = make_splits(
        src, out / "splits", seed=args.seed, group_csv=str(group_csv) if group_csv.is_file() else None,
        group_column=args.group_column if group_csv.is_file() else None, progress=False,
    )  # fmt: skip
    data_dir = splits.out_dir
    run = out / "run"
    size = recipe.model.image_size
    scans = scan_dataset(data_dir, ["train", "val"])
    train_ds, val_ds, _ = datasets_for(
        scans, args.fakes, size, run, args.seed, progress=False, augment=recipe.data.augment,
        group_of=split_groups(data_dir),
    )  # fmt: skip
    model_config, cfg = configs(recipe, args.seed)
    model = EfficientNetLSTM(model_config)
    save_recipe(recipe.with_values({"train.seed": args.seed, "data.fakes": args.fakes}), run / RECIPE_FILE)
    t0 = time.perf_counter()
    result = fit(model, train_ds, val_ds, run, cfg)
    train_s = time.perf_counter() - t0
    best, _ = load_model(result.best_path)
    best.set_temperature(1.0)

    views: dict[str, dict] = {}
    for tta in ("none", "hflip", "more"):
        t1 = time.perf_counter()
        preds = {s: evaluate.predict_split(best, data_dir, s, progress=False, tta=tta) for s in ("val", "test")}
        cost = time.perf_counter() - t1
        views[tta] = {"preds": preds, "seconds": cost}
    base = views["none"]["seconds"]
    tta_rows = {}
    for tta, v in views.items():
        val, test = v["preds"]["val"], v["preds"]["test"]
        fitted = calibration.fit_temperature(val.logits, val.labels, "val", tta)
        cal_val, cal_test = calibration.rescale(val, fitted.temperature), calibration.rescale(test, fitted.temperature)
        eer = evaluate.choose_threshold(cal_val.labels, cal_val.probs, "eer", split="val")
        budget = evaluate.choose_threshold(cal_val.labels, cal_val.probs, "target_fpr", split="val", target_fpr=0.05)
        raw = full_metrics(test.labels, test.probs, eer.threshold)
        cal = full_metrics(cal_test.labels, cal_test.probs, eer.threshold)
        tta_rows[tta] = {
            "test_auc": cal["auc"], "balanced_accuracy": cal["balanced_accuracy"], "eer": cal["eer"],
            "ece_raw": raw["ece"], "ece": cal["ece"], "brier_raw": raw["brier"], "brier": cal["brier"],
            "log_loss_raw": raw["log_loss"], "log_loss": cal["log_loss"],
            "tpr_at_5pct_fpr": cal["tpr_at_5pct_fpr"], "tpr_at_1pct_fpr": cal["tpr_at_1pct_fpr"],
            "temperature": fitted.temperature, "val_auc": full_metrics(val.labels, val.probs)["auc"],
            "target_fpr_5pct": {"val_fpr": budget.at_threshold["fpr"],
                                "test_fpr": full_metrics(cal_test.labels, cal_test.probs, budget.threshold)["fpr"]},
            "relative_cost": v["seconds"] / base if base else math.nan,
        }  # fmt: skip
    extra: dict[str, dict] = {}
    hist = result.history
    row = {
        "recipe": args.recipe, "settings": recipe.to_dict(), "seed": args.seed, "rows": args.rows, "fakes": args.fakes,
        "split_counts": splits.counts, "train_config": asdict(cfg), "backbone_used": best.config.backbone,
        "epochs_run": len(hist), "best_epoch": result.best_epoch,
        "seconds_per_epoch": sum(h["epoch_seconds"] for h in hist) / max(1, len(hist)), "train_seconds": train_s,
        "history": hist, "tta": tta_rows, "extra_test": extra,
    }  # fmt: skip
    (out / "row.json").write_text(json.dumps(row, indent=2, default=float))
    best.set_temperature(tta_rows["hflip"]["temperature"])  # cross-dataset rows: as 03 would score them
    for folder in args.extra_test:  # scored whole (no face crops), at the in-domain EER threshold
        try:
            samples = scan_split(folder.parent, folder.name, validate=False).samples
            pr = evaluate.predict_samples(best, samples, progress=False, tta="hflip")
            m = full_metrics(pr.labels, pr.probs)
            extra[folder.name] = {k: m[k] for k in ("n", "auc", "eer", "tpr_at_5pct_fpr", "ece")}
        except Exception as exc:  # a benchmark row is kept whatever a further folder does
            extra[folder.name] = {"error": f"{type(exc).__name__}: {exc}"}
        (out / "row.json").write_text(json.dumps(row, indent=2, default=float))
    if args.robustness:  # the test split degraded as in 03, hflip TTA, at the calibrated EER threshold of val
        from deepfake_lib.evaluation.robustness import evaluate_robustness

        cal_val = calibration.rescale(views["hflip"]["preds"]["val"], tta_rows["hflip"]["temperature"])
        thr = evaluate.choose_threshold(cal_val.labels, cal_val.probs, "eer", split="val").threshold
        test_samples = scan_split(data_dir, "test", validate=False).samples
        rob = evaluate_robustness(best, test_samples, thr, None, size, num_workers=0, seed=args.seed,
                                  split="test", progress=False, tta="hflip")  # fmt: skip
        row["robustness"] = rob.to_record()
        (out / "row.json").write_text(json.dumps(row, indent=2, default=float))
    n = tta_rows["none"]
    print(
        f"{args.recipe} seed {args.seed}: test AUC {n['test_auc']:.4f} bal.acc {n['balanced_accuracy']:.4f} "
        f"EER {n['eer']:.4f} ECE {n['ece_raw']:.4f}->{n['ece']:.4f} TPR@5% {n['tpr_at_5pct_fpr']:.4f} | "
        + " ".join(f"{k}: AUC {v['test_auc']:.4f} x{v['relative_cost']:.2f}" for k, v in tta_rows.items())
        + f" | {len(hist)} epochs, {row['seconds_per_epoch']:.0f} s/epoch"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
