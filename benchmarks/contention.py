"""Training beside a busy process: images/s alone and beside one competing process, per thread policy, in one run.

    python benchmarks/contention.py [--seconds 20] [--image-size 128] [--out outputs/bench/contention.json]

Each policy runs in a fresh Python process (``OMP_WAIT_POLICY`` is read when PyTorch starts), timing whole-backbone
training steps of the detector (batch 16: forward, backward, an AdamW step) for ``--seconds`` after a warm-up:
alone, then beside a competitor that keeps one core busy (a Python loop, started first). Policies:

- ``spin``: PyTorch's default, one thread per core, libgomp's active wait (what ``fit`` did before);
- ``passive``: one thread per core, ``OMP_WAIT_POLICY=PASSIVE`` (waiting threads sleep);
- ``shared``: ``core.threads.share_cpu`` (threads = the cores other processes leave free), the default wait: what
  ``fit`` does at every epoch on the CPU;
- ``shared+passive``: both.

Prints a table and writes the rows (images/s alone, beside, and their ratio) as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

PASSIVE = {"OMP_WAIT_POLICY": "PASSIVE"}
# name -> (environment added, threads sized by core.threads.share_cpu)
POLICIES = {"spin": ({}, False), "passive": (PASSIVE, False), "shared": ({}, True), "shared+passive": (PASSIVE, True)}


def worker(seconds: float, image_size: int, share: bool) -> dict[str, float]:
    """Training steps for ``seconds`` after two warm-up steps: images/s and the threads used."""
    import torch

    from deepfake_lib.core.threads import share_cpu
    from deepfake_lib.models.detector import EfficientNetLSTM, ModelConfig

    if share:
        share_cpu()
    torch.manual_seed(0)
    model = EfficientNetLSTM(ModelConfig(pretrained=False, image_size=image_size, trainable_blocks=-1)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x, y = torch.randn(16, 1, 3, image_size, image_size), torch.randint(0, 2, (16,)).float()
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    for _ in range(2):
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    return {"images_per_s": n * 16 / (time.perf_counter() - t0), "threads": torch.get_num_threads()}


def measure(policy: str, seconds: float, image_size: int, beside: bool) -> dict[str, float]:
    """One worker process under ``policy``, alone or beside a one-core competitor."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    env |= POLICIES[policy][0]
    competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if beside else None
    try:
        if competitor:
            time.sleep(1.0)  # the competitor holds its core before the worker starts
        cmd = [sys.executable, __file__, "--worker", "--seconds", str(seconds), "--image-size", str(image_size)]
        out = subprocess.run(cmd + (["--share"] if POLICIES[policy][1] else []), env=env, capture_output=True,
                             text=True, check=True)  # fmt: skip
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        if competitor:
            competitor.kill()
            competitor.wait()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--out", type=Path, default=Path("outputs/bench/contention.json"))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--share", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.seconds, args.image_size, args.share)))
        return 0
    rows = []
    for policy in POLICIES:
        alone = measure(policy, args.seconds, args.image_size, beside=False)
        beside = measure(policy, args.seconds, args.image_size, beside=True)
        rows.append({"policy": policy, "alone": alone["images_per_s"], "beside": beside["images_per_s"],
                     "ratio": beside["images_per_s"] / alone["images_per_s"], "threads_alone": alone["threads"],
                     "threads_beside": beside["threads"]})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["alone"]
    print(
        "| policy | threads alone / beside | images/s alone | beside one busy process | beside / alone | alone vs spin |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['policy']} | {r['threads_alone']} / {r['threads_beside']} | {r['alone']:.1f} | {r['beside']:.1f} "
            f"| {r['ratio']:.2f} | {r['alone'] / base:.2f} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cpu_count": os.cpu_count(), "seconds": args.seconds, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
