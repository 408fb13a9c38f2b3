"""The FaceForensics++ reader: layout labels, official pair splits and groups, DFD actor groups, filters, partial
downloads (missing files, notes) and the one-line refusal of a wrong root, on synthetic trees and the real sample."""

from __future__ import annotations

import tomllib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from deepfake_lib import FAKE, REAL
from deepfake_lib.core.video import write_video
from deepfake_lib.prepare.datasets.ffpp import METHODS, YOUTUBE_METHODS, official_pairs, read_ffpp
from deepfake_lib.prepare.datasets.table import ORIGINAL, SPLITS, DatasetRootError

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "data" / "protocol_samples"
ORIG, MANI = "original_sequences", "manipulated_sequences"


def touch(root: Path, rel: str) -> Path:
    """A stand-in video (a few bytes: the reader does not decode)."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    return path


def youtube(root: Path, ids: list[str], compression: str = "c23") -> None:
    for i in ids:
        touch(root, f"{ORIG}/youtube/{compression}/videos/{i}.mp4")


def fakes(root: Path, method: str, names: list[str], compression: str = "c23") -> None:
    for name in names:
        touch(root, f"{MANI}/{method}/{compression}/videos/{name}.mp4")


def first_pair(split: str) -> tuple[str, str]:
    return official_pairs()[split][0]


def by_path(table) -> dict:
    return {r.path: r for r in table.rows}


def test_official_pairs_ship_with_the_package() -> None:
    pairs = official_pairs()
    assert {s: len(p) for s, p in pairs.items()} == {"train": 360, "val": 70, "test": 70}
    ids = {s: [i for pair in p for i in pair] for s, p in pairs.items()}
    assert {s: len(v) for s, v in ids.items()} == {"train": 720, "val": 140, "test": 140}
    everything = [i for v in ids.values() for i in v]
    assert len(set(everything)) == len(everything) == 1000  # pairs disjoint, every youtube id in one pair
    assert set(everything) == {f"{i:03d}" for i in range(1000)}
    assert ("004", "982") in pairs["val"] and ("634", "660") in pairs["test"] and ("515", "519") in pairs["train"]
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "ffpp_splits/*.json" in data["deepfake_lib.prepare.datasets"]
    assert (REPO / "deepfake_lib/prepare/datasets/ffpp_splits/SOURCE.md").is_file()


def test_split_membership_keeps_every_pair_together(tmp_path: Path) -> None:
    pairs = official_pairs()
    youtube(tmp_path, [i for p in pairs.values() for pair in p for i in pair])
    for method in YOUTUBE_METHODS:
        fakes(tmp_path, method, [n for p in pairs.values() for t, s in p for n in (f"{t}_{s}", f"{s}_{t}")])
    table = read_ffpp(tmp_path)
    assert table.missing == []
    originals = Counter(r.split for r in table.rows if r.method == ORIGINAL)
    assert originals == {"train": 720, "val": 140, "test": 140}
    for method in YOUTUBE_METHODS:
        assert Counter(r.split for r in table.rows if r.method == method) == {"train": 720, "val": 140, "test": 140}
    rows = by_path(table)
    for t, s in pairs["test"]:
        group = [rows[f"{ORIG}/youtube/c23/videos/{i}.mp4"] for i in (t, s)]
        group += [rows[f"{MANI}/{m}/c23/videos/{n}.mp4"] for m in YOUTUBE_METHODS for n in (f"{t}_{s}", f"{s}_{t}")]
        assert {r.split for r in group} == {"test"} and {r.group for r in group} == {f"ffpp:{t}_{s}"}
    test_ids = {i for pair in pairs["test"] for i in pair}
    for r in table.rows:
        if r.split != "test":
            assert not set(Path(r.path).stem.split("_")) & test_ids, r.path
    groups = {s: {r.group for r in table.rows if r.split == s} for s in SPLITS}
    assert not (groups["train"] & groups["val"] or groups["train"] & groups["test"] or groups["val"] & groups["test"])
    assert len(table.rows) == 6000 and table.rows == sorted(table.rows, key=lambda r: r.path)


def test_partial_download_counts_missing_and_notes(tmp_path: Path) -> None:
    (t1, s1), (t2, s2) = first_pair("train"), first_pair("test")
    youtube(tmp_path, [t1, s1, t2])  # s2 absent
    fakes(tmp_path, "Deepfakes", [f"{t1}_{s1}", f"{t2}_{s2}", f"{s2}_{t2}"])
    fakes(tmp_path, "Deepfakes", [f"{t1}_{s1}"], compression="c40")
    fakes(tmp_path, "Face2Face", [f"{s1}_{t1}"])
    touch(tmp_path, f"{MANI}/Deepfakes/c23/masks/videos/{t1}_{s1}.mp4")  # masks are not videos of the dataset
    touch(tmp_path, f"{MANI}/Deepfakes/c23/videos/notes.txt")
    table = read_ffpp(tmp_path)
    counts = {(c["method"], c["compression"], c["split"], c["label"]): c["n"] for c in table.counts()}
    assert counts == {
        ("original", "c23", "train", "real"): 2,
        ("original", "c23", "test", "real"): 1,
        ("Deepfakes", "c23", "train", "fake"): 1,
        ("Deepfakes", "c23", "test", "fake"): 2,
        ("Deepfakes", "c40", "train", "fake"): 1,
        ("Face2Face", "c23", "train", "fake"): 1,
    }
    missing = dict(table.missing)
    assert missing[f"{ORIG}/youtube/c23/videos/{s2}.mp4"] == "named by the official test split, absent"
    assert missing[f"{MANI}/Deepfakes/c23/videos/{s1}_{t1}.mp4"] == "named by the official train split, absent"
    assert f"{MANI}/Deepfakes/c23/videos/{t2}_{s2}.mp4" not in missing
    per_folder = Counter(p.rsplit("/", 2)[0] for p in missing)
    assert per_folder == {
        f"{ORIG}/youtube/c23": 997,
        f"{MANI}/Deepfakes/c23": 997,
        f"{MANI}/Deepfakes/c40": 999,
        f"{MANI}/Face2Face/c23": 999,
    }  # a folder not downloaded (Face2Face c40, FaceSwap, youtube c40) lists nothing
    assert table.missing == sorted(table.missing)
    for note in (
        "Face2Face c40: not downloaded",
        "FaceSwap c23: not downloaded",
        f"{ORIG}/youtube c40: not downloaded",
    ):
        assert note in table.notes
    assert not any("masks" in r.path or r.path.endswith(".txt") for r in table.rows)
    assert table.report()["files"] == 8


def test_wrong_root_is_one_line_naming_root_and_what_was_looked_for(tmp_path: Path) -> None:
    (tmp_path / "videos").mkdir()
    file = touch(tmp_path, "a.mp4")
    for root in (tmp_path, tmp_path / "absent", file):
        with pytest.raises(DatasetRootError) as info:
            read_ffpp(root)
        message = str(info.value)
        assert message.startswith(f"not a FaceForensics++ root: {root}")
        assert "has neither original_sequences/ nor manipulated_sequences/" in message and "\n" not in message
    youtube(tmp_path, ["000"])
    with pytest.raises(DatasetRootError, match="give the folder above it"):
        read_ffpp(tmp_path / ORIG)


def test_empty_method_folder_gets_a_note(tmp_path: Path) -> None:
    youtube(tmp_path, list(first_pair("val")))
    (tmp_path / MANI / "FaceSwap" / "c23" / "videos").mkdir(parents=True)
    (tmp_path / MANI / "Deepfakes").mkdir(parents=True)
    table = read_ffpp(tmp_path)
    assert any(n.startswith("FaceSwap c23: the folder is empty") for n in table.notes)
    assert "Deepfakes: the folder is empty" in table.notes
    assert not any("/FaceSwap/" in p or "/Deepfakes/" in p for p, _ in table.missing)
    assert {r.split for r in table.rows} == {"val"} and len(table.rows) == 2


def test_compression_and_method_filters(tmp_path: Path) -> None:
    t, s = first_pair("train")
    youtube(tmp_path, [t, s])
    youtube(tmp_path, [t], compression="raw")
    for method in ("Deepfakes", "FaceSwap"):
        fakes(tmp_path, method, [f"{t}_{s}"])
        fakes(tmp_path, method, [f"{t}_{s}"], compression="raw")
    only_raw = read_ffpp(tmp_path, compression="raw")
    assert {r.compression for r in only_raw.rows} == {"raw"} and len(only_raw) == 3
    assert {r.compression for r in read_ffpp(tmp_path).rows} == {"raw", "c23"}
    assert "Deepfakes c40: not downloaded" in read_ffpp(tmp_path, compression="c40").notes
    one = read_ffpp(tmp_path, compression="c23", methods=["FaceSwap"])
    assert {(r.method, r.source) for r in one.rows} == {(ORIGINAL, "youtube"), ("FaceSwap", "FaceSwap")}
    assert not any("Deepfakes" in p or "Face2Face" in p for p, _ in one.missing)
    assert {r.method for r in read_ffpp(tmp_path, methods="Deepfakes").rows} == {ORIGINAL, "Deepfakes"}
    with pytest.raises(ValueError, match="raw, c23, c40"):
        read_ffpp(tmp_path, compression="c30")
    with pytest.raises(ValueError, match="Deepfakes, Face2Face, FaceSwap, NeuralTextures, FaceShifter") as info:
        read_ffpp(tmp_path, methods=["Deepfake"])
    assert "'Deepfake'" in str(info.value) and all(m in str(info.value) for m in METHODS)


def test_dfd_grouped_by_target_actor_without_split(tmp_path: Path) -> None:
    scene = "outside_talking_still_laughing"
    for actor in ("24", "23"):
        touch(tmp_path, f"{ORIG}/actors/c23/videos/{actor}__{scene}.mp4")
    touch(tmp_path, f"{MANI}/DeepFakeDetection/c23/videos/24_23__{scene}__YR5OVD4S.mp4")
    touch(tmp_path, f"{MANI}/DeepFakeDetection/c23/videos/23_24__{scene}__ABCDEFGH.mp4")
    touch(tmp_path, f"{MANI}/DeepFakeDetection/c23/masks/videos/24_23__{scene}__YR5OVD4S.mp4")
    table = read_ffpp(tmp_path, methods=["DeepFakeDetection"])
    rows = by_path(table)
    assert len(rows) == 4 and all(r.split is None for r in table.rows)
    fake = rows[f"{MANI}/DeepFakeDetection/c23/videos/24_23__{scene}__YR5OVD4S.mp4"]
    assert (fake.group, fake.label, fake.method, fake.source) == (
        "dfd-actor:24",
        FAKE,
        "DeepFakeDetection",
        "DeepFakeDetection",
    )
    real = rows[f"{ORIG}/actors/c23/videos/24__{scene}.mp4"]
    assert (real.group, real.label, real.method, real.source) == ("dfd-actor:24", REAL, ORIGINAL, "actors")
    assert rows[f"{MANI}/DeepFakeDetection/c23/videos/23_24__{scene}__ABCDEFGH.mp4"].group == "dfd-actor:23"
    assert table.missing == []
    assert any("no official split" in n for n in table.notes)
    assert any("source actor's face" in n and "share a source identity" in n for n in table.notes)


def test_stray_names_fit_no_pair_and_are_never_guessed(tmp_path: Path) -> None:
    (t1, s1), (t2, s2) = official_pairs()["train"][:2]
    youtube(tmp_path, [t1, "1000"])
    fakes(tmp_path, "Deepfakes", [f"{t1}_{s1}", f"{t1}_{t2}", f"{t1}_{t1}", "clip"])
    table = read_ffpp(tmp_path)
    rows = by_path(table)
    assert rows[f"{ORIG}/youtube/c23/videos/{t1}.mp4"].split == "train"
    stray = rows[f"{ORIG}/youtube/c23/videos/1000.mp4"]
    assert (stray.split, stray.group, stray.label) == (None, "ffpp:1000", REAL)
    for name in (f"{t1}_{t2}", f"{t1}_{t1}", "clip"):
        row = rows[f"{MANI}/Deepfakes/c23/videos/{name}.mp4"]
        assert (row.split, row.group, row.label) == (None, f"ffpp:{name}", FAKE)
    assert any(n.startswith(f"{ORIG}/youtube c23: 1 file(s) fit no") and "1000.mp4" in n for n in table.notes)
    assert any(n.startswith("Deepfakes c23: 3 file(s) fit no T_S") and "clip.mp4" in n for n in table.notes)


def test_real_video_files_are_read_without_decoding(tmp_path: Path) -> None:
    t, s = first_pair("val")
    frames = [np.zeros((16, 16, 3), np.uint8)] * 2
    write_video(tmp_path / ORIG / "youtube" / "c40" / "videos" / f"{t}.mp4", frames)
    write_video(tmp_path / MANI / "NeuralTextures" / "c40" / "videos" / f"{s}_{t}.avi", frames)
    rows = by_path(read_ffpp(tmp_path))
    assert rows[f"{MANI}/NeuralTextures/c40/videos/{s}_{t}.avi"].group == f"ffpp:{t}_{s}"
    assert {r.split for r in rows.values()} == {"val"}


@pytest.mark.skipif(not (SAMPLES / "ffpp").is_dir(), reason="protocol_samples/ffpp absent")
def test_real_partial_ffpp_tree() -> None:
    table = read_ffpp(SAMPLES / "ffpp")
    got = {r.path.rsplit("/", 1)[1]: (r.label, r.method, r.compression, r.split, r.group) for r in table.rows}
    assert got == {
        "004.mp4": (REAL, ORIGINAL, "c23", "val", "ffpp:004_982"),
        "519.mp4": (REAL, ORIGINAL, "c23", "train", "ffpp:515_519"),
        "634.mp4": (REAL, ORIGINAL, "c23", "test", "ffpp:634_660"),
        "519_515.mp4": (FAKE, "Deepfakes", "c23", "train", "ffpp:515_519"),
        "750_743.mp4": (FAKE, "Face2Face", "c23", "train", "ffpp:750_743"),
        "634_660.mp4": (FAKE, "FaceSwap", "c23", "test", "ffpp:634_660"),
        "004_982.mp4": (FAKE, "NeuralTextures", "c23", "val", "ffpp:004_982"),
    }
    missing = dict(table.missing)
    assert missing["original_sequences/youtube/c23/videos/982.mp4"] == "named by the official val split, absent"
    assert missing["original_sequences/youtube/c23/videos/750.mp4"] == "named by the official train split, absent"
    assert len(table.missing) == 997 + 4 * 999
    assert "FaceShifter c23: not downloaded" in table.notes and "DeepFakeDetection c23: not downloaded" in table.notes
