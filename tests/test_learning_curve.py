"""The learning-curve benchmark's data plan: pooled face sets, one fixed test and validation split of groups, nested
training subsets drawn from the rest."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_curve():
    spec = importlib.util.spec_from_file_location(
        "learning_curve", ROOT / "benchmarks" / "dfdc_faces" / "learning_curve.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def face_set(root: Path, n_groups: int, prefix: str) -> Path:
    rows = []
    for i in range(n_groups):
        for label in ("real", "fake"):
            rel = f"{label}/{prefix}{i:03d}{label[0]}.jpg"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(b"x")
            rows.append({"path": rel, "label": label, "group": f"{prefix}{i:03d}"})
    with (root / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, ["path", "label", "group"])
        writer.writeheader()
        writer.writerows(rows)
    return root


def test_every_size_shares_one_test_and_val_split_and_the_training_sets_are_nested(tmp_path: Path) -> None:
    curve = load_curve()
    groups = curve.pooled_groups([face_set(tmp_path / "a", 30, "a"), face_set(tmp_path / "b", 20, "b")])
    assert len(groups) == 50 and all(len(v) == 2 for v in groups.values())
    cut = curve.plan(groups, seed=0, test_groups=8, val_groups=5)
    assert cut == curve.plan(groups, seed=0, test_groups=8, val_groups=5)  # the seed fixes it
    assert not (set(cut["test"]) & set(cut["val"])) and not (set(cut["test"]) | set(cut["val"])) & set(cut["pool"])
    small, large = curve.train_groups(cut["pool"], groups, 10), curve.train_groups(cut["pool"], groups, 40)
    assert len(small) == 5 and large[: len(small)] == small  # nested
    data = curve.write_split_folder(tmp_path / "data", {"train": small, "val": cut["val"], "test": cut["test"]}, groups)
    assert len(list((data / "test").rglob("*.jpg"))) == 16 and len(list((data / "train").rglob("*.jpg"))) == 10
    with (data / "split_manifest.csv").open() as f:
        assert {r["split"] for r in csv.DictReader(f)} == {"train", "val", "test"}


def test_a_row_of_a_stopped_training_is_continued_by_a_plain_rerun_and_replaced() -> None:
    curve = load_curve()
    stopped = {"train_faces_asked": 18000, "image_size": 128, "stopped_for_time": True}
    finished = {"train_faces_asked": 7000, "image_size": 128}
    assert not curve.done(stopped, 18000, 128, finish=False)  # a plain re-run resumes it
    assert curve.done(stopped, 18000, 128, finish=True)  # --finish does not evaluate it twice
    assert curve.done(finished, 7000, 128, finish=False) and curve.done(finished, 7000, 128, finish=True)
    assert not curve.done(finished, 7000, 224, finish=False) and not curve.done(finished, 2800, 128, finish=False)


def test_the_plot_draws_one_line_per_split_seed(tmp_path: Path) -> None:
    curve = load_curve()
    row = {"image_size": 128, "auc_low": 0.7, "auc_high": 0.9, "test_auc": 0.8}
    for seed in (0, 1):
        (tmp_path / f"s{seed}").mkdir()
        rows = [{**row, "seed": seed, "train_faces": n, "train_faces_asked": n} for n in (100, 300)]
        (tmp_path / f"s{seed}" / "curve.json").write_text(json.dumps(rows))
    assert curve.main(["--data", str(tmp_path), "--out", str(tmp_path / "s0"), "--plot",
                       "--with", str(tmp_path / "s1")]) == 0  # fmt: skip
    assert (tmp_path / "s0" / "curve.png").stat().st_size > 0
    import matplotlib.pyplot as plt

    fig = plt.gcf()
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "split seed 0, 128 px", "split seed 1, 128 px"]  # fmt: skip
