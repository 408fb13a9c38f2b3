"""The DFDC and DFDC Preview readers: labels only from the dataset's own lists, a fake grouped with its original,
partial downloads in ``missing``, one-line refusals of a wrong root, official splits (DFDC training parts: none;
public test set and DFDC Preview set test: test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepfake_lib import FAKE, REAL
from deepfake_lib.prepare.datasets.dfdc import read_dfdc
from deepfake_lib.prepare.datasets.dfdcp import read_dfdcp
from deepfake_lib.prepare.datasets.table import ORIGINAL, DatasetRootError

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "protocol_samples"
REAL_DFDC = SAMPLES / "dfdc"


def video(path: Path) -> Path:
    """A stand-in video: the readers never decode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    return path


def part(folder: Path, entries: dict[str, tuple[str, str | None]], present: list[str]) -> Path:
    """A ``dfdc_train_part_N``-style folder: ``metadata.json`` of ``{name: (label, original)}`` and the videos."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = {name: {"label": label, "split": "train", "original": orig} for name, (label, orig) in entries.items()}
    (folder / "metadata.json").write_text(json.dumps(meta))
    for name in present:
        video(folder / name)
    return folder


def by_path(table) -> dict:
    return {r.path: r for r in table.rows}


def test_partial_download_groups_and_labels(tmp_path: Path) -> None:
    part(
        tmp_path / "dfdc_train_part_0",
        {"aaa.mp4": ("REAL", None), "bbb.mp4": ("FAKE", "aaa.mp4"), "ccc.mp4": ("FAKE", "zzz.mp4")},
        present=["aaa.mp4", "bbb.mp4"],
    )
    part(tmp_path / "dfdc_train_part_1", {"ddd.mp4": ("FAKE", "aaa.mp4")}, present=["ddd.mp4"])
    table = read_dfdc(tmp_path)
    assert table.dataset == "dfdc" and table.root == tmp_path
    rows = by_path(table)
    assert list(rows) == ["dfdc_train_part_0/aaa.mp4", "dfdc_train_part_0/bbb.mp4", "dfdc_train_part_1/ddd.mp4"]
    real, fake, other_part = rows.values()
    assert (real.label, real.method, real.group) == (REAL, ORIGINAL, "dfdc:aaa")
    assert (fake.label, fake.method, fake.group) == (FAKE, "DFDC", "dfdc:aaa")  # the fake and its original: one group
    assert other_part.group == "dfdc:aaa" and other_part.source == "dfdc_train_part_1"
    assert {r.split for r in table.rows} == {None} and {r.compression for r in table.rows} == {""}
    assert table.missing == [("dfdc_train_part_0/ccc.mp4", "listed in dfdc_train_part_0/metadata.json, absent")]
    assert any("no official split" in n for n in table.notes)


@pytest.mark.parametrize("make", ["missing", "file", "empty", "unrelated"])
def test_wrong_root_is_one_line(tmp_path: Path, make: str) -> None:
    root = tmp_path / "root"
    if make == "file":
        root.write_text("not a folder")
    elif make in ("empty", "unrelated"):
        root.mkdir()
        if make == "unrelated":
            video(root / "x" / "clip.mp4")
            (root / "notes.json").write_text("{}")
    with pytest.raises(DatasetRootError) as err:
        read_dfdc(root)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"not a DFDC root: {root}")
    assert "dfdc_train_part_*/metadata.json, metadata.json or labels.csv" in message
    if make in ("empty", "unrelated"):
        assert message == f"not a DFDC root: {root} has no dfdc_train_part_*/metadata.json, metadata.json or labels.csv"
    with pytest.raises(DatasetRootError) as err:
        read_dfdcp(root)
    assert "\n" not in str(err.value) and str(err.value).startswith(f"not a DFDC Preview root: {root}")
    assert "dataset.json" in str(err.value)


def test_empty_part_folder_and_empty_metadata(tmp_path: Path) -> None:
    (tmp_path / "dfdc_train_part_3").mkdir()
    video(tmp_path / "dfdc_train_part_4" / "orphan.mp4")
    part(tmp_path / "dfdc_train_part_5", {}, present=[])
    table = read_dfdc(tmp_path)
    assert table.rows == [] and table.missing == []
    assert "dfdc_train_part_5/metadata.json lists no videos" in table.notes
    assert any(n.startswith("dfdc_train_part_3/: no metadata.json") for n in table.notes)
    assert any(n.startswith("dfdc_train_part_4/orphan.mp4: not in metadata.json") for n in table.notes)
    # only part folders without metadata: not a DFDC root
    (tmp_path / "dfdc_train_part_5" / "metadata.json").unlink()
    with pytest.raises(DatasetRootError, match="has no dfdc_train_part_"):
        read_dfdc(tmp_path)


def test_unlisted_video_left_out_and_root_as_one_part(tmp_path: Path) -> None:
    folder = part(tmp_path / "train_sample_videos", {"aaa.mp4": ("FAKE", None)}, present=["aaa.mp4", "bbb.mp4"])
    video(folder / "sub" / "ccc.avi")
    for root, prefix in ((tmp_path, "train_sample_videos/"), (folder, "")):
        table = read_dfdc(root)
        assert [r.path for r in table.rows] == [f"{prefix}aaa.mp4"]  # bbb is named nowhere: no label given
        (row,) = table.rows
        assert (row.label, row.group, row.source) == (FAKE, "dfdc:aaa", "train_sample_videos")
        assert f"{prefix}bbb.mp4: not in metadata.json: left out (no label)" in table.notes
        assert f"{prefix}sub/ccc.avi: not in metadata.json: left out (no label)" in table.notes
        assert any(n.startswith(f"{prefix}aaa.mp4: FAKE with no original") for n in table.notes)


def test_public_test_set_labels_csv(tmp_path: Path) -> None:
    test = tmp_path / "test"
    (test / "labels.csv").parent.mkdir()
    (test / "labels.csv").write_text("filename,label\nfff.mp4,1\nrrr.mp4,0\ngone.mp4,1\n")
    video(test / "fff.mp4")
    video(test / "rrr.mp4")
    part(tmp_path / "dfdc_train_part_0", {"aaa.mp4": ("REAL", None)}, present=["aaa.mp4"])
    rows = by_path(table := read_dfdc(tmp_path))
    assert rows["test/fff.mp4"].label == FAKE and rows["test/fff.mp4"].method == "DFDC"  # labels.csv: 1 = FAKE
    assert rows["test/rrr.mp4"].label == REAL and rows["test/rrr.mp4"].method == ORIGINAL
    assert {rows[p].split for p in ("test/fff.mp4", "test/rrr.mp4")} == {"test"}
    assert rows["test/fff.mp4"].source == "test" and rows["test/fff.mp4"].group == "dfdc:fff"
    assert rows["dfdc_train_part_0/aaa.mp4"].split is None
    assert table.missing == [("test/gone.mp4", "listed in test/labels.csv, absent")]
    # the test folder as the root
    only = read_dfdc(test)
    assert [(r.path, r.label, r.split) for r in only.rows] == [("fff.mp4", FAKE, "test"), ("rrr.mp4", REAL, "test")]


def test_labels_csv_bad_label_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("filename,label\nfff.mp4,1\nrrr.mp4,FAKE\n")
    with pytest.raises(DatasetRootError) as err:
        read_dfdc(tmp_path)
    assert str(err.value) == f"{tmp_path / 'labels.csv'}, line 3: label must be 0 (real) or 1 (fake), got 'FAKE'"
    (tmp_path / "labels.csv").write_text("name,is_fake\nfff.mp4,1\n")
    with pytest.raises(DatasetRootError, match="expected the columns filename,label"):
        read_dfdc(tmp_path)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{not json", "not valid JSON"),
        ('["aaa.mp4"]', "expected a JSON object mapping a file name to"),
        ('{"aaa.mp4": "FAKE"}', "entry 'aaa.mp4' is not an object with a label"),
        ('{"aaa.mp4": {"label": "MAYBE"}}', "entry 'aaa.mp4': label must be REAL or FAKE, got 'MAYBE'"),
        ('{"aaa.mp4": {"label": "FAKE", "original": 3}}', "original must be a file name or null"),
        ('{"../aaa.mp4": {"label": "REAL"}}', "is not a file path inside its folder"),
    ],
)
def test_broken_metadata_names_file(tmp_path: Path, text: str, why: str) -> None:
    meta = tmp_path / "dfdc_train_part_0" / "metadata.json"
    meta.parent.mkdir()
    meta.write_text(text)
    with pytest.raises(DatasetRootError) as err:
        read_dfdc(tmp_path)
    assert str(err.value).startswith(f"{meta}: ") and why in str(err.value) and "\n" not in str(err.value)


def preview(root: Path, entries: dict[str, dict], present: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset.json").write_text(json.dumps(entries))
    for name in present:
        video(root / name)
    return root


def test_dfdcp_splits_methods_and_subject_groups(tmp_path: Path) -> None:
    entries = {
        "original_videos/111/111_A/1.mp4": {"label": "real", "set": "train", "target_id": "111"},
        "method_A/111/111_A/2.mp4": {"label": "fake", "set": "train", "target_id": "111", "source_id": "222"},
        "method_B/333/333_B/3.mp4": {"label": "fake", "set": "test", "target_id": 333, "augmentations": {}},
        "method_B/444/444_A/4.mp4": {"label": "fake", "set": "test"},
    }
    root = preview(tmp_path / "dfdcp", entries, present=list(entries)[:3] + ["method_A/999/x.mp4"])
    table = read_dfdcp(root)
    assert table.dataset == "dfdcp"
    rows = by_path(table)
    assert list(rows) == sorted(list(entries)[:3])
    real, fake_a, fake_b = (rows[p] for p in list(entries)[:3])
    assert (real.label, real.method, real.split, real.group) == (REAL, ORIGINAL, None, "dfdcp:111")
    assert (fake_a.label, fake_a.method, fake_a.split, fake_a.group) == (FAKE, "method_A", None, "dfdcp:111")
    assert (fake_b.method, fake_b.split, fake_b.group, fake_b.source) == ("method_B", "test", "dfdcp:333", "method_B")
    assert table.missing == [("method_B/444/444_A/4.mp4", "listed in dataset.json, absent")]
    assert "method_A/999/x.mp4: not in dataset.json: left out (no label)" in table.notes
    assert any("set train: split None" in n for n in table.notes)
    assert "groups: by subject id (target_id) for 3 videos" in table.notes


def test_dfdcp_groups_by_folder_without_subject_id(tmp_path: Path) -> None:
    entries = {
        "original_videos/555/a.mp4": {"label": "real", "set": "train"},
        "method_A/555/b.mp4": {"label": "fake", "set": "train"},
        "c.mp4": {"label": "fake", "set": "test"},
    }
    table = read_dfdcp(preview(tmp_path, entries, present=list(entries)))
    rows = by_path(table)
    assert rows["original_videos/555/a.mp4"].group == rows["method_A/555/b.mp4"].group == "dfdcp:555"
    assert (rows["c.mp4"].method, rows["c.mp4"].group, rows["c.mp4"].split) == ("DFDC-Preview", "dfdcp:c", "test")
    note = next(n for n in table.notes if n.startswith("groups: "))
    assert "the folder under the method folder (a subject or session) for 2" in note and "own name for 1" in note


@pytest.mark.parametrize(
    ("entries", "why"),
    [
        ({"a.mp4": {"label": "REAL", "set": "val"}}, "entry 'a.mp4': set must be train or test, got 'val'"),
        ({"a.mp4": {"label": 1, "set": "test"}}, "entry 'a.mp4': label must be real or fake, got 1"),
        ([], "expected a JSON object mapping"),
    ],
)
def test_dfdcp_broken_index_names_file(tmp_path: Path, entries: object, why: str) -> None:
    (tmp_path / "dataset.json").write_text(json.dumps(entries))
    with pytest.raises(DatasetRootError) as err:
        read_dfdcp(tmp_path)
    assert str(err.value).startswith(f"{tmp_path / 'dataset.json'}: ") and why in str(err.value)


def test_dfdcp_empty_index(tmp_path: Path) -> None:
    table = read_dfdcp(preview(tmp_path, {}, present=["method_A/1/v.mp4"]))
    assert table.rows == [] and table.missing == []
    assert "dataset.json lists no videos" in table.notes
    assert "method_A/1/v.mp4: not in dataset.json: left out (no label)" in table.notes


@pytest.mark.skipif(not (REAL_DFDC / "dfdc_train_part_0" / "metadata.json").is_file(), reason="no DFDC samples")
def test_real_partial_dfdc_tree() -> None:
    table = read_dfdc(REAL_DFDC)
    found = {r.path: (r.label, r.method, r.group, r.split, r.source) for r in table.rows}
    assert found == {
        "dfdc_train_part_0/brtujopkby.mp4": (FAKE, "DFDC", "dfdc:gnmmhlbzge", None, "dfdc_train_part_0"),
        "dfdc_train_part_10/widuwuoiur.mp4": (FAKE, "DFDC", "dfdc:ybqmttnept", None, "dfdc_train_part_10"),
        "dfdc_train_part_10/yhffcuhhjy.mp4": (FAKE, "DFDC", "dfdc:wdpsifpppf", None, "dfdc_train_part_10"),
        "train_sample_videos/abofeumbvv.mp4": (FAKE, "DFDC", "dfdc:atvmxvwyns", None, "train_sample_videos"),
        "train_sample_videos/abqwwspghj.mp4": (FAKE, "DFDC", "dfdc:qzimuostzz", None, "train_sample_videos"),
    }
    assert dict(table.missing) == {
        "dfdc_train_part_0/awnfpubqmo.mp4": "listed in dfdc_train_part_0/metadata.json, absent",
        "dfdc_train_part_1/vtfpbtmgfh.mp4": "listed in dfdc_train_part_1/metadata.json, absent",
        "dfdc_train_part_1/zvqinhzeah.mp4": "listed in dfdc_train_part_1/metadata.json, absent",
        "train_sample_videos/aagfhgtpmv.mp4": "listed in train_sample_videos/metadata.json, absent",
        "train_sample_videos/aapnvogymq.mp4": "listed in train_sample_videos/metadata.json, absent",
        "train_sample_videos/abarnvbtwb.mp4": "listed in train_sample_videos/metadata.json, absent",
    }
    assert not any("not in metadata.json" in n for n in table.notes)
    part10 = read_dfdc(REAL_DFDC / "dfdc_train_part_10")  # a root that is one part
    assert [r.path for r in part10.rows] == ["widuwuoiur.mp4", "yhffcuhhjy.mp4"] and part10.missing == []
    assert table.report()["groups"] == 5
