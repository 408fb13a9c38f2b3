"""The learning curve: the default recipe trained on nested subsets of DFDC faces, all scored on one fixed test split.

    python benchmarks/dfdc_faces/learning_curve.py --data ../shared/data/dfdc_faces_dev \
        --data ../shared/data/dfdc_faces_extra --sizes 2800 7000 18000 --seed 0 --out outputs/bench/curve-s0

The face sets (each a flat ``{real,fake}`` folder with ``manifest.csv``: ``path,label,group``) are pooled and their
groups (a real video and its face swaps) shuffled with ``--seed``: the first ``--test-groups`` groups are the test
split, the next ``--val-groups`` the validation split, the rest the training pool, and each size trains on the first
groups of the pool that hold that many faces (so the subsets are nested). Every size has the same validation and test
faces. Each size trains and evaluates through the stages notebooks 02 and 03 call (``training.stage.train_run``,
``evaluation.stage.evaluate_run``; failures mined on val, so the training faces are not scored again) and adds a row
to ``curve.json``: test AUC with its bootstrap interval, ECE, TPR at 5% FPR, epochs, seconds. A size already in
``curve.json`` is skipped (re-run to continue after an interruption); a row that ``--finish`` wrote for a stopped
training is replaced by a plain re-run, which resumes that training from its ``last.pth``. ``--plot`` draws
``curve.png`` from it, and ``--plot --with OTHER_OUT`` draws another split seed's curve beside it.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from deepfake_lib.core.recipe import PRESETS
from deepfake_lib.core.runs import write_csv
from deepfake_lib.prepare.split_writer import MANIFEST_COLUMNS, MANIFEST_FILE


def pooled_groups(sets: list[Path]) -> dict[str, list[tuple[Path, str, str]]]:
    """group -> its faces ``(source file, label, name in the pooled folder)``; names carry the set's folder name."""
    groups: dict[str, list[tuple[Path, str, str]]] = {}
    for root in sets:
        with (root / "manifest.csv").open(newline="") as f:
            for row in csv.DictReader(f):
                key = f"{root.name}:{row['group']}"
                name = f"{root.name}__{Path(row['path']).name}"
                groups.setdefault(key, []).append((root / row["path"], row["label"], name))
    return groups


def plan(groups: dict[str, list], seed: int, test_groups: int, val_groups: int) -> dict[str, list[str]]:
    """The shuffled groups cut into ``test``, ``val`` and the training ``pool`` (in its order)."""
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    return {"test": order[:test_groups], "val": order[test_groups : test_groups + val_groups],
            "pool": order[test_groups + val_groups :]}  # fmt: skip


def train_groups(pool: list[str], groups: dict[str, list], faces: int) -> list[str]:
    """The first groups of the pool holding at least ``faces`` faces."""
    chosen, n = [], 0
    for g in pool:
        if n >= faces:
            break
        chosen.append(g)
        n += len(groups[g])
    if n < faces:
        raise SystemExit(f"the training pool holds {n} faces, fewer than {faces}")
    return chosen


def write_split_folder(out: Path, splits: dict[str, list[str]], groups: dict[str, list]) -> Path:
    """``out/<split>/<label>/<name>`` symlinks and the ``split_manifest.csv`` training reads its groups from."""
    rows = []
    for split, keys in splits.items():
        for g in keys:
            for src, label, name in groups[g]:
                link = out / split / label / name
                if not link.exists():
                    link.parent.mkdir(parents=True, exist_ok=True)
                    link.symlink_to(src.resolve())
                rows.append({"path": f"{label}/{name}", "label": label, "group": g, "split": split})
    write_csv(out / MANIFEST_FILE, MANIFEST_COLUMNS, rows)
    return out


def measure(data: Path, run: Path, seed: int, image_size: int, finish: bool = False) -> dict[str, Any]:
    """Train the default recipe on ``data`` into ``run``, evaluate it and return the row. ``finish``: do not train;
    evaluate the best checkpoint of a training that was stopped (the row records the epochs it ran)."""
    from deepfake_lib.evaluation.metrics import bootstrap_auc_interval
    from deepfake_lib.evaluation.stage import evaluate_run
    from deepfake_lib.training.loop import read_fit_result
    from deepfake_lib.training.stage import train_run

    recipe = PRESETS["defaults"].with_values({"train.seed": seed, "model.image_size": image_size})
    t0 = time.perf_counter()
    result = read_fit_result(run) if finish else train_run(recipe, data, run, progress=False, provenance=True).result
    resumed = finish or result.resumed_from_epoch > 0  # the wall clock saw only part of the training: add its epochs
    train_s = sum(h["epoch_seconds"] for h in result.history) if resumed else time.perf_counter() - t0
    ev = evaluate_run(run, data, recipe.evaluate, failure_split="val", progress=False)
    test = ev.final
    interval = bootstrap_auc_interval(test.labels, test.probs, seed=seed)
    hist = result.history
    r = ev.report
    with (data / MANIFEST_FILE).open(newline="") as f:
        train_faces = sum(row["split"] == "train" for row in csv.DictReader(f))
    return {
        "train_faces": train_faces, "image_size": image_size, "test_faces": int(r["n"]),
        "stopped_for_time": finish,
        "test_auc": r["auc"], "auc_low": interval["low"], "auc_high": interval["high"], "ece": r["ece"],
        "tpr_at_5pct_fpr": r["tpr_at_5pct_fpr"], "balanced_accuracy": r["balanced_accuracy"],
        "best_val_auc": max(h.get("val_auc", float("nan")) for h in hist), "epochs_run": len(hist),
        "best_epoch": result.best_epoch, "seconds_per_epoch": sum(h["epoch_seconds"] for h in hist) / len(hist),
        "train_seconds": train_s, "temperature": ev.scores.temperature,
    }  # fmt: skip


def same_row(row: dict[str, Any], size: int, image_size: int) -> bool:
    return row["train_faces_asked"] == size and row["image_size"] == image_size


def done(row: dict[str, Any], size: int, image_size: int, finish: bool) -> bool:
    """Whether ``row`` already answers this size: a row of a stopped training counts only for ``--finish``."""
    return same_row(row, size, image_size) and (finish or not row.get("stopped_for_time", False))


def plot(rows: list[dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for seed, size in sorted({(r["seed"], r["image_size"]) for r in rows}):
        pts = sorted((r["train_faces"], r["test_auc"], r["auc_low"], r["auc_high"]) for r in rows
                     if (r["seed"], r["image_size"]) == (seed, size))  # fmt: skip
        x = [p[0] for p in pts]
        ax.errorbar(x, [p[1] for p in pts], yerr=[[p[1] - p[2] for p in pts], [p[3] - p[1] for p in pts]],
                    marker="o", capsize=4, label=f"split seed {seed}, {size} px")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("training faces (log scale)")
    ax.set_ylabel("test AUC (95% bootstrap interval)")
    ax.set_title("DFDC faces: the default recipe, a fixed test split per seed")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, action="append", required=True, help="a face set with manifest.csv")
    p.add_argument("--sizes", type=int, nargs="+", default=[2800, 7000, 18000], help="training faces per row")
    p.add_argument("--image-size", type=int, default=PRESETS["defaults"].model.image_size)
    p.add_argument("--seed", type=int, default=0, help="the split's seed (and the training seed)")
    p.add_argument("--test-groups", type=int, default=1930, help="groups in the test split (about 15%%)")
    p.add_argument("--val-groups", type=int, default=750)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--plot", action="store_true", help="only draw curve.png from curve.json")
    p.add_argument("--with", dest="others", type=Path, action="append", default=[],
                   help="with --plot: another curve's --out folder (another split seed) drawn beside this one")  # fmt: skip
    p.add_argument("--finish", action="store_true", help="evaluate stopped trainings of --sizes as they are")
    args = p.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    results = out / "curve.json"
    rows: list[dict[str, Any]] = json.loads(results.read_text()) if results.is_file() else []
    if args.plot:
        others = [r for folder in args.others for r in json.loads((folder / "curve.json").read_text())]
        print(plot(rows + others, out / "curve.png"))
        return 0
    groups = pooled_groups(args.data)
    cut = plan(groups, args.seed, args.test_groups, args.val_groups)
    for size in args.sizes:
        if any(done(r, size, args.image_size, args.finish) for r in rows):
            continue
        folder = f"n{size}-{args.image_size}px"
        splits = {"train": train_groups(cut["pool"], groups, size), "val": cut["val"], "test": cut["test"]}
        data = write_split_folder(out / folder / "data", splits, groups)
        row = {"train_faces_asked": size, "seed": args.seed, **measure(data, out / folder / "run", args.seed,
                                                                         args.image_size, args.finish)}  # fmt: skip
        rows = [r for r in rows if not same_row(r, size, args.image_size)] + [row]
        results.write_text(json.dumps(rows, indent=2, default=float))
        print(json.dumps(row, default=float), flush=True)
    plot(rows, out / "curve.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
