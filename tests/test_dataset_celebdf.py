"""The Celeb-DF reader on synthetic trees: labels from the folders, the test list's inverted labels, identity groups,
partial downloads and the one-line refusal of a root that is not Celeb-DF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepfake_lib import FAKE, REAL
from deepfake_lib.core.video import write_video
from deepfake_lib.prepare.datasets.celebdf import read_celebdf
from deepfake_lib.prepare.datasets.table import ORIGINAL, DatasetRootError

FILES = (
    "Celeb-real/id0_0000.mp4",
    "Celeb-real/id0_0001.mp4",
    "Celeb-real/id1_0000.mp4",
    "Celeb-synthesis/id0_id1_0000.mp4",
    "Celeb-synthesis/id1_id0_0003.mp4",
    "YouTube-real/00000.mp4",
    "YouTube-real/00001.mp4",
)
ROOT_MESSAGE = "has none of Celeb-real/, Celeb-synthesis/, YouTube-real/"


def make_tree(root: Path, files: tuple[str, ...] = FILES, test_list: str | None = None) -> Path:
    """A Celeb-DF tree of few-byte "videos" (the reader never decodes) and, if given, its test list."""
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"\x00\x00\x00\x18ftypmp42")
    if test_list is not None:
        (root / "List_of_testing_videos.txt").write_text(test_list, encoding="utf-8")
    return root


def by_path(table) -> dict:
    return {r.path: r for r in table.rows}


def test_inverted_label_convention(tmp_path: Path) -> None:
    """Celeb-DF's list says 1 = real, 0 = fake; our table says REAL 0, FAKE 1, and nothing disagrees."""
    root = make_tree(tmp_path, test_list="1 Celeb-real/id0_0000.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n")
    table = read_celebdf(root)
    rows = by_path(table)
    assert rows["Celeb-real/id0_0000.mp4"].label == REAL == 0
    assert rows["Celeb-synthesis/id0_id1_0000.mp4"].label == FAKE == 1
    assert not any("label is kept" in n for n in table.notes)


def test_rows_methods_sources_and_splits(tmp_path: Path) -> None:
    root = make_tree(tmp_path, test_list="1 Celeb-real/id0_0000.mp4\r\n1 YouTube-real/00001.mp4\r\n\n")
    table = read_celebdf(root)
    assert table.dataset == "celebdf" and len(table) == len(FILES)
    assert [r.path for r in table.rows] == sorted(FILES)
    rows = by_path(table)
    assert rows["YouTube-real/00000.mp4"].method == ORIGINAL and rows["YouTube-real/00000.mp4"].label == REAL
    assert rows["Celeb-real/id1_0000.mp4"].method == ORIGINAL
    assert rows["Celeb-synthesis/id1_id0_0003.mp4"].method == "Celeb-synthesis"
    assert {r.compression for r in table.rows} == {""}
    assert {r.source for r in table.rows} == {"Celeb-real", "Celeb-synthesis", "YouTube-real"}
    assert {p for p, r in rows.items() if r.split == "test"} == {"Celeb-real/id0_0000.mp4", "YouTube-real/00001.mp4"}
    assert all(
        r.split is None for p, r in rows.items() if p not in ("Celeb-real/id0_0000.mp4", "YouTube-real/00001.mp4")
    )
    assert not table.missing
    assert any("split those by identity" in n for n in table.notes)
    assert any(n.startswith("folders found: Celeb-real/, Celeb-synthesis/, YouTube-real/") for n in table.notes)


def test_identity_groups(tmp_path: Path) -> None:
    """A target identity's real and fake videos share a group; YouTube videos are each their own group."""
    rows = by_path(read_celebdf(make_tree(tmp_path)))
    assert rows["Celeb-real/id0_0000.mp4"].group == rows["Celeb-real/id0_0001.mp4"].group == "celebdf:id0"
    assert rows["Celeb-synthesis/id0_id1_0000.mp4"].group == "celebdf:id0"  # the target's, not the source's
    assert rows["Celeb-synthesis/id1_id0_0003.mp4"].group == rows["Celeb-real/id1_0000.mp4"].group == "celebdf:id1"
    assert rows["YouTube-real/00000.mp4"].group == "celebdf:youtube:00000"
    assert rows["YouTube-real/00001.mp4"].group == "celebdf:youtube:00001"


def test_name_off_pattern_is_its_own_group(tmp_path: Path) -> None:
    root = make_tree(tmp_path, files=(*FILES, "Celeb-real/id3.mp4", "Celeb-synthesis/id0_0002.mp4"))
    table = read_celebdf(root)
    rows = by_path(table)
    assert rows["Celeb-real/id3.mp4"].group == "celebdf:Celeb-real/id3"  # never a guessed identity
    assert rows["Celeb-synthesis/id0_0002.mp4"].group == "celebdf:Celeb-synthesis/id0_0002"
    assert rows["Celeb-synthesis/id0_0002.mp4"].label == FAKE
    assert any("Celeb-real/" in n and "id3.mp4" in n and "own group" in n for n in table.notes)
    assert any("Celeb-synthesis/" in n and "id0_0002.mp4" in n for n in table.notes)


def test_disagreeing_list_label_is_noted_and_folder_wins(tmp_path: Path) -> None:
    root = make_tree(tmp_path, test_list="1 Celeb-real/id0_0000.mp4\n1 Celeb-synthesis/id0_id1_0000.mp4\n")
    table = read_celebdf(root)
    assert by_path(table)["Celeb-synthesis/id0_id1_0000.mp4"].label == FAKE
    notes = [n for n in table.notes if "label is kept" in n]
    assert len(notes) == 1
    assert "List_of_testing_videos.txt:2" in notes[0] and "1 Celeb-synthesis/id0_id1_0000.mp4" in notes[0]


def test_partial_download(tmp_path: Path) -> None:
    """Files the test list names that are absent are listed in ``missing``; present ones are still split 'test'."""
    listed = "1 Celeb-real/id0_0000.mp4\n1 Celeb-real/id9_0000.mp4\n0 Celeb-synthesis/id9_id0_0000.mp4\n1 YouTube-real/00299.mp4\n"
    root = make_tree(tmp_path, files=FILES[:5], test_list=listed)
    table = read_celebdf(root)
    assert table.missing == [
        ("Celeb-real/id9_0000.mp4", "named by List_of_testing_videos.txt, absent"),
        ("Celeb-synthesis/id9_id0_0000.mp4", "named by List_of_testing_videos.txt, absent"),
        ("YouTube-real/00299.mp4", "named by List_of_testing_videos.txt, absent"),
    ]
    assert by_path(table)["Celeb-real/id0_0000.mp4"].split == "test"
    assert any(n.startswith("no YouTube-real/ folder") for n in table.notes)
    assert table.report()["missing"][0] == {
        "path": "Celeb-real/id9_0000.mp4",
        "why": "named by List_of_testing_videos.txt, absent",
    }


def test_no_test_list(tmp_path: Path) -> None:
    table = read_celebdf(make_tree(tmp_path))
    assert all(r.split is None for r in table.rows)
    assert "no List_of_testing_videos.txt: no official test split" in table.notes


def test_empty_folder(tmp_path: Path) -> None:
    root = make_tree(tmp_path, files=FILES[:3])
    (root / "Celeb-synthesis").mkdir()
    table = read_celebdf(root)
    assert len(table) == 3
    assert "Celeb-synthesis/ is empty: no videos in it" in table.notes
    assert any(n.startswith("no YouTube-real/ folder") for n in table.notes)


def test_only_an_empty_folder_is_still_a_root(tmp_path: Path) -> None:
    (tmp_path / "YouTube-real").mkdir()
    table = read_celebdf(tmp_path)
    assert len(table) == 0 and "YouTube-real/ is empty: no videos in it" in table.notes


@pytest.mark.parametrize("kind", ["empty", "other", "missing", "file"])
def test_wrong_root_is_one_line(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "root"
    if kind == "empty":
        root.mkdir()
    elif kind == "other":
        (root / "real").mkdir(parents=True)
    elif kind == "file":
        root.write_text("not a folder")
    with pytest.raises(DatasetRootError) as info:
        read_celebdf(root)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"not a Celeb-DF root: {root} {ROOT_MESSAGE}")
    if kind in ("empty", "other"):
        assert message == f"not a Celeb-DF root: {root} {ROOT_MESSAGE}"


def test_wrong_root_points_at_a_nested_download(tmp_path: Path) -> None:
    make_tree(tmp_path / "Celeb-DF-v2")
    with pytest.raises(DatasetRootError, match="Celeb-DF-v2: pass that folder"):
        read_celebdf(tmp_path)


@pytest.mark.parametrize("line", ["2 Celeb-real/id0_0000.mp4", "Celeb-real/id0_0000.mp4", "1 id0_0000.mp4", "1 a/b c"])
def test_malformed_list_line(tmp_path: Path, line: str) -> None:
    root = make_tree(tmp_path, test_list=f"1 Celeb-real/id0_0000.mp4\n\n{line}\n")
    with pytest.raises(DatasetRootError) as info:
        read_celebdf(root)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{root / 'List_of_testing_videos.txt'}: line 3 ")


def test_real_videos_are_not_decoded_and_read(tmp_path: Path) -> None:
    """Real mp4 files read like the few-byte ones: the table comes from names, and ``write_csv`` round-trips."""
    frames = [np.zeros((16, 16, 3), np.uint8)] * 2
    write_video(tmp_path / "Celeb-real" / "id5_0000.mp4", frames)
    write_video(tmp_path / "Celeb-synthesis" / "id5_id6_0000.mp4", frames)
    (tmp_path / "Celeb-real" / "notes.txt").write_text("not a video")
    table = read_celebdf(tmp_path)
    assert [(r.path, r.label, r.group) for r in table.rows] == [
        ("Celeb-real/id5_0000.mp4", REAL, "celebdf:id5"),
        ("Celeb-synthesis/id5_id6_0000.mp4", FAKE, "celebdf:id5"),
    ]
    from deepfake_lib.prepare.datasets.table import read_table_csv

    assert read_table_csv(table.write_csv(tmp_path / "table.csv")) == table.rows
