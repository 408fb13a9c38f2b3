"""The benchmark script runs end to end and reports every row as a ratio to the bare backbone (no timing asserts)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch

from deepfake_lib import bench
from deepfake_lib.bench import results as bench_results
from deepfake_lib.bench import rows as bench_rows
from deepfake_lib.bench.file_steps import onnx_available
from deepfake_lib.bench.inputs import write_jpegs
from deepfake_lib.cli import bench as bench_cli
from deepfake_lib.deploy import export as export_mod


@pytest.mark.xdist_group("onnx")  # asks for ``exported`` at run time: on the worker that builds it anyway
def test_bench_smoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    if onnx_available():  # the ONNX row scores through onnxruntime; the export itself is tested elsewhere
        exported = request.getfixturevalue("exported")

        def export_copy(weights, out, *args, **kwargs):
            shutil.copy(exported.path, out)
            return dataclasses.replace(exported, path=Path(out))

        monkeypatch.setattr(export_mod, "export_onnx", export_copy)
    out = tmp_path / "bench.json"
    assert bench_cli.main(["--image-size", "32", "--batch-size", "4", "--repeats", "1", "--warmup", "0",
                       "--n-images", "6", "--workers", "0", "--device", "cpu", "--n-videos", "1",
                       "--footage-seconds", "1", "--resolutions", "480", "--out", str(out)]) == 0  # fmt: skip
    result = json.loads(out.read_text())
    rows = result["rows"]
    expected = {
        "bare_backbone", "full_model", "full_model_frequency", "folder_predict", "folder_predict_device",
        "video_predict", "spectra_folder", "train_default", "train_full", "train_full_frequency", "train_batches",
        "train_batches_device", "train_batches_blended", "train_processes", "video_480p",
    }  # fmt: skip
    assert set(rows) == expected | ({"folder_predict_onnx"} if onnx_available() else set())
    assert rows["bare_backbone"]["ratio_to_bare"] == 1.0
    for row in rows.values():
        assert row["images_per_s"] > 0 and row["peak_rss_mb"] > 0
        assert abs(row["ratio_to_bare"] - row["images_per_s"] / rows["bare_backbone"]["images_per_s"]) < 1e-9
    assert result["image_size"] == 32 and result["device"] == "cpu"
    split = rows["video_predict"]["time_split"]
    assert set(split) == {"decode", "faces", "model"} and abs(sum(split.values()) - 1) < 1e-9
    footage = rows["video_480p"]
    assert footage["timing"]["frames"] == 25 and (footage["timing"]["width"], footage["timing"]["height"]) == (854, 480)
    assert abs(sum(footage["time_split"].values()) - 1) < 1e-6 and footage["timing"]["decode_opencv"] > 0
    table = bench.format_table(result)
    assert "| (a) bare EfficientNet-B0 forward |" in table and "1.00x" in table
    assert "| (c) folder prediction, 6 JPEGs, PIL in 0 workers |" in table
    assert "| (c-device) the same decoded on cpu, 0 workers read |" in table
    assert "video scoring time: decode" in table
    multi = rows["train_processes"]  # the default 2 processes, forked, one CPU thread each
    assert (multi["processes"], multi["threads_per_process"]) == (2, 1)
    assert multi["ratio_to_one_process"] == pytest.approx(multi["images_per_s"] / rows["train_full"]["images_per_s"])
    assert "2 training processes (1 thread(s) each) vs one:" in table


def test_write_jpegs(tmp_path: Path) -> None:
    paths = write_jpegs(tmp_path, 3, 32)
    assert [p.suffix for p in paths] == [".jpg"] * 3 and len({p.read_bytes() for p in paths}) == 3


def test_rows_record_in_order_with_memory(capsys: pytest.CaptureFixture[str]) -> None:
    rec = bench_rows._Rows(torch.device("cpu"))
    row = rec.add("b", "(b) second", 2.0, 10)
    rec.add("a", "(a) first", 0.5, 10)
    assert list(rec.rows) == ["b", "a"] and rec.rows["b"] is row
    assert row["images_per_s"] == 5.0 and row["seconds"] == 2.0 and row["peak_rss_mb"] > 0
    assert "peak_gpu_mb" not in row
    assert "(a) first: 20.0 images/s" in capsys.readouterr().err


def test_multi_process_row_is_skipped_without_enough_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    multi, reason = bench_rows._multi_process_run(2, 32, 4, torch.device("cuda"), True, 0, 1)
    assert multi is None and reason == "(h) skipped: 2 processes need 2 GPUs, this machine has 1"
    assert bench_rows._multi_process_run(1, 32, 4, torch.device("cpu"), False, 0, 1) == (None, None)


def test_result_relates_every_row_to_the_bare_backbone() -> None:
    rec = bench_rows._Rows(torch.device("cpu"))
    for key, seconds in (("bare_backbone", 1.0), ("train_default", 2.0), ("train_full", 4.0)):
        rec.add(key, key, seconds, 8)
    result = bench_results._result(rec, 32, 8, amp=True, repeats=3)
    assert [row["ratio_to_bare"] for row in result["rows"].values()] == [1.0, 0.5, 0.25]
    assert result["train_speedup_default_vs_full"] == 2.0
    assert result["amp"] is False and result["peak_gpu_mb"] is None  # AMP only counts on CUDA
    assert (result["image_size"], result["batch_size"], result["repeats"]) == (32, 8, 3)
