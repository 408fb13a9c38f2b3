"""One row of the quality table: split a face set by its groups, train a recipe, calibrate, score the test split.

    python benchmarks/dfdc_faces/recipe.py --data ../shared/data/dfdc_faces_dev --rows 4000 --seed 0 \
        --recipe new --out outputs/bench/dfdc/new-s0

``--rows N`` takes the first N rows of the set's ``manifest.csv`` (the quick subset: 4,000); without it the
whole folder. The split is 70/15/15 by ``--group-column`` of ``--group-csv`` (default: the set's manifest).
Writes ``row.json`` (test AUC, balanced accuracy, EER, ECE and Brier before and after temperature scaling,
TPR at 1% / 5% FPR, the target-FPR threshold's false alarms on val and test, per-TTA AUC and cost, epochs,
seconds per epoch) into ``--out``. It trains and evaluates through the stages notebooks 02 and 03 call
(``training.stage.train_run``, ``evaluation.stage.evaluate_run``), so ``--out/run`` is an ordinary run folder
(recipe.yaml, checkpoints with their threshold and temperature, failures.json, metrics.json) that
``python -m deepfake_lib.cli.runs compare`` lists beside notebook runs; the TTA rows score its model once per mode.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from deepfake_lib.core.recipe import PRESETS

# the rows' recipes are core.recipe's presets: 02's defaults and the face-swap recipe
RECIPES = {"defaults": PRESETS["defaults"], "new": PRESETS["face-swap"]}


def tta_row(model: Any, data_dir: Path, settings: Any, tta: str) -> dict[str, Any]:
    """The test split's numbers with test-time augmentation ``tta``, decided as ``evaluation.stage.score_splits``
    decides for ``settings`` (a recipe's evaluate section: calibrated on val, its threshold rule on val), with the
    raw scores' ECE, Brier and log loss beside the calibrated ones, the 5% false-alarm budget chosen on val and
    kept on test, and the seconds the two splits took. ``model`` at temperature 1."""
    from deepfake_lib.evaluation.evaluate import choose_threshold
    from deepfake_lib.evaluation.metrics import full_metrics
    from deepfake_lib.evaluation.stage import score_splits

    s = score_splits(model, data_dir, ["val", "test"], replace(settings, tta=tta), "val", num_workers=0, progress=False)
    val, test, cal_val, cal_test = s.raw["val"], s.raw["test"], s.preds["val"], s.preds["test"]
    budget = choose_threshold(cal_val.labels, cal_val.probs, "target_fpr", split="val", target_fpr=0.05)
    raw, cal = full_metrics(test.labels, test.probs, s.choice.threshold), s.reports["test"]
    return {
        "test_auc": cal["auc"], "balanced_accuracy": cal["balanced_accuracy"], "eer": cal["eer"],
        "ece_raw": raw["ece"], "ece": cal["ece"], "brier_raw": raw["brier"], "brier": cal["brier"],
        "log_loss_raw": raw["log_loss"], "log_loss": cal["log_loss"],
        "tpr_at_5pct_fpr": cal["tpr_at_5pct_fpr"], "tpr_at_1pct_fpr": cal["tpr_at_1pct_fpr"],
        "temperature": s.temperature, "val_auc": full_metrics(val.labels, val.probs)["auc"],
        "target_fpr_5pct": {"val_fpr": budget.at_threshold["fpr"],
                            "test_fpr": full_metrics(cal_test.labels, cal_test.probs, budget.threshold)["fpr"]},
        "seconds": s.seconds,
    }  # fmt: skip


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
    from deepfake_lib.data import scan_split
    from deepfake_lib.evaluation.evaluate import predict_samples
    from deepfake_lib.evaluation.metrics import full_metrics
    from deepfake_lib.evaluation.stage import evaluate_run
    from deepfake_lib.prepare import make_splits
    from deepfake_lib.training.stage import train_config, train_run

    changes = {key: json.loads(value) for key, value in (kv.split("=", 1) for kv in args.set)}
    recipe = RECIPES[args.recipe].with_values(
        {**changes, "train.seed": args.seed, "data.fakes": args.fakes},
        name=f"{RECIPES[args.recipe].name} (changed)" if changes else None,
    )
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
    t0 = time.perf_counter()
    trained = train_run(recipe, data_dir, out / "run", progress=False, provenance=True)
    train_s = time.perf_counter() - t0
    result = trained.result
    run = evaluate_run(out / "run", data_dir, recipe.evaluate, progress=False)  # as 03 does: the run's own numbers
    run.model.set_temperature(1.0)  # the TTA rows start from the raw scores, as 03 does
    tta_rows = {tta: tta_row(run.model, data_dir, recipe.evaluate, tta) for tta in ("none", "hflip", "more")}
    run.model.set_temperature(run.scores.temperature)  # further folders score as 03 would
    base = tta_rows["none"]["seconds"]
    for r in tta_rows.values():
        r["relative_cost"] = r.pop("seconds") / base if base else math.nan
    extra: dict[str, dict] = {}
    hist = result.history
    row = {
        "recipe": args.recipe, "settings": recipe.to_dict(), "seed": args.seed, "rows": args.rows, "fakes": args.fakes,
        "split_counts": splits.counts, "train_config": asdict(train_config(recipe, progress=False)),
        "backbone_used": run.model.config.backbone, "run_test_auc": run.report["auc"],
        "epochs_run": len(hist), "best_epoch": result.best_epoch,
        "seconds_per_epoch": sum(h["epoch_seconds"] for h in hist) / max(1, len(hist)), "train_seconds": train_s,
        "history": hist, "tta": tta_rows, "extra_test": extra,
    }  # fmt: skip
    (out / "row.json").write_text(json.dumps(row, indent=2, default=float))
    for folder in args.extra_test:  # scored whole (no face crops), at the in-domain EER threshold
        try:
            samples = scan_split(folder.parent, folder.name, validate=False).samples
            pr = predict_samples(run.model, samples, progress=False, tta=recipe.evaluate.tta)
            m = full_metrics(pr.labels, pr.probs)
            extra[folder.name] = {k: m[k] for k in ("n", "auc", "eer", "tpr_at_5pct_fpr", "ece")}
        except Exception as exc:  # a benchmark row is kept whatever a further folder does
            extra[folder.name] = {"error": f"{type(exc).__name__}: {exc}"}
        (out / "row.json").write_text(json.dumps(row, indent=2, default=float))
    if args.robustness:  # the test split degraded as in 03, at the run's threshold and TTA
        from deepfake_lib.evaluation.robustness import evaluate_robustness

        test_samples = scan_split(data_dir, "test", validate=False).samples
        rob = evaluate_robustness(run.model, test_samples, run.scores.choice.threshold, None,
                                  recipe.model.image_size, num_workers=0, seed=args.seed, split="test",
                                  progress=False, tta=recipe.evaluate.tta)  # fmt: skip
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
