"""Values and files checked where they enter: the demo builder's marker, strict YAML, scans that stay inside their
folder, video frame caps, checkpoint values, run ids, parameter choices and the data check before the kernels."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from deepfake_lib.core.files import Skipped, walk_folder
from deepfake_lib.core.images import list_image_files
from deepfake_lib.core.runs import read_json
from deepfake_lib.core.strict_yaml import MAX_BYTES, StrictYamlError, load_strict
from deepfake_lib.core.video import list_video_files
from deepfake_lib.data.clips import ClipSettings
from deepfake_lib.demo.images import MANIFEST, DemoSpec, build_demo_dataset
from deepfake_lib.models.checkpoint import CheckpointError, checkpoint_value_problem, load_checkpoint
from deepfake_lib.pipeline import PipelineInputError, check_run_id, parameter_problem
from deepfake_lib.predict.video import VIDEO_FRAMES, capped_to_video
from deepfake_lib.prepare.dataset import PrepareError, check_source

SMALL = {"counts": {"train": {"real": 2, "fake": 1}, "val": {"real": 1, "fake": 1}}, "size": 32}


def test_a_demo_rebuild_removes_only_the_files_the_builder_wrote(tmp_path: Path) -> None:
    out = build_demo_dataset(tmp_path / "demo", DemoSpec(**SMALL, videos=None), progress=False)
    manifest = read_json(out / MANIFEST)
    assert manifest["files"] == sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg"))
    mine = out / "train" / "real" / "my_photo.jpg"
    mine.write_bytes(b"a user's file")
    notes = out / "notes" / "read.me"
    notes.parent.mkdir()
    notes.write_text("mine")
    smaller = {"counts": {"train": {"real": 1, "fake": 1}}, "size": 32}
    build_demo_dataset(out, DemoSpec(**smaller, videos=None), force=True, progress=False)
    assert mine.read_bytes() == b"a user's file" and notes.read_text() == "mine"
    assert not (out / "val").exists()  # the builder's own split, emptied and gone
    assert sorted(p.name for p in (out / "train" / "real").iterdir()) == ["my_photo.jpg", "real_0000.jpg"]


def test_a_demo_manifest_without_a_file_list_is_cleaned_by_the_builders_names(tmp_path: Path) -> None:
    out = build_demo_dataset(tmp_path / "demo", DemoSpec(**SMALL, videos=None), progress=False)
    old = read_json(out / MANIFEST)
    del old["files"]  # as written before the builder listed its files
    (out / MANIFEST).write_text(__import__("json").dumps(old))
    (out / "train" / "fake" / "fake_by_hand.jpg").write_bytes(b"mine")
    build_demo_dataset(out, DemoSpec(**{**SMALL, "size": 40}, videos=None), progress=False)
    assert (out / "train" / "fake" / "fake_by_hand.jpg").read_bytes() == b"mine"
    assert read_json(out / MANIFEST)["size"] == 40


def test_an_interrupted_demo_build_is_rebuilt_not_taken_as_done(tmp_path: Path, monkeypatch) -> None:
    import deepfake_lib.demo.images as demo

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "random_crop", boom)
    with pytest.raises(KeyboardInterrupt):
        build_demo_dataset(tmp_path / "demo", DemoSpec(**SMALL, videos=None), progress=False)
    assert read_json(tmp_path / "demo" / MANIFEST)["incomplete"] is True
    monkeypatch.undo()
    build_demo_dataset(tmp_path / "demo", DemoSpec(**SMALL, videos=None), progress=False)
    assert "incomplete" not in read_json(tmp_path / "demo" / MANIFEST)
    assert len(list((tmp_path / "demo").rglob("*.jpg"))) == 5


def test_strict_yaml_refuses_aliases_duplicate_keys_and_huge_files() -> None:
    value, root = load_strict("a: 1\nb: [1, 2]\nc: {d: x}\n")
    assert value == {"a": 1, "b": [1, 2], "c": {"d": "x"}} and root is not None
    with pytest.raises(StrictYamlError, match=r"line 2: alias \*x: aliases are not allowed"):
        load_strict("a: &x [1, 2]\nb: *x\n")
    with pytest.raises(StrictYamlError, match=r"line 4: duplicate key 'LR' \(first at line 2\)"):
        load_strict("parameters:\n  LR: 1\n  EPOCHS: 2\n  LR: 3\n")
    with pytest.raises(StrictYamlError, match="line 2: not valid YAML"):
        load_strict("a: [1, 2\n")
    with pytest.raises(StrictYamlError, match="bytes"):
        load_strict("a: " + "x" * MAX_BYTES)
    assert load_strict("")[0] is None


def test_scans_follow_links_inside_the_folder_only_and_never_into_the_output(tmp_path: Path) -> None:
    from PIL import Image

    root, outside, out = tmp_path / "in", tmp_path / "elsewhere", tmp_path / "in_out"
    for folder in (root / "a", outside, out):
        folder.mkdir(parents=True)
    for folder in (root / "a", outside, out):
        Image.new("RGB", (8, 8)).save(folder / "x.png")
    (root / "a" / "v.mp4").write_bytes(b"")
    (outside / "v.mp4").write_bytes(b"")
    (root / "0link").symlink_to(root / "a")  # inside: followed (first by name, so "a" is the folder seen twice)
    (root / "away").symlink_to(outside)  # out of the folder: not followed
    (root / "results").symlink_to(out)  # the output folder: never
    files, skipped = list_image_files(root, exclude=[out])
    assert files == [root / "0link" / "x.png"]
    reasons = {s.path.name: s.reason for s in skipped}
    assert "outside" in reasons["away"] and "output folder" in reasons["results"]
    assert "already visited" in reasons["a"]
    assert list_video_files(root, exclude=[out]) == [root / "0link" / "v.mp4"]
    assert "outside" in {s.path.name: s.reason for s in list_image_files(root)[1]}["results"]
    found: list[Skipped] = []
    assert [d for d, _, _ in walk_folder(out, found, exclude=[out])] == [str(out)]  # the root itself is given


def test_video_frames_beyond_the_video_are_capped_to_one_pass_over_it() -> None:
    settings = ClipSettings(frames=8, clips=12_500, size=32)
    capped = capped_to_video(settings, 120)
    assert capped.clips == 15 and len(capped.sampled_frames(120)) == 120
    default = replace(settings, clips=VIDEO_FRAMES // 8)  # the default 32 frames on a 20-frame video: unchanged
    assert capped_to_video(default, 20) == default
    strided = replace(settings, stride=2)
    assert capped_to_video(strided, 120) == strided  # a strided clip is bounded by its windows already


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"threshold": 7.5}, "threshold 7.5 is not a probability"),
        ({"threshold": float("nan")}, "threshold nan"),
        ({"threshold": True}, "threshold True"),
        ({"video_thresholds": {"video_mean": -0.1}}, "video_thresholds['video_mean']"),
        ({"temperature": 0.0}, "temperature 0.0"),
        ({"temperature": float("inf")}, "temperature inf"),
        ({"state_dict": "weights"}, "mappings"),
    ],
)
def test_checkpoint_values_that_mean_nothing_are_refused_at_load(
    change: dict, fragment: str, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    raw = torch.load(tiny_checkpoint, weights_only=True)
    assert checkpoint_value_problem(raw) is None
    raw.update(change)
    assert fragment in checkpoint_value_problem(raw)
    path = tmp_path / "bad.pth"
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(path)


def test_a_checkpoint_with_one_infinite_weight_is_refused(tiny_checkpoint: Path) -> None:
    raw = torch.load(tiny_checkpoint, weights_only=True)
    name = next(k for k, v in raw["state_dict"].items() if v.is_floating_point() and v.numel() > 1)
    raw["state_dict"][name].view(-1)[0] = math.inf
    assert checkpoint_value_problem(raw) == f"weights {name!r} hold NaN or infinite values"


@pytest.mark.parametrize("good", ["exp1", "rff-review-s0", "demo-20261125-103000", "a.b_c", 2024])
def test_run_ids_are_folder_names(good: str | int) -> None:
    assert check_run_id(good) == str(good)


@pytest.mark.parametrize("bad", ["../data", "/abs/run", "a/b", "..", ".", "latest", "", ".hidden", "a b", "x" * 200])
def test_run_ids_that_are_paths_are_refused(bad: str) -> None:
    with pytest.raises(PipelineInputError, match="a run id is a folder name"):
        check_run_id(bad)


@pytest.mark.parametrize(
    ("name", "value", "ok"),
    [
        ("FACES", None, True), ("FACES", True, True), ("FACES", 1, False), ("PRETRAINED", "auto", True),
        ("PRETRAINED", "yes", False), ("BACKBONE", "efficientnet-lite1", True), ("BACKBONE", "resnet50", False),
        ("TTA", "more", True), ("VIDEO_AGGREGATE", "sbi", True), ("SPLIT_FRACTIONS", [0.7, float("nan"), 0.15], False),
        ("SEED", float("inf"), False), ("LR", 3e-4, True), ("MAKE_SPLITS", "auto", True), ("CALIBRATE", 0, False),
    ],
)  # fmt: skip
def test_parameter_values_are_checked_against_their_choices_and_finiteness(name: str, value, ok: bool) -> None:
    assert (parameter_problem(name, value) is None) is ok


def test_the_data_check_knows_self_blended_training_needs_no_fakes(tmp_path: Path) -> None:
    for split in ("train", "val"):
        (tmp_path / "d" / split / "real").mkdir(parents=True)
    with pytest.raises(PrepareError, match="no fake folder"):
        check_source(tmp_path / "d")
    assert check_source(tmp_path / "d", need_fakes=False) == (tmp_path / "d").resolve()
    (tmp_path / "f").write_text("x")
    with pytest.raises(PrepareError, match="is a file, not a folder"):
        check_source(tmp_path / "f")


def test_a_clip_manifest_never_removes_anything_but_its_own_clip_folders(tmp_path: Path) -> None:
    from deepfake_lib.prepare.clips import _remove_clip

    out = tmp_path / "clips"
    (out / "v_mp4_t0_c0.clip").mkdir(parents=True)
    victim = tmp_path / "mine.clip"
    victim.mkdir()
    (out / "linked.clip").symlink_to(victim)
    for row in ("", ".", "../mine.clip", str(victim), "linked.clip", "notes"):
        _remove_clip(out, row)
    assert victim.is_dir() and out.is_dir() and (out / "linked.clip").is_symlink()
    _remove_clip(out, "v_mp4_t0_c0.clip")
    assert not (out / "v_mp4_t0_c0.clip").exists()
