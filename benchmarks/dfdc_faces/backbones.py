"""Which shipped backbone ``PRETRAINED "auto"`` should fall back to: speed and linear-probe quality side by side.

    python benchmarks/dfdc_faces/backbones.py --data ../shared/data/dfdc_faces_dev --rows 1200 --out DIR

For each of efficientnet-lite0/1/2 (ImageNet weights from their pip packages): training images per second (a
forward and backward pass over the whole backbone, batch 16) and scoring images per second at ``--image-size``,
measured in one run so the ratios compare; then the linear probe (logistic regression on the frozen pooled
features, ``evaluation.probe.linear_probe``) on a 70/15/15 split of the first ``--rows`` manifest rows, grouped
by the manifest's ``group`` column (as ``recipe.py`` splits): test AUC, EER, TPR at 5% FPR. Writes
``backbones.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from deepfake_lib.core.recipe import DEFAULT_RECIPE

BACKBONES = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")


def images_per_second(model, size: int, train: bool, batch: int = 16, repeats: int = 4) -> float:
    import torch

    x = torch.randn(batch, 1, 3, size, size)
    model.train(train)
    best = float("inf")
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        if train:
            model(x).sum().backward()
            model.zero_grad(set_to_none=True)
        else:
            with torch.inference_mode():
                model(x)
        if i:  # the first pass warms up
            best = min(best, time.perf_counter() - t0)
    return batch / best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, type=Path, help="a flat {real,fake} face set with manifest.csv")
    p.add_argument("--rows", type=int, default=1200, help="the first rows of its manifest")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-size", type=int, default=DEFAULT_RECIPE.model.image_size)
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)

    import torch

    from deepfake_lib.evaluation.probe import linear_probe
    from deepfake_lib.models import EfficientNetLSTM, ModelConfig
    from deepfake_lib.prepare import make_splits

    sys.path.insert(0, str(Path(__file__).parent))
    from recipe import subset

    manifest = args.data / "manifest.csv"
    src = subset(args.data, manifest, args.rows, args.out.resolve() / "source")
    splits = make_splits(
        src, args.out.resolve() / "splits", seed=args.seed, group_csv=str(manifest), group_column="group",
        progress=False,
    ).out_dir  # fmt: skip

    torch.manual_seed(0)
    rows = {}
    for name in BACKBONES:
        model = EfficientNetLSTM(
            ModelConfig(backbone=name, pretrained=True, image_size=args.image_size, trainable_blocks=-1)
        )
        rows[name] = {
            "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6,
            "train_images_per_s": images_per_second(model, args.image_size, train=True),
            "score_images_per_s": images_per_second(model, args.image_size, train=False),
        }
    for name in BACKBONES:
        t0 = time.perf_counter()
        probe = linear_probe(splits, backbone=name, pretrained=True, image_size=args.image_size, progress=False)
        report = probe["report"]
        rows[name].update(
            probe_test_auc=report["auc"], probe_test_eer=report["eer"], probe_tpr_at_5pct_fpr=report["tpr_at_5pct_fpr"],
            probe_seconds=time.perf_counter() - t0,
        )  # fmt: skip
    base = rows[BACKBONES[0]]
    for r in rows.values():
        r["train_speed_vs_lite0"] = r["train_images_per_s"] / base["train_images_per_s"]
        r["score_speed_vs_lite0"] = r["score_images_per_s"] / base["score_images_per_s"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "backbones.json").write_text(json.dumps(rows, indent=2))
    for name, r in rows.items():
        print(
            f"{name}: {r['parameters_m']:.1f} M params, train x{r['train_speed_vs_lite0']:.2f}, score "
            f"x{r['score_speed_vs_lite0']:.2f} of lite0 | probe test AUC {r['probe_test_auc']:.4f} EER "
            f"{r['probe_test_eer']:.4f} TPR@5% {r['probe_tpr_at_5pct_fpr']:.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
