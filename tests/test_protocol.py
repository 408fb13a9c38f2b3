"""The protocol step (a dataset's table -> frames per video, faces, official or grouped splits, a cached data folder)
and the cross-dataset matrix read from it (frame and video AUC per domain and method, grouped bootstrap intervals)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from deepfake_lib.core.video import write_video
from deepfake_lib.evaluation.domains import ALL_METHODS, domain_rows, grouped_bootstrap_auc, score_domain
from deepfake_lib.prepare.dataset import PrepareError, data_dir_for_run, data_source, prepare_data
from deepfake_lib.prepare.datasets.spec import DatasetSpecError, format_dataset, is_dataset_spec, parse_dataset
from deepfake_lib.prepare.datasets.table import DatasetTable, MediaRow
from deepfake_lib.prepare.protocol import PROTOCOL_MANIFEST, prepare_protocol, protocol_splits, read_protocol_manifest


def video_set(root: Path, n: int = 8, frames: int = 12) -> Path:
    """``root/{real,fake}/vNN.mp4``: ``n`` tiny videos per class (fakes brighter), and one corrupt fake."""
    rng = np.random.default_rng(0)
    for label, shift in (("real", 0), ("fake", 90)):
        for i in range(n):
            images = [np.clip(rng.normal(80 + shift, 20, (32, 32, 3)), 0, 255).astype(np.uint8) for _ in range(frames)]
            write_video(root / label / f"v{i:02d}.mp4", images)
    (root / "fake" / "broken.mp4").write_bytes(b"not a video")
    return root


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return video_set(tmp_path_factory.mktemp("protocol") / "videos")


def test_a_dataset_string_names_the_reader_the_root_and_the_options(tmp_path: Path) -> None:
    spec = parse_dataset(f"ffpp:{tmp_path}?compression=c23&methods=Deepfakes,FaceSwap&frames=4&faces=false")
    assert (spec.name, spec.root, spec.frames, spec.test_frames, spec.faces) == ("ffpp", tmp_path, 4, 32, False)
    assert spec.reader_options == {"compression": "c23", "methods": ("Deepfakes", "FaceSwap")}
    assert parse_dataset(format_dataset(spec)) == spec and spec.label == "ffpp c23 Deepfakes+FaceSwap"
    assert is_dataset_spec("celebdf:/data/x") and not is_dataset_spec("C:/data") and not is_dataset_spec("data/demo")
    for bad, fragment in [("nope:/x", "unknown dataset 'nope'"), ("ffpp:", "no root folder"),
                          ("dfdc:/x?compression=c23", "unknown option 'compression'"),
                          ("ffpp:/x?frames=0", "frames must be >= 1")]:  # fmt: skip
        with pytest.raises(DatasetSpecError, match=fragment):
            parse_dataset(bad)


def test_official_splits_stay_and_the_rest_is_split_by_groups_never_into_an_official_test_set() -> None:
    rows = [MediaRow(f"t{i}.mp4", i % 2, "original" if i % 2 == 0 else "x", "", f"g{i // 2}", "test") for i in range(4)]
    rows += [MediaRow(f"r{i}.mp4", i % 2, "original" if i % 2 == 0 else "x", "", f"h{i // 2}", None) for i in range(20)]
    splits, origin, notes = protocol_splits(DatasetTable("x", Path("/x"), rows), seed=0)
    assert all(splits[f"t{i}.mp4"] == "test" and origin[f"t{i}.mp4"] == "official" for i in range(4))
    assert {splits[f"r{i}.mp4"] for i in range(20)} == {"train", "val"}  # only the official test set is test
    for i in range(0, 20, 2):  # a group stays on one side
        assert splits[f"r{i}.mp4"] == splits[f"r{i + 1}.mp4"]
    assert "train and val" in notes[0]
    fakes_only = DatasetTable("x", Path("/x"), [MediaRow(f"f{i}.mp4", 1, "DFDC", "", f"g{i}", None) for i in range(3)])
    splits, origin, notes = protocol_splits(fakes_only, test_side=True)  # scored only: the whole set is its test side
    assert set(splits.values()) == {"test"} and set(origin.values()) == {"whole set"} and "every file" in notes[0]


def test_the_protocol_samples_frames_per_split_caches_them_and_leaves_a_corrupt_video_out(
    videos: Path, tmp_path: Path
) -> None:
    spec = f"folders:{videos}?frames=2&test_frames=5&faces=false"
    result = prepare_protocol(spec, tmp_path / "prep", seed=0, progress=False)
    rows = read_protocol_manifest(result.data_dir)
    per_video: dict[str, set[str]] = {}
    for r in rows:
        per_video.setdefault(r["video"], set()).add(r["split"])
        assert (result.data_dir / r["path"]).is_file() and r["dataset"] == "folders"
    assert all(len(s) == 1 for s in per_video.values()), "every frame of a video in one split"
    frames = {v: sum(r["video"] == v for r in rows) for v in per_video}
    assert {frames[v] for v, s in per_video.items() if s == {"train"}} == {2}
    assert {frames[v] for v, s in per_video.items() if s != {"train"}} == {5}
    assert [x["path"] for x in result.left_out] == ["fake/broken.mp4"] and result.left_out[0]["reason"]
    with (result.data_dir / "split_manifest.csv").open() as f:  # the groups training and failure mining read
        assert {r["group"] for r in csv.DictReader(f)} == {r["group"] for r in rows}
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "prep" / "frames").rglob("*.jpg")}
    again = prepare_protocol(spec, tmp_path / "prep", seed=0, progress=False)  # cached: no frame rewritten
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "prep" / "frames").rglob("*.jpg")} == mtimes
    assert again.counts == result.counts and (again.data_dir / PROTOCOL_MANIFEST).is_file()


def test_prepare_data_and_the_run_read_a_dataset_string(videos: Path, tmp_path: Path) -> None:
    spec = f"folders:{videos}?frames=2&test_frames=3&faces=false"
    prepared = prepare_data(data_source(spec), tmp_path / "prep", progress=False)
    assert prepared.steps == ["protocol"] and prepared.protocol["found"]["files"] == 17
    run = tmp_path / "run"
    with pytest.raises(PrepareError, match="run 01 first"):
        data_dir_for_run(spec, run)
    from deepfake_lib.core.runs import update_metrics

    update_metrics(run, "data", {"source_dir": str(data_source(spec)), "data_dir": str(prepared.data_dir)})
    assert data_dir_for_run(spec, run) == prepared.data_dir
    with pytest.raises(ValueError, match="not made by the protocol step"):
        prepare_protocol(spec, videos, progress=False)  # never into a folder of something else


def test_a_grouped_bootstrap_draws_whole_groups() -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    assert grouped_bootstrap_auc(y, y.astype(float), ["a", "a", "b", "b", "c", "c"], n_boot=50) == (1.0, 1.0)
    low, high = grouped_bootstrap_auc(y, y.astype(float), ["a"] * 6, n_boot=50)
    assert math.isnan(low) and math.isnan(high)  # one group: no interval


def test_the_matrix_scores_frames_and_videos_per_method(videos: Path, tmp_path: Path) -> None:
    from tests.conftest import tiny_model

    result = prepare_protocol(f"folders:{videos}?frames=2&test_frames=3&faces=false", tmp_path / "p", progress=False)
    scores = score_domain(tiny_model(), result.data_dir, "test", name="tiny", num_workers=0, progress=False)
    (row,) = domain_rows(scores, threshold=0.5, n_boot=20)
    assert row["domain"] == "tiny" and row["method"] == ALL_METHODS
    assert row["frames"] == len(scores.preds) == 3 * (row["real videos"] + row["fake videos"])
    assert 0.0 <= row["frame AUC"] <= 1.0 and 0.0 <= row["video AUC"] <= 1.0 and 0.0 <= row["false alarms"] <= 1.0


def test_the_run_summary_shows_what_the_reader_found_left_out_and_the_matrix(videos: Path, tmp_path: Path) -> None:
    from deepfake_lib.core.runs import update_metrics
    from deepfake_lib.evaluation.domains import matrix_record
    from deepfake_lib.report import write_summary
    from tests.conftest import tiny_model

    result = prepare_protocol(f"folders:{videos}?frames=2&test_frames=3&faces=false", tmp_path / "p", progress=False)
    update_metrics(tmp_path / "run", "data", {"data_dir": str(result.data_dir), "counts": {},
                                              "prepared": {"source_dir": str(result.spec), "steps": ["protocol"],
                                                           "protocol": result.summary()}})  # fmt: skip
    scores = score_domain(tiny_model(), result.data_dir, "test", name="tiny", num_workers=0, progress=False)
    update_metrics(tmp_path / "run", "cross_dataset_matrix", matrix_record(domain_rows(scores, 0.5, 20), 0.5, 1.3))
    text = write_summary(tmp_path / "run").read_text()
    assert f"- dataset `folders:{videos}?frames=2&test_frames=3&faces=false`: 17 files in 9 groups" in text
    assert "- left out `fake/broken.mp4`:" in text and "went to train, val and test by their groups" in text
    assert "## Cross-dataset matrix" in text and "| tiny | all |" in text and "temperature 1.3" in text


def test_a_method_row_holds_the_real_videos_and_that_methods_fakes() -> None:
    from deepfake_lib.evaluation.domains import DomainScores
    from deepfake_lib.evaluation.inference import Predictions

    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    probs = np.array([0.1, 0.2, 0.3, 0.4, 0.9, 0.8, 0.35, 0.25])  # method A separates, method B hides among reals
    methods = ["original"] * 4 + ["A", "A", "B", "B"]
    videos = ["r1", "r1", "r2", "r2", "a1", "a2", "b1", "b2"]
    preds = Predictions(
        probs=probs, labels=labels, paths=[f"{i}.png" for i in range(8)], logits=np.log(probs / (1 - probs))
    )
    rows = domain_rows(DomainScores("d", preds, videos, methods, videos), threshold=0.5, n_boot=20)
    assert [r["method"] for r in rows] == [ALL_METHODS, "A", "B"]
    by = {r["method"]: r for r in rows}
    assert by["A"]["frame AUC"] == 1.0 and by["A"]["fake videos"] == 2 and by["A"]["real videos"] == 2
    assert by["B"]["frames"] == 6 and by["B"]["frame AUC"] == pytest.approx(5 / 8)
    assert by["A"]["video AUC"] == 1.0 and by[ALL_METHODS]["false alarms"] == 0.0
    assert set(by["A"]["video AUC by rule"]) == {"frame_mean", "frame_max", "sbi", "confident_mean"}


SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "protocol_samples"


@pytest.mark.skipif(not (SAMPLES / "ffpp").is_dir(), reason=f"{SAMPLES / 'ffpp'} not present")
def test_the_real_ffpp_sample_follows_the_official_splits(tmp_path: Path) -> None:
    result = prepare_protocol(f"ffpp:{SAMPLES / 'ffpp'}?compression=c23&frames=2&test_frames=3&faces=false",
                              tmp_path / "prep", progress=False)  # fmt: skip
    rows = read_protocol_manifest(result.data_dir)
    split_of = {r["video"]: r["split"] for r in rows}
    assert split_of["original_sequences/youtube/c23/videos/004.mp4"] == "val"
    assert split_of["manipulated_sequences/NeuralTextures/c23/videos/004_982.mp4"] == "val"
    assert split_of["manipulated_sequences/FaceSwap/c23/videos/634_660.mp4"] == "test"
    assert {v for v, s in split_of.items() if s == "train"} == {
        "original_sequences/youtube/c23/videos/519.mp4", "manipulated_sequences/Deepfakes/c23/videos/519_515.mp4",
        "manipulated_sequences/Face2Face/c23/videos/750_743.mp4",
    }  # fmt: skip
    assert result.split_origin == {"official": 7} and result.counts["train"] == {"real": 2, "fake": 4}
