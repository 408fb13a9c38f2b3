"""The plain real/fake folders reader: flat and split layouts, class names in any case, manifest groups, a missing
class, and the one-line refusal of a root without real/ or fake/."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepfake_lib import FAKE, REAL
from deepfake_lib.core.video import write_video
from deepfake_lib.prepare.datasets.folders import read_folders
from deepfake_lib.prepare.datasets.table import ORIGINAL, DatasetRootError

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def touch(root: Path, *names: str) -> Path:
    """Few-byte files (the reader never decodes)."""
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"\x89PNG")
    return root


def test_flat_layout(tmp_path: Path) -> None:
    root = touch(
        tmp_path, "real/a.jpg", "real/b.PNG", "fake/a.jpg", "fake/c.mp4", "real/readme.txt", "real/.hidden.jpg"
    )
    table = read_folders(root)
    assert table.dataset == "folders"
    assert [(r.path, r.label, r.method, r.split, r.group, r.source) for r in table.rows] == [
        ("fake/a.jpg", FAKE, "fake", None, "a", "fake"),
        ("fake/c.mp4", FAKE, "fake", None, "c", "fake"),
        ("real/a.jpg", REAL, ORIGINAL, None, "a", "real"),
        ("real/b.PNG", REAL, ORIGINAL, None, "b", "real"),
    ]
    assert {r.compression for r in table.rows} == {""}
    assert any(n.startswith("flat layout") for n in table.notes)
    assert any(n.startswith("no manifest.csv") for n in table.notes)


def test_split_layout_and_any_case(tmp_path: Path) -> None:
    root = touch(tmp_path, "train/Real/a.jpg", "train/FAKE/b.jpg", "Val/real/c.jpg", "Val/fake/d.jpg",
                 "test/real/e.png", "test/fake/f.webp")  # fmt: skip
    table = read_folders(root)
    assert [(r.path, r.label, r.split, r.source) for r in table.rows] == [
        ("Val/fake/d.jpg", FAKE, "val", "fake"),
        ("Val/real/c.jpg", REAL, "val", "real"),
        ("test/fake/f.webp", FAKE, "test", "fake"),
        ("test/real/e.png", REAL, "test", "real"),
        ("train/FAKE/b.jpg", FAKE, "train", "FAKE"),
        ("train/Real/a.jpg", REAL, "train", "Real"),
    ]


def test_nested_files_and_videos(tmp_path: Path) -> None:
    """Files in sub-folders are found; frames of two videos with one name stay separate groups; a real video counts."""
    root = touch(tmp_path, "real/vid1/0000.jpg", "real/vid2/0000.jpg", "fake/x.jpg")
    write_video(root / "real" / "clip.mp4", [np.zeros((16, 16, 3), np.uint8)] * 2)
    (root / "fake" / "x.clip").mkdir()
    rows = {r.path: r for r in read_folders(root).rows}
    assert set(rows) == {"real/vid1/0000.jpg", "real/vid2/0000.jpg", "real/clip.mp4", "fake/x.jpg"}
    assert rows["real/vid1/0000.jpg"].group == "vid1/0000" != rows["real/vid2/0000.jpg"].group
    assert rows["real/clip.mp4"].group == "clip"


def test_manifest_groups(tmp_path: Path) -> None:
    root = touch(tmp_path, "real/r1.jpg", "fake/f1.jpg", "fake/f2.jpg", "fake/loose.jpg")
    (root / "manifest.csv").write_text(
        "path,label,group\nreal/r1.jpg,real,r1\nfake/f1.jpg,fake,r1\nfake/f2.jpg,real,r1\nfake/gone.jpg,fake,r1\n"
    )
    table = read_folders(root)
    groups = {r.path: r.group for r in table.rows}
    assert groups == {"real/r1.jpg": "r1", "fake/f1.jpg": "r1", "fake/f2.jpg": "r1", "fake/loose.jpg": "loose"}
    assert {r.path: r.label for r in table.rows}["fake/f2.jpg"] == FAKE  # the folder's label is kept
    assert table.missing == [("fake/gone.jpg", "named by manifest.csv, absent")]
    assert any("without a group in manifest.csv" in n and "fake/loose.jpg" in n for n in table.notes)
    assert any("disagrees with their folder" in n and "fake/f2.jpg" in n for n in table.notes)


def test_manifest_without_group_column_is_not_used(tmp_path: Path) -> None:
    root = touch(tmp_path, "real/a.jpg", "fake/b.jpg")
    (root / "manifest.csv").write_text("path,label\nreal/a.jpg,real\n")
    table = read_folders(root)
    assert {r.group for r in table.rows} == {"a", "b"}
    assert any("no path and group columns" in n for n in table.notes)


def test_missing_class_is_a_note(tmp_path: Path) -> None:
    table = read_folders(touch(tmp_path, "real/a.jpg"))
    assert len(table) == 1
    assert any(n.startswith("no fake/ folder: the table has no fake files") for n in table.notes)
    table = read_folders(touch(tmp_path / "s", "train/real/a.jpg", "train/fake/b.jpg", "test/real/c.jpg"))
    assert any(n.startswith("no fake/ folder in test/") for n in table.notes)
    assert any(n.startswith("no val/ folder") for n in table.notes)


def test_empty_class_folder(tmp_path: Path) -> None:
    root = touch(tmp_path, "real/a.jpg")
    (root / "fake").mkdir()
    table = read_folders(root)
    assert len(table) == 1 and "fake/ has no images or videos" in table.notes


@pytest.mark.parametrize("kind", ["empty", "other", "missing", "file", "split_without_classes"])
def test_wrong_root_is_one_line(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "root"
    if kind == "empty":
        root.mkdir()
    elif kind == "other":
        touch(root, "images/a.jpg")
    elif kind == "split_without_classes":
        touch(root, "train/a.jpg", "val/cats/b.jpg")
    elif kind == "file":
        root.write_text("not a folder")
    with pytest.raises(DatasetRootError) as info:
        read_folders(root)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"not a real/fake folders root: {root} ")
    assert "real/" in message and "fake/" in message


def test_both_layouts_and_duplicate_class_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetRootError, match="keep one layout"):
        read_folders(touch(tmp_path / "a", "real/a.jpg", "train/fake/b.jpg"))
    with pytest.raises(DatasetRootError, match="several folders for class 'real'"):
        read_folders(touch(tmp_path / "b", "real/a.jpg", "Real/b.jpg"))


def test_dfdc_faces_dev() -> None:
    root = SHARED_DATA / "dfdc_faces_dev"
    if not (root / "manifest.csv").is_file():
        pytest.skip(f"{root} is absent")
    table = read_folders(root)
    assert len(table) == 10_000
    assert not table.missing
    import csv

    with (root / "manifest.csv").open(newline="") as f:
        manifest = {r["path"]: r["group"] for r in csv.DictReader(f)}
    assert {r.path: r.group for r in table.rows} == manifest
    assert {r.split for r in table.rows} == {None}
    assert sum(r.label == REAL for r in table.rows) == sum(p.startswith("real/") for p in manifest)
