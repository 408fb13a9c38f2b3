"""Leakage-free splits of a flat {real,fake} folder: assignment, grouping, output folder, safety, command line."""

from __future__ import annotations

import csv
import itertools
import json
import os
import random
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from PIL import Image

from deepfake_lib import data
from deepfake_lib.cli.splits import main
from deepfake_lib.prepare import splits
from deepfake_lib.prepare.assignment import SPLIT_NAMES, assign_splits
from deepfake_lib.prepare.grouping import group_from_regex, groups_from_csv
from deepfake_lib.prepare.leakage import LeakageError, check_no_leakage
from deepfake_lib.prepare.splits import SplitError, is_flat_layout, make_splits

ROOT = Path(__file__).resolve().parents[1]
FAST = {"progress": False}


def random_items(seed: int, n_groups: int, max_size: int, fake_share: float) -> list[tuple[str, int, str]]:
    """Groups of 1..max_size items; each group is all real, all fake or (one in four) mixed."""
    rng = random.Random(seed)
    items = []
    for g in range(n_groups):
        kind = rng.random()
        for i in range(rng.randint(1, max_size)):
            label = int(rng.random() < fake_share) if kind < 0.25 else int(kind < 0.25 + 0.75 * fake_share)
            items.append((f"g{g}/{i}.jpg", label, f"g{g}"))
    return items


def placeholders(root: Path, names: dict[str, list[str]]) -> Path:
    """Empty placeholder image files: ``{"real": ["a.jpg", "sub/b.jpg"], "fake": [...]}`` under ``root``."""
    for folder, files in names.items():
        for name in files:
            (root / folder / name).parent.mkdir(parents=True, exist_ok=True)
            (root / folder / name).write_bytes(b"")
    return root


def pngs(root: Path, real: int, fake: int) -> Path:
    """Decodable 8x8 PNGs ``real/r_<i>.png`` and ``fake/f_<i>.png``."""
    for folder, n in (("real", real), ("fake", fake)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.new("RGB", (8, 8), (i * 7 % 255, 80, 160)).save(root / folder / f"{folder[0]}_{i}.png")
    return root


def flat(root: Path, real: int = 40, fake: int = 20) -> Path:
    return placeholders(
        root, {"real": [f"r{i:03d}.jpg" for i in range(real)], "fake": [f"f{i:03d}.jpg" for i in range(fake)]}
    )


def listing(root: Path) -> dict[str, tuple[int, int, bool]]:
    """Every entry under ``root``: (size, mtime_ns, is_symlink), not following links."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out[p.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns, p.is_symlink())
    return out


def manifest_rows(result: splits.SplitResult) -> list[dict[str, str]]:
    with result.manifest.open(newline="") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------- assign_splits
def test_stratified_proportions_close_to_fractions() -> None:
    items = random_items(seed=1, n_groups=150, max_size=5, fake_share=0.3)
    assignment = assign_splits(items, (0.7, 0.15, 0.15), seed=0)
    totals = Counter(label for _, label, _ in items)
    got = Counter((assignment[key], label) for key, label, _ in items)
    for split, fraction in zip(SPLIT_NAMES, (0.7, 0.15, 0.15), strict=True):
        for label in (0, 1):
            assert abs(got[split, label] - fraction * totals[label]) <= 5, (split, label, got)


def test_singleton_groups_hit_the_fractions_within_one_item() -> None:
    items = [(f"{i}", int(i % 4 == 0), f"{i}") for i in range(400)]
    got = Counter((split, int(key) % 4 == 0) for key, split in assign_splits(items, (0.6, 0.2, 0.2)).items())
    assert abs(got["train", False] - 180) <= 1 and abs(got["val", True] - 20) <= 1 and abs(got["test", True] - 20) <= 1


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("max_size", [1, 4, 12])
@pytest.mark.parametrize("fake_share", [0.1, 0.5, 0.8])
def test_groups_never_on_two_sides_and_every_split_has_both_classes(
    seed: int, max_size: int, fake_share: float
) -> None:
    items = random_items(seed, n_groups=60, max_size=max_size, fake_share=fake_share)
    assignment = assign_splits(items, seed=seed)
    splits_of = defaultdict(set)
    for key, _, group in items:
        splits_of[group].add(assignment[key])
    assert all(len(s) == 1 for s in splits_of.values())
    assert {(assignment[k], label) for k, label, _ in items} == {(s, c) for s in SPLIT_NAMES for c in (0, 1)}
    check_no_leakage([{"path": k, "group": g, "split": assignment[k]} for k, _, g in items])


def test_same_seed_same_assignment_other_seed_differs_and_item_order_is_irrelevant() -> None:
    items = random_items(seed=3, n_groups=80, max_size=4, fake_share=0.4)
    first = assign_splits(items, seed=7)
    assert assign_splits(list(reversed(items)), seed=7) == first
    assert assign_splits(items, seed=8) != first


def test_two_fractions_or_a_zero_fraction_leave_that_split_out() -> None:
    items = random_items(seed=0, n_groups=30, max_size=3, fake_share=0.5)
    assert set(assign_splits(items, (0.8, 0.2)).values()) == {"train", "val"}
    assert set(assign_splits(items, (0.8, 0.2, 0.0)).values()) == {"train", "val"}
    assert set(assign_splits(items, (0.8, 0.0, 0.2)).values()) == {"train", "test"}


@pytest.mark.parametrize(
    ("fractions", "match"),
    [
        ((0.5, 0.5, 0.5), "sum to 1"),
        ((1.0,), "2 .* or 3"),
        ((0.4, 0.2, 0.2, 0.2), "2 .* or 3"),
        ((1.1, -0.1), ">= 0"),
        ((float("nan"), 0.5, 0.5), "finite"),
        ((0.0, 0.5, 0.5), "train fraction"),
        ((1.0, 0.0, 0.0), "two splits"),
        (("a", "b"), "numbers"),
    ],
)
def test_bad_fractions_are_clear_errors(fractions: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        assign_splits([("a", 0, "a"), ("b", 1, "b")], fractions)


def test_too_few_groups_for_a_class_is_a_clear_error() -> None:
    items = [(f"r{i}", 0, f"r{i}") for i in range(20)] + [("f0", 1, "F"), ("f1", 1, "F"), ("f2", 1, "G")]
    with pytest.raises(SplitError, match=r"too few groups: class 'fake' is in only 2 group\(s\).*3 splits"):
        assign_splits(items)
    assert set(assign_splits(items, (0.8, 0.2)).values()) == {"train", "val"}  # two splits are possible


def test_refuses_only_when_no_split_can_have_both_classes() -> None:
    rng = random.Random(0)
    for trial in range(300):
        sizes = [rng.choice([(1, 0), (0, 2), (2, 1), (3, 0), (0, 1)]) for _ in range(rng.randint(3, 6))]
        items = [(f"{g}/{c}/{i}", c, f"g{g}") for g, v in enumerate(sizes) for c in (0, 1) for i in range(v[c])]
        if {c for v in sizes for c in (0, 1) if v[c]} != {0, 1}:
            continue  # a class with no items at all is a different error
        fractions = (0.7, 0.3) if trial % 2 else (0.6, 0.2, 0.2)
        n = len(fractions)
        possible = any(
            all(any(sizes[g][c] for g in range(len(sizes)) if where[g] == s) for s in range(n) for c in (0, 1))
            for where in itertools.product(range(n), repeat=len(sizes))
        )
        try:
            assignment = assign_splits(items, fractions, seed=trial)
        except SplitError as exc:
            assert not possible, (sizes, fractions, exc)
            continue
        assert {(assignment[k], c) for k, c, _ in items} == {(s, c) for s in SPLIT_NAMES[:n] for c in (0, 1)}


def test_bad_items_are_clear_errors() -> None:
    with pytest.raises(SplitError, match="no 'fake' items"):
        assign_splits([(f"{i}", 0, f"{i}") for i in range(9)])
    with pytest.raises(SplitError, match="label must be 0"):
        assign_splits([("a", 2, "a")])
    with pytest.raises(SplitError, match="listed twice"):
        assign_splits([("a", 0, "a"), ("a", 1, "b")])


def test_check_no_leakage_names_the_offending_groups(tmp_path: Path) -> None:
    rows = [
        {"path": "real/a.jpg", "group": "id7", "split": "train"},
        {"path": "fake/b.jpg", "group": "id7", "split": "test"},
        {"path": "fake/c.jpg", "group": "id8", "split": "val"},
    ]
    with pytest.raises(LeakageError, match=r"group 'id7' \(test, train\)") as exc:
        check_no_leakage(rows)
    assert exc.value.groups == {"id7": ["test", "train"]}
    check_no_leakage(rows[1:])
    with pytest.raises(SplitError, match="'group' and 'split'"):
        check_no_leakage([{"path": "x"}])


# --------------------------------------------------------------------------- grouping
def test_group_from_regex_first_capture_group_whole_match_and_unmatched() -> None:
    by_id = group_from_regex(r"^(?:easy|mid|hard)_(\d+)_")
    assert by_id(Path("fake/easy_100_1110.jpg")) == by_id(Path("real/mid_100_0001.jpg")) == "100"
    assert by_id(Path("fake/hard_7_1.jpg")) == "7"
    assert by_id(Path("real/photo.jpg")) == "real/photo.jpg"
    by_id(Path("real/photo.jpg"))
    assert by_id.unmatched == 1
    assert group_from_regex(r"id\d+")(Path("x/id42_frame3.png")) == "id42"
    with pytest.raises(SplitError, match="bad group regex"):
        group_from_regex("(unclosed")


def test_groups_from_csv_paths_names_and_errors(tmp_path: Path) -> None:
    src = tmp_path / "src"
    table = tmp_path / "groups.csv"
    table.write_text(
        "file,video,extra\n"
        "fake/a.jpg,v1,x\n"
        f"{src / 'real' / 'b.jpg'},v2,x\n"
        "c.jpg,v3,x\n"
        ".\\real\\d.jpg,v4,x\n"
        "e.jpg,,x\n",
        encoding="utf-8",
    )
    mapping = groups_from_csv(table, "file", "video", src)
    assert mapping == {"fake/a.jpg": "v1", "real/b.jpg": "v2", "c.jpg": "v3", "real/d.jpg": "v4"}
    with pytest.raises(SplitError, match=r"no column 'group' \(columns: 'file', 'video', 'extra'\)"):
        groups_from_csv(table, "file", "group", src)
    with pytest.raises(SplitError, match="not found"):
        groups_from_csv(tmp_path / "missing.csv", "file", "video", src)
    table.write_text("file,video\na.jpg,v1\na.jpg,v2\n", encoding="utf-8")
    with pytest.raises(SplitError, match="line 3: 'a.jpg' is in group 'v2' here but 'v1' earlier"):
        groups_from_csv(table, "file", "video", src)


# --------------------------------------------------------------------------- make_splits
def regex_dataset(root: Path) -> Path:
    """20 identities: each a real photo and 2-3 fakes named after it, plus 4 names the regex misses."""
    real, fake = [], []
    for ident in range(100, 120):
        real.append(f"mid_{ident}_0001.jpg")
        fake += [f"easy_{ident}_1110.jpg", f"hard_{ident}_0101.jpg"] + ([f"hard_{ident}_0111.jpg"] if ident % 2 else [])
    return placeholders(root, {"real": [*real, "sub/loose_1.jpg", "loose_2.jpg"], "Fake": [*fake, "odd.jpg", "x.png"]})


def test_regex_grouping_keeps_each_identity_in_one_split_and_counts_unmatched(tmp_path: Path) -> None:
    src = regex_dataset(tmp_path / "src")
    result = make_splits(src, tmp_path / "out", group_regex=r"^(?:easy|mid|hard)_(\d+)_", seed=1, **FAST)
    rows = manifest_rows(result)
    assert result.unmatched == 4 and len(rows) == 20 + 50 + 4
    by_id = defaultdict(set)
    for r in rows:
        by_id[r["group"]].add(r["split"])
    assert all(len(s) == 1 for s in by_id.values()) and len(by_id) == 24
    assert {r["group"] for r in rows if "_" not in r["path"] or "loose" in r["path"]} == {
        "real/sub/loose_1.jpg",
        "real/loose_2.jpg",
        "Fake/odd.jpg",
        "Fake/x.png",
    }
    for split in SPLIT_NAMES:  # files land under their group's split with the canonical class name
        for r in (r for r in rows if r["split"] == split):
            assert (result.out_dir / split / r["label"] / r["path"].split("/", 1)[1]).is_symlink()
    info = json.loads(result.info.read_text())
    assert info["leakage_check"]["passed"] and info["leakage_check"]["groups_in_several_splits"] == 0
    assert info["settings"]["grouping"] == {"method": "regex", "pattern": r"^(?:easy|mid|hard)_(\d+)_"}
    assert any("4 file(s) got no group" in w for w in info["warnings"])


def test_csv_and_mapping_grouping(tmp_path: Path) -> None:
    src = flat(tmp_path / "src", real=30, fake=30)
    table = tmp_path / "videos.csv"
    with table.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "video"])
        writer.writerows([f"real/r{i:03d}.jpg", f"v{i // 3}"] for i in range(30))
        writer.writerows([f"f{i:03d}.jpg", f"v{i // 3}"] for i in range(30))  # bare names work too
    result = make_splits(src, tmp_path / "out", group_csv=str(table), group_column="video", path_column="file", **FAST)
    rows = manifest_rows(result)
    assert result.unmatched == 0 and {r["group"] for r in rows} == {f"v{i}" for i in range(10)}
    assert sum(result.n_groups.values()) == 10
    check_no_leakage(result.manifest)
    mapping = {f"r{i:03d}.jpg": f"p{i % 7}" for i in range(30)}
    other = make_splits(src, tmp_path / "out2", groups=mapping, fractions=(0.5, 0.5), **FAST)
    assert other.unmatched == 30 and set(other.counts) == {"train", "val"} and not (tmp_path / "out2/test").exists()
    with pytest.raises(SplitError, match="one way of grouping"):
        make_splits(src, tmp_path / "out3", groups=mapping, group_regex="x", **FAST)
    with pytest.raises(SplitError, match="needs group_column"):
        make_splits(src, tmp_path / "out3", group_csv=str(table), **FAST)
    with pytest.raises(SplitError, match="gave no group to any"):
        make_splits(src, tmp_path / "out3", group_regex=r"^nomatch_(\d+)", **FAST)
    assert not (tmp_path / "out3").exists()


def test_link_mode_writes_absolute_symlinks_and_leaves_sources_untouched(tmp_path: Path) -> None:
    src = placeholders(
        tmp_path / "src", {"REAL": [f"a/{i}.jpg" for i in range(12)], "fake": [f"{i}.png" for i in range(8)]}
    )
    (src / "fake" / "notes.txt").write_text("not an image")
    before = listing(src)
    result = make_splits(src, tmp_path / "out", seed=3, **FAST)
    assert listing(src) == before
    rows = manifest_rows(result)
    assert list(rows[0]) == ["path", "label", "group", "split"] and len(rows) == 20
    for r in rows:
        dest = result.out_dir / r["split"] / r["label"] / r["path"].split("/", 1)[1]
        target = Path(os.readlink(dest))
        assert dest.is_symlink() and target.is_absolute() and target == (src / r["path"]).resolve()
    assert result.counts == {s: {"real": n, "fake": m} for s, n, m in [("train", 8, 6), ("val", 2, 1), ("test", 2, 1)]}
    assert result.summary()["total"] == 20 and result.copied_instead_of_linked == 0


def test_copy_mode_copies_and_leaves_sources_untouched(tmp_path: Path) -> None:
    src = pngs(tmp_path / "src", real=10, fake=10)
    before = listing(src)
    result = make_splits(src, tmp_path / "out", mode="copy", **FAST)
    assert listing(src) == before
    for r in manifest_rows(result):
        dest = result.out_dir / r["split"] / r["label"] / r["path"].split("/", 1)[1]
        assert not dest.is_symlink() and dest.read_bytes() == (src / r["path"]).read_bytes()


def test_symlinks_not_permitted_fall_back_to_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(splits.os, "symlink", refuse)
    result = make_splits(flat(tmp_path / "src", 10, 10), tmp_path / "out", **FAST)
    assert result.copied_instead_of_linked == 20
    assert not any(p.is_symlink() for p in result.out_dir.rglob("*"))


def test_result_passes_the_data_scan(tmp_path: Path) -> None:
    src = pngs(tmp_path / "src", real=24, fake=12)
    result = make_splits(src, tmp_path / "out", **FAST)
    scans = data.scan_dataset(result.out_dir, ["train", "val", "test"])
    assert {s: scan.counts for s, scan in scans.items()} == result.counts
    assert all(not scan.skipped for scan in scans.values())
    assert not is_flat_layout(result.out_dir)


def test_rerun_with_same_settings_is_idempotent_and_restores_missing_files(tmp_path: Path) -> None:
    src, out = flat(tmp_path / "src"), tmp_path / "out"
    first = make_splits(src, out, seed=5, **FAST)
    state = listing(out)
    again = make_splits(src, out, seed=5, **FAST)
    assert again == first and again.reused and not first.reused
    assert listing(out) == state  # nothing rewritten
    victim = next(p for p in (out / "val" / "fake").iterdir())
    victim.unlink()
    make_splits(src, out, seed=5, **FAST)
    assert victim.is_symlink()
    # a run killed half-way (its info still says "writing") is completed by the next one
    info = json.loads(first.info.read_text())
    first.info.write_text(json.dumps({**info, "status": "writing"}))
    victim.unlink()
    assert make_splits(src, out, seed=5, **FAST) == first
    assert victim.is_symlink() and json.loads(first.info.read_text())["status"] == "complete"


def test_other_settings_changed_source_or_foreign_out_dir_raise_and_delete_nothing(tmp_path: Path) -> None:
    src, out = flat(tmp_path / "src"), tmp_path / "out"
    make_splits(src, out, seed=5, **FAST)
    state = listing(out)
    with pytest.raises(SplitError, match=r"other settings \(seed: 5 -> 6\)"):
        make_splits(src, out, seed=6, **FAST)
    with pytest.raises(SplitError, match="fractions"):
        make_splits(src, out, seed=5, fractions=(0.8, 0.1, 0.1), **FAST)
    with pytest.raises(SplitError, match="mode"):
        make_splits(src, out, seed=5, mode="copy", **FAST)
    (src / "fake" / "new.jpg").write_bytes(b"")
    with pytest.raises(SplitError, match=r"source changed.*1 file\(s\) added"):
        make_splits(src, out, seed=5, **FAST)
    assert listing(out) == state
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("precious")
    with pytest.raises(SplitError, match="not made by make_splits"):
        make_splits(src, foreign, **FAST)
    assert [p.name for p in foreign.iterdir()] == ["keep.txt"]


def test_out_dir_inside_or_equal_to_src_is_refused(tmp_path: Path) -> None:
    src = flat(tmp_path / "src")
    for out in (src, src / "splits", src / "real" / "x"):
        with pytest.raises(SplitError, match="inside the source folder"):
            make_splits(src, out, **FAST)
    assert sorted(p.name for p in src.iterdir()) == ["fake", "real"]


def test_non_flat_sources_are_refused_with_what_was_found(tmp_path: Path) -> None:
    split_already = placeholders(tmp_path / "split", {"train/real": ["a.jpg"], "train/fake": ["b.jpg"]})
    with pytest.raises(SplitError, match="train hold class folders, so it looks split already"):
        make_splits(split_already, tmp_path / "o1", **FAST)
    mixed = placeholders(tmp_path / "mixed", {"real": ["a.jpg"], "fake": ["b.jpg"], "val/real": ["c.jpg"]})
    with pytest.raises(SplitError, match="not flat: val"):
        make_splits(mixed, tmp_path / "o2", **FAST)
    one_class = placeholders(tmp_path / "one", {"real": ["a.jpg"], "other": ["b.jpg"]})
    with pytest.raises(SplitError, match=r"no fake folder \(found: other, real\)"):
        make_splits(one_class, tmp_path / "o3", **FAST)
    empty_class = placeholders(tmp_path / "empty", {"real": ["a.jpg"]})
    (empty_class / "fake").mkdir()
    with pytest.raises(SplitError, match="no image, clip or video files"):
        make_splits(empty_class, tmp_path / "o4", **FAST)
    with pytest.raises(SplitError, match="not found"):
        make_splits(tmp_path / "nowhere", tmp_path / "o5", **FAST)
    assert is_flat_layout(flat(tmp_path / "flat")) and is_flat_layout(
        placeholders(tmp_path / "c", {"Real": ["a.jpg"], "FAKE": ["b.jpg"]})
    )
    assert not any(map(is_flat_layout, (split_already, mixed, one_class, tmp_path / "nowhere")))
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 6))


def test_bad_arguments_raise_before_anything_is_written(tmp_path: Path) -> None:
    src = flat(tmp_path / "src", 3, 3)
    with pytest.raises(SplitError, match="mode must be"):
        make_splits(src, tmp_path / "out", mode="move", **FAST)
    with pytest.raises(SplitError, match="sum to 1"):
        make_splits(src, tmp_path / "out", fractions=(0.5, 0.4), **FAST)
    with pytest.raises(SplitError, match="too few groups"):
        make_splits(flat(tmp_path / "small", 2, 2), tmp_path / "out", **FAST)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- command line
def test_cli_prints_one_json_line(tmp_path: Path) -> None:
    src = regex_dataset(tmp_path / "src")
    cmd = [
        sys.executable,
        "-m",
        "deepfake_lib.cli.splits",
        str(src),
        "--out",
        str(tmp_path / "out"),
        "--no-progress",
    ]
    cmd += ["--fractions", "0.6", "0.2", "0.2", "--seed", "2", "--group-regex", r"_(\d+)_", "--copy"]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    summary = json.loads(result.stdout)
    assert summary["total"] == 74 and summary["unmatched"] == 4 and set(summary["counts"]) == set(SPLIT_NAMES)
    assert not any(p.is_symlink() for p in (tmp_path / "out").rglob("*"))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--fractions", "0.5", "0.6"], "sum to 1"),
        (["--fractions", "x"], "not a number: 'x'"),
        (["--fractions", "nan", "0.5", "0.5"], "not a finite number: 'nan'"),
        (["--group-regex", "a", "--group-csv", "b.csv"], "not allowed with"),
        (["--group-csv", "missing.csv", "--group-column", "v"], "not found"),
        (["--seed", "1.5"], "invalid int"),
    ],
)
def test_cli_bad_input_is_one_error_line_and_exit_2(
    args: list[str], match: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    src = flat(tmp_path / "src")
    try:
        code = main([str(src), "--out", str(tmp_path / "out"), "--no-progress", *args])
    except SystemExit as exc:  # a usage error, from argparse
        code = exc.code
    assert code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert match in lines[0]


def test_cli_missing_out_and_non_flat_source(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path)])
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith("error: the following arguments are required: --out")
    (tmp_path / "src").mkdir()
    assert main([str(tmp_path / "src"), "--out", str(tmp_path / "o")]) == 2
    assert "no real or fake folder" in capsys.readouterr().err
