"""Which video aggregation rule ranks videos best: every rule of ``evaluation.aggregate`` on fresh demo videos.

    python benchmarks/videos/aggregation.py --run outputs/runs/latest --seeds 1,2 --n 20 --out DIR

For each seed, ``2 * --n`` demo videos that no run has seen (``VideoDemoSpec(counts={"test": {"real": n, "fake":
n}}, seed=seed)``: other camera paths, half of them of the astronaut, the rest of all ten other photos) are cut
as the run's checkpoints were trained (their ``clips`` settings) and scored as 03 scores (the checkpoint's TTA
and temperature); ``evaluate_videos`` gives each level's AUC. Both checkpoints of the run (``best_model.pth``,
``best_model_finetuned.pth`` when there) are measured. Writes ``aggregation.json`` into ``--out`` and prints a
Markdown table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, required=True, help="a run folder with checkpoints/ (a make demo run)")
    p.add_argument("--seeds", default="1,2")
    p.add_argument("--n", type=int, default=20, help="videos per class and seed")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()

    from deepfake_lib.data.clips import ClipSettings
    from deepfake_lib.demo.videos import VideoDemoSpec, build_demo_videos
    from deepfake_lib.evaluation.evaluate import predict_split
    from deepfake_lib.evaluation.video import LEVELS, evaluate_videos
    from deepfake_lib.models.checkpoint import checkpoint_tta, load_model
    from deepfake_lib.prepare.clips import prepare_clips

    names = [n for n in ("best_model.pth", "best_model_finetuned.pth") if (args.run / "checkpoints" / n).is_file()]
    cut = None  # how the run's videos were cut: best_model.pth records it
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in (int(s) for s in args.seeds.split(",")):
            src = Path(tmp) / f"videos_{seed}"
            spec = VideoDemoSpec(counts={"test": {"real": args.n, "fake": args.n}}, seed=seed)
            build_demo_videos(src, spec, progress=False)
            for name in names:
                model, ckpt = load_model(args.run / "checkpoints" / name, "cpu")
                cut = ckpt.get("clips") or cut
                settings = ClipSettings(**{k: v for k, v in cut.items() if k != "format"})
                clips = prepare_clips(src, Path(tmp) / f"clips_{seed}_{settings.frames}", settings, progress=False)
                kw = {"tta": checkpoint_tta(ckpt), "progress": False}
                preds = predict_split(model, clips.out_dir, "test", **kw)
                evaluation = evaluate_videos(model, preds, float(ckpt.get("threshold", 0.5)), **kw)
                reports = evaluation.reports()
                results[f"seed {seed}, {name}"] = {k: reports[k]["auc"] for k in LEVELS}
                print(f"seed {seed}, {name}:", {k: round(v, 3) for k, v in results[f"seed {seed}, {name}"].items()},
                      flush=True)  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "aggregation.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n| set, checkpoint | " + " | ".join(LEVELS) + " |")
    print("|---|" + "---:|" * len(LEVELS))
    for key, row in results.items():
        print(f"| {key} | " + " | ".join(f"{row[k]:.3f}" for k in LEVELS) + " |")


if __name__ == "__main__":
    main()
