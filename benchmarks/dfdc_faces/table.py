"""The quality table from ``recipe.py``'s ``row.json`` files: one markdown row per run (and TTA mode).

python benchmarks/dfdc_faces/table.py outputs/bench/dfdc/*/row.json [--tta]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    show_tta = "--tta" in argv
    paths = [Path(a) for a in argv if not a.startswith("--")]
    head = (
        "| run | TTA | test AUC | balanced accuracy | EER | ECE raw -> calibrated | Brier raw -> calibrated "
        "| TPR@5% FPR | T | epochs (best) | s / epoch |"
    )
    print(head)
    print("|---|---|" + "---:|" * 9)
    for path in paths:
        row = json.loads(path.read_text())
        modes = row["tta"] if show_tta else {"hflip": row["tta"]["hflip"]}
        for mode, r in modes.items():
            print(
                f"| {path.parent.name} | {mode} (x{r['relative_cost']:.1f}) | {r['test_auc']:.3f} | "
                f"{r['balanced_accuracy']:.3f} | {r['eer']:.3f} | {r['ece_raw']:.3f} -> {r['ece']:.3f} | "
                f"{r['brier_raw']:.3f} -> {r['brier']:.3f} | {r['tpr_at_5pct_fpr']:.3f} | {r['temperature']:.2f} | "
                f"{row['epochs_run']} ({row['best_epoch']}) | {row['seconds_per_epoch']:.0f} |"
            )
        for name, e in row.get("extra_test", {}).items():
            if "auc" in e:
                print(
                    f"| {path.parent.name} scored on {name} ({e['n']}) | hflip | {e['auc']:.3f} | | {e['eer']:.3f} "
                    f"| {e['ece']:.3f} | | {e['tpr_at_5pct_fpr']:.3f} | | | |"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
