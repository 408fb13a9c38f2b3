"""``python -m deepfake_lib.predict`` end to end: JSON, heatmap file, folder mode, one-line errors, exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from deepfake_lib.cli.predict import main
from deepfake_lib.core.cpu_env import MALLOC_ENV, NO_REEXEC_ENV, reexec_env
from deepfake_lib.predict import predictors as predict
from deepfake_lib.predict.folder import heatmap_names
from tests.conftest import LFS_POINTER, read_csv

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ if env is None else env)
    return subprocess.run(
        [sys.executable, "-m", "deepfake_lib.predict", *map(str, args)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=180,
    )  # fmt: skip


def in_process(capsys: pytest.CaptureFixture, *args: str | Path) -> subprocess.CompletedProcess:
    """``main(args)`` in this process (no interpreter start-up), as a ``CompletedProcess`` of its exit code and
    output: for behaviour; the subprocess tests keep the real exit codes and the re-exec honest."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out, err)


def assert_one_line_error(result: subprocess.CompletedProcess, code: int = 2, match: str = "") -> str:
    assert result.returncode == code, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert match.lower() in lines[0].lower(), lines[0]
    return lines[0]


def test_single_image_prints_json_and_writes_heatmap(tiny_checkpoint: Path, tiny_data: Path, tmp_path: Path) -> None:
    image = tiny_data / "val" / "fake" / "fake_0000.jpg"
    out = tmp_path / "out"
    # Without the malloc variables: the command re-execs itself once with them (--debug reports what it ran with).
    env = {k: v for k, v in os.environ.items() if k not in MALLOC_ENV and k != NO_REEXEC_ENV}
    result = cli("--frame", image, "--weights", tiny_checkpoint, "--out", out, "--debug", env=env)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert result.stdout.count("\n") == 1 and list(payload) == ["decision", "probability", "heatmap"]
    assert payload["decision"] in ("FAKE", "REAL") and 0.0 <= payload["probability"] <= 1.0
    assert payload["decision"] == ("FAKE" if payload["probability"] >= 0.5 else "REAL")
    assert payload["heatmap"] == str(out / "gradcam.png")
    with Image.open(payload["heatmap"]) as heat, Image.open(image) as src:
        assert heat.format == "PNG" and heat.size == src.size
    assert f"MALLOC_MMAP_THRESHOLD_={MALLOC_ENV['MALLOC_MMAP_THRESHOLD_']}" in result.stderr
    assert f"{NO_REEXEC_ENV}=1" in result.stderr


def test_threshold_override_and_no_heatmap_in_process(
    tiny_checkpoint: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    image = tiny_data / "val" / "real" / "real_0000.jpg"
    decisions = {}
    for threshold in ("0", "1"):
        out = tmp_path / threshold
        args = ["--frame", str(image), "--weights", str(tiny_checkpoint), "--out", str(out), "--no-heatmap"]
        assert main([*args, "--threshold", threshold, "--device", "cpu"]) == 0
        payload = json.loads(capsys.readouterr().out)
        assert payload["heatmap"] is None and not (out / "gradcam.png").exists()
        decisions[threshold] = payload["decision"]
    assert decisions == {"0": "FAKE", "1": "REAL"}


@pytest.mark.parametrize("value", ["1.5", "-0.1", "abc"])
def test_bad_threshold_is_a_usage_error(value: str, tiny_checkpoint: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--frame", "x.jpg", "--weights", str(tiny_checkpoint), "--out", "o", "--threshold", value])
    assert exc.value.code == 2 and "--threshold" in capsys.readouterr().err


def _evil_checkpoint(path: Path, marker: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))  # would create `marker` if the pickle were ever executed

    torch.save({"format": "x", "payload": Evil()}, path)


BAD_IMAGES = {
    "missing image": (lambda d: d / "nope.jpg", "no such file"),
    "empty image": (lambda d: _write(d / "empty.jpg", b""), "empty file"),
    "corrupt image": (lambda d: _write(d / "bad.jpg", b"\xff\xd8\xff\xe0garbage" * 10), "corrupt"),
    "lfs pointer image": (lambda d: _write(d / "lfs.png", LFS_POINTER), "git lfs pull"),
    "text file as image": (lambda d: _write(d / "notes.png", b"hello, not an image\n"), "not an image"),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", list(BAD_IMAGES))
def test_bad_image_fails_with_one_line(case: str, tiny_checkpoint: Path, tmp_path: Path) -> None:
    make, match = BAD_IMAGES[case]
    image = make(tmp_path)
    line = assert_one_line_error(cli("--frame", image, "--weights", tiny_checkpoint, "--out", tmp_path / "o"), 2, match)
    assert str(image) in line


@pytest.mark.parametrize(
    "case", ["missing", "truncated", "lfs pointer", "foreign", "pickle with code", "not torch", "wrong device"]
)
def test_bad_checkpoint_or_device_fails_with_one_line(
    case: str, tiny_checkpoint: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    weights, extra, match = tmp_path / "w.pth", [], ""
    marker = tmp_path / "PWNED"
    if case == "missing":
        match = "not found"
    elif case == "truncated":
        data = tiny_checkpoint.read_bytes()
        weights.write_bytes(data[: len(data) // 2])
        match = "corrupt or truncated"
    elif case == "lfs pointer":
        weights.write_bytes(LFS_POINTER)
        match = "git lfs pull"
    elif case == "foreign":
        torch.save({"model": {"weight": torch.zeros(3)}, "epoch": 3}, weights)
        match = "not a deepfake-workbench"
    elif case == "pickle with code":
        _evil_checkpoint(weights, marker)
        match = "refused"
    elif case == "not torch":
        weights.write_text("this is not a checkpoint\n")
        match = "corrupt"
    elif case == "wrong device":
        shutil.copy(tiny_checkpoint, weights)
        extra, match = ["--device", "warp-drive"], "--device"
    image = tiny_data / "val" / "real" / "real_0001.jpg"
    result = in_process(capsys, "--frame", image, "--weights", weights, "--out", tmp_path / "o", *extra)
    assert_one_line_error(result, 2, match)
    assert not marker.exists()


def test_unexpected_error_exits_1_with_one_line(
    tiny_checkpoint: Path, tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    def boom(*args, **kwargs):
        raise RuntimeError("something broke\nacross two lines")

    monkeypatch.setattr(predict.Predictor, "predict", boom)
    image = tiny_data / "val" / "real" / "real_0001.jpg"
    args = ["--frame", str(image), "--weights", str(tiny_checkpoint), "--out", str(tmp_path / "o")]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: unexpected RuntimeError: something broke across two lines (rerun with --debug for details)"]
    with pytest.raises(RuntimeError, match="something broke"):
        main([*args, "--debug"])


def test_output_folder_that_is_a_file(tiny_checkpoint: Path, tiny_data: Path, tmp_path: Path) -> None:
    blocker = _write(tmp_path / "file", b"x")
    image = tiny_data / "val" / "real" / "real_0001.jpg"
    assert_one_line_error(cli("--frame", image, "--weights", tiny_checkpoint, "--out", blocker / "o"), 2, "output")


# --------------------------------------------------------------------------- folder mode
def test_folder_mode_writes_csv_and_heatmaps(tiny_checkpoint: Path, mixed_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli(
        "--input", mixed_folder, "--weights", tiny_checkpoint, "--out", out, "--batch-size", "2", "--num-workers", "0"
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert result.stdout.count("\n") == 1
    assert summary == {
        "scored": 3, "fake": summary["fake"], "real": 3 - summary["fake"], "bad": 2, "threshold": 0.5,
        "csv": str(out / "predictions.csv"), "heatmaps": str(out / "heatmaps"),
    }  # fmt: skip
    assert "warning: 2 file(s) could not be scored" in result.stderr and "Traceback" not in result.stderr
    rows = read_csv(out / "predictions.csv")
    assert list(rows[0]) == ["path", "probability", "decision", "heatmap", "error"]
    by_name = {str(Path(r["path"]).relative_to(mixed_folder)): r for r in rows}
    assert set(by_name) == {"a/x.jpg", "b/x.jpg", "y.jpg", "b/broken.jpg", "lfs.png"}
    good = [by_name[k] for k in ("a/x.jpg", "b/x.jpg", "y.jpg")]
    for row in good:
        assert 0 <= float(row["probability"]) <= 1 and row["decision"] in ("FAKE", "REAL") and row["error"] == ""
        assert Path(row["heatmap"]).is_file() and Path(row["heatmap"]).parent == out / "heatmaps"
    assert len({r["heatmap"] for r in good}) == 3  # same stem in two folders: distinct heatmap files
    assert Path(by_name["y.jpg"]["heatmap"]).name == "y_gradcam.png"
    assert "git lfs pull" in by_name["lfs.png"]["error"] and by_name["lfs.png"]["probability"] == ""
    assert by_name["b/broken.jpg"]["error"] and by_name["b/broken.jpg"]["heatmap"] == ""


def test_folder_mode_without_heatmaps_in_process(
    tiny_checkpoint: Path, mixed_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    args = ["--frame", str(mixed_folder), "--weights", str(tiny_checkpoint), "--out", str(out), "--no-heatmap"]
    assert main([*args, "--num-workers", "0", "--no-progress", "--threshold", "0"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["scored"] == 3 and summary["fake"] == 3 and summary["heatmaps"] is None
    assert captured.err.strip() == f"warning: 2 file(s) could not be scored; see {out / 'predictions.csv'}"
    assert all(r["heatmap"] == "" for r in read_csv(out / "predictions.csv"))
    assert not (out / "heatmaps").exists()


def test_folder_mode_with_nothing_usable_exits_2(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    _write(folder / "lfs.jpg", LFS_POINTER)
    out = tmp_path / "out"
    args = ["--weights", tiny_checkpoint, "--out", out, "--num-workers", "0", "--no-progress", "--no-heatmap"]
    result = in_process(capsys, "--frame", folder, *args)
    assert result.returncode == 2
    assert json.loads(result.stdout)["scored"] == 0
    assert result.stderr.strip().splitlines()[-1].startswith("error: no image in")
    assert read_csv(out / "predictions.csv")[0]["error"].startswith("Git LFS pointer")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = in_process(capsys, "--frame", empty, "--weights", tiny_checkpoint, "--out", out)
    assert_one_line_error(result, 2, "no image or video files")


def test_heatmap_names_are_unique() -> None:
    root = Path("/data")
    paths = [root / "a/x.jpg", root / "b/x.jpg", root / "x.png", root / "y.jpg", root / "a/Y.png", root / "z.jpg"]
    names = heatmap_names(paths, root)
    assert len({n.lower() for n in names}) == len(names)
    assert names[0] == "a__x_jpg_gradcam.png" and names[2] == "x_png_gradcam.png" and names[5] == "z_gradcam.png"


def test_reexec_env() -> None:
    base = {"PATH": "/bin"}
    env = reexec_env(base, platform="linux")
    assert env == {"PATH": "/bin", **MALLOC_ENV, NO_REEXEC_ENV: "1"}
    assert reexec_env({**base, **MALLOC_ENV}, platform="linux") is None  # already set
    assert reexec_env({**base, NO_REEXEC_ENV: "1"}, platform="linux") is None  # loop guard / opt-out
    assert reexec_env(base, platform="darwin") is None  # glibc only
    mine = reexec_env({**base, "MALLOC_MMAP_THRESHOLD_": "1"}, platform="linux")
    assert mine["MALLOC_MMAP_THRESHOLD_"] == "1"  # a user's own value is kept


@pytest.mark.slow
def test_compiled_scoring_gives_the_same_probabilities(
    tiny_checkpoint: Path, mixed_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    common = ["--input", mixed_folder, "--weights", tiny_checkpoint, "--no-heatmap", "--num-workers", "0"]
    plain = in_process(capsys, *common, "--out", tmp_path / "plain", "--no-progress")
    compiled = cli(*common, "--out", tmp_path / "compiled", "--compile")  # torch.compile outside this process
    assert plain.returncode == 0 and compiled.returncode == 0, compiled.stderr
    a = {r["path"]: r["probability"] for r in read_csv(tmp_path / "plain" / "predictions.csv")}
    b = {r["path"]: r["probability"] for r in read_csv(tmp_path / "compiled" / "predictions.csv")}
    assert a.keys() == b.keys()
    for path, p in a.items():
        assert (p == "") == (b[path] == "")
        if p:
            assert abs(float(p) - float(b[path])) < 1e-4


def test_tta_flag_averages_the_views_and_defaults_to_the_checkpoints(
    tiny_checkpoint: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """``--tta hflip`` scores the mean logit of the image and its mirror; without the flag the checkpoint's own
    TTA (what its temperature was fitted with) applies; an ONNX file has its TTA built in, so the flag is refused."""
    import numpy as np

    from deepfake_lib.evaluation.calibration import TemperatureFit, store_calibration

    image = tiny_data / "val" / "fake" / "fake_0000.jpg"
    common = ["--frame", image, "--weights", tiny_checkpoint, "--no-heatmap"]
    plain = json.loads(in_process(capsys, *common, "--out", tmp_path / "a").stdout)["probability"]
    flipped = json.loads(in_process(capsys, *common, "--out", tmp_path / "b", "--tta", "hflip").stdout)["probability"]
    predictor = predict.Predictor.from_checkpoint(tiny_checkpoint, "cpu")
    x = predictor.transform(Image.open(image).convert("RGB")).view(1, 1, 3, 32, 32)
    with torch.no_grad():
        mean_logit = (predictor.model(x) + predictor.model(x.flip(-1))) / 2
    assert flipped == pytest.approx(float(torch.sigmoid(mean_logit)), abs=1e-4)
    assert plain == pytest.approx(float(torch.sigmoid(predictor.model(x).detach())), abs=1e-4)
    calibrated = tmp_path / "calibrated.pth"
    shutil.copy(tiny_checkpoint, calibrated)
    nan = float("nan")
    store_calibration(calibrated, TemperatureFit(2.0, "val", 10, nan, nan, nan, nan, nan, nan, tta="hflip"))
    stored = json.loads(
        in_process(capsys, "--frame", image, "--weights", calibrated, "--no-heatmap", "--out", tmp_path / "c").stdout
    )
    assert stored["probability"] == pytest.approx(float(torch.sigmoid(mean_logit / 2.0)), abs=1e-4)
    assert np.isfinite(stored["probability"])
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"not really onnx")
    bad = in_process(capsys, "--frame", image, "--weights", onnx, "--out", tmp_path / "d", "--tta", "hflip")
    assert_one_line_error(bad, 2, "--tta only applies with --runtime torch")
