"""prepare_data's and make_splits' steps one at a time: the source checks, grouped rows, the info, the files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepfake_lib.core.runs import read_json
from deepfake_lib.prepare import dataset, grouping, leakage, split_writer, splits
from deepfake_lib.prepare.dataset import PrepareError


def _flat(root: Path, n: int = 12) -> Path:
    rng = np.random.default_rng(0)
    for label in ("real", "fake"):
        (root / label).mkdir(parents=True)
        for i in range(n):
            arr = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / label / f"id{i % 4}_{i}.png")
    return root


def test_checked_source_says_what_to_change(tmp_path: Path) -> None:
    with pytest.raises(PrepareError, match="not found"):
        dataset._checked_source(tmp_path / "none", "auto")
    flat = _flat(tmp_path / "flat")
    assert dataset._checked_source(flat, "auto") == (flat.resolve(), True)
    with pytest.raises(PrepareError, match="no train/val/test splits"):
        dataset._checked_source(flat, False)
    with pytest.raises(PrepareError, match="MAKE_SPLITS must be True, False or 'auto'"):
        dataset._checked_source(flat, "yes")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PrepareError, match="nothing to prepare"):
        dataset._checked_source(tmp_path / "empty", "auto")


def test_split_step_groups_by_origin_and_moves_on(tmp_path: Path) -> None:
    flat = _flat(tmp_path / "flat")
    prep = dataset._Preparation(flat, tmp_path / "prep", dataset.PreparedData(flat, flat), current=flat)
    prep.origins = {f"{c}/id{i % 4}_{i}.png": f"video{i % 3}" for c in ("real", "fake") for i in range(12)}
    dataset._split(prep, (0.5, 0.5), 0, None, None, None, progress=False)
    assert prep.result.steps == ["splits"] and prep.current.parent == tmp_path / "prep"
    rows = split_writer._read_manifest(prep.current / split_writer.MANIFEST_FILE)
    assert {r["group"] for r in rows} == {"video0", "video1", "video2"}  # one group per origin
    leakage.check_no_leakage(rows)


def test_checked_folders_refuse_an_output_inside_the_source(tmp_path: Path) -> None:
    flat = _flat(tmp_path / "flat")
    with pytest.raises(grouping.SplitError, match="inside the source folder"):
        splits._checked_folders(flat, flat / "out", "link")
    with pytest.raises(grouping.SplitError, match="mode must be one of"):
        splits._checked_folders(flat, tmp_path / "out", "move")
    assert splits._checked_folders(flat, tmp_path / "out", "copy") == (flat.resolve(), (tmp_path / "out").resolve())


def test_assigned_rows_keep_each_group_on_one_side(tmp_path: Path) -> None:
    flat = _flat(tmp_path / "flat").resolve()
    files, skipped = splits._scan_flat(flat)
    settings, group_for = grouping._grouping(flat, r"^(id\d)_", None, None, None, "path")
    rows, unmatched = splits._assigned_rows(files, group_for, settings["method"], (0.5, 0.5), 0)
    assert unmatched == 0 and skipped == [] and len(rows) == 24
    assert [r["path"] for r in rows] == sorted(r["path"] for r in rows)
    sides = {r["group"]: {x["split"] for x in rows if x["group"] == r["group"]} for r in rows}
    assert set(sides) == {"id0", "id1", "id2", "id3"} and all(len(s) == 1 for s in sides.values())
    _, none_match = grouping._grouping(flat, r"^zzz", None, None, None, "path")
    with pytest.raises(grouping.SplitError, match="gave no group to any of the 24 files"):
        splits._assigned_rows(files, none_match, "regex", (0.5, 0.5), 0)


def test_split_info_warns_without_grouping_and_writing_restores_files(tmp_path: Path) -> None:
    flat = _flat(tmp_path / "flat").resolve()
    files, skipped = splits._scan_flat(flat)
    rows, unmatched = splits._assigned_rows(files, lambda f: None, "file", (0.5, 0.5), 0)
    settings = {"fractions": [0.5, 0.5], "grouping": {"method": "file"}}
    info = splits._split_info(rows, settings, unmatched, skipped)
    assert info["status"] == "writing" and info["total"] == 24 and info["leakage_check"]["passed"]
    assert info["warnings"][0].startswith("no grouping")
    assert sum(sum(c.values()) for c in info["counts"].values()) == 24
    out = tmp_path / "out"
    assert split_writer._write_split_files(flat, out, rows, info, None, "copy", progress=False) == 0
    written = out / rows[0]["split"] / rows[0]["label"] / rows[0]["path"].split("/", 1)[1]
    assert written.read_bytes() == (flat / rows[0]["path"]).read_bytes()
    assert read_json(out / split_writer.INFO_FILE)["status"] == "complete"
    written.unlink()
    previous = {"status": "complete", "copied_instead_of_linked": 0}
    split_writer._write_split_files(flat, out, rows, info, previous, "copy", progress=False)
    assert written.exists()  # a re-run restores what went missing
