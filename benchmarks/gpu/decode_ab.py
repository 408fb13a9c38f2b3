"""The two JPEG decodings trained side by side: the same recipe and seed with ``decode="pil"`` and ``"device"``.

    python benchmarks/gpu/decode_ab.py --data .gpu/faces --epochs 3 --device cuda --out $OUT/decode_ab.json

``--data``: a flat ``{real,fake}`` face set with ``manifest.csv`` (``path,label,group``), split 70/15/15 by its
groups. Each decoding trains the default recipe (``--epochs``, 128 px) into its own run and is evaluated as notebook
03 does; the JSON holds each one's test AUC, val AUC, seconds per epoch and training images/s, so ``DECODE "auto"``
can switch to the device path on CUDA only where both train to the same AUC within noise and the device is faster.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)

    from deepfake_lib.core.recipe import PRESETS
    from deepfake_lib.evaluation.metrics import bootstrap_auc_interval
    from deepfake_lib.evaluation.stage import evaluate_run
    from deepfake_lib.prepare import make_splits
    from deepfake_lib.training.stage import train_run

    work = args.out.parent / "decode_ab"
    manifest = args.data / "manifest.csv"
    splits = make_splits(args.data, work / "splits", seed=args.seed, group_csv=str(manifest), group_column="group",
                         progress=False)  # fmt: skip
    recipe = PRESETS["defaults"].with_values(
        {"train.epochs": args.epochs, "train.seed": args.seed, "model.image_size": args.image_size}
    )
    rows = {}
    for decode in ("pil", "device"):
        t0 = time.perf_counter()
        trained = train_run(recipe, splits.out_dir, work / decode, device=args.device, decode=decode, progress=False)
        seconds = time.perf_counter() - t0
        ev = evaluate_run(work / decode, splits.out_dir, recipe.evaluate, device=args.device, decode=decode,
                          failure_split="val", progress=False)  # fmt: skip
        hist = trained.result.history
        interval = bootstrap_auc_interval(ev.final.labels, ev.final.probs, seed=args.seed)
        rows[decode] = {
            "test_auc": ev.report["auc"], "auc_low": interval["low"], "auc_high": interval["high"],
            "best_val_auc": max(h["val_auc"] for h in hist), "epochs": len(hist),
            "seconds_per_epoch": sum(h["epoch_seconds"] for h in hist) / len(hist),
            "train_images_per_s": sum(h.get("train_images_per_s", 0.0) for h in hist) / len(hist),
            "train_seconds": seconds, "device": str(next(ev.model.parameters()).device),
        }  # fmt: skip
        print(decode, json.dumps(rows[decode], default=float), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"split_counts": splits.counts, "rows": rows}, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
