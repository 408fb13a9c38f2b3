"""A small copy of a DFDC face set for the GPU check: the first ``--groups`` groups of its manifest, re-encoded at
``--size`` px (JPEG, quality 90), with their ``manifest.csv``: small enough to travel with the repository.

    python benchmarks/gpu/make_subset.py --data ../shared/data/dfdc_faces_dev --groups 1500 --out .gpu/faces
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from PIL import Image


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--groups", type=int, default=1500)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    with (args.data / "manifest.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    keep: dict[str, None] = {}
    for r in rows:
        if len(keep) >= args.groups and r["group"] not in keep:
            continue
        keep.setdefault(r["group"], None)
    chosen = [r for r in rows if r["group"] in keep]
    for r in chosen:
        target = args.out / r["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(args.data / r["path"]) as im:
            im.convert("RGB").resize((args.size, args.size), Image.BICUBIC).save(target, quality=90)
    with (args.out / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, ["path", "label", "group"])
        writer.writeheader()
        writer.writerows({k: r[k] for k in ("path", "label", "group")} for r in chosen)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"{len(chosen)} faces in {len(keep)} groups, {size / 2**20:.1f} MiB -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
