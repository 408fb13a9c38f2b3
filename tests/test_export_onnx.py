"""ONNX deployment: export with a parity check, metadata, onnxruntime scoring through predict, one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deepfake_lib.cli import export as export_cli
from deepfake_lib.cli.predict import main
from deepfake_lib.data.transforms import build_transform
from deepfake_lib.deploy import export as export_mod
from deepfake_lib.deploy.export import ExportFailed, export_onnx
from deepfake_lib.models.checkpoint import save_model
from deepfake_lib.predict.predictors import Predictor
from deepfake_lib.predict.results import PredictError
from tests.conftest import LFS_POINTER, read_csv, tiny_model

onnx = pytest.importorskip("onnx", reason="the [onnx] extra is not installed: pip install -e '.[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed: pip install -e '.[onnx]'")
from deepfake_lib.predict.onnx_predictor import NO_HEATMAP_NOTE, OnnxPredictor, Preprocessing  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def lite_clip_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lite") / "lite.pth"
    save_model(tiny_model(backbone="efficientnet-lite0"), path, threshold=0.3, faces={"margin": 1.5, "size": 32})
    return path


def test_export_writes_a_verified_file_with_metadata(exported: export_mod.ExportResult, tiny_checkpoint: Path) -> None:
    assert exported.path.is_file() and exported.size_bytes == exported.path.stat().st_size > 100_000
    assert 0 <= exported.max_abs_diff <= 1e-4 and exported.checked == 8 and exported.check_source == "synthetic"
    assert list(exported.path.parent.iterdir()) == [exported.path]  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert exported.path.stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file, not mkstemp's 0600
    model = onnx.load(str(exported.path))
    onnx.checker.check_model(model)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["format"] == "deepfake-workbench/onnx"
    meta = {k: json.loads(v) for k, v in props.items() if k != "format"}
    assert meta["threshold"] == 0.5 and meta["class_names"] == ["real", "fake"] and meta["image_size"] == 32
    assert meta["frames"] == 1 and meta["backbone"] == "efficientnet-b0" and meta["faces"] is None
    assert meta["preprocessing"]["mean"] == [0.485, 0.456, 0.406] and meta["preprocessing"]["center_crop"] == 32
    assert meta["source_sha256"] == export_mod.sha256(tiny_checkpoint)
    session = ort.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "input" and inp.shape[1:] == [1, 3, 32, 32] and isinstance(inp.shape[0], str)  # dynamic batch
    assert [o.name for o in session.get_outputs()] == ["logit", "probability"]


def test_onnx_matches_pytorch_at_any_batch_size(exported: export_mod.ExportResult, tiny_checkpoint: Path) -> None:
    """The dynamic batch axis works (the graph was traced with a batch of 2) and the numbers are PyTorch's."""
    torch_model = Predictor.from_checkpoint(tiny_checkpoint, "cpu").model
    session = ort.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(1)
    for batch in (1, 2, 7):
        x = torch.randn(batch, 1, 3, 32, 32, generator=gen)
        with torch.no_grad():
            logits = torch_model(x)
        logit, prob = session.run(None, {"input": x.numpy()})
        assert logit.shape == prob.shape == (batch,)
        np.testing.assert_allclose(logit, logits.numpy(), atol=1e-4)
        np.testing.assert_allclose(prob, torch.sigmoid(logits).numpy(), atol=1e-5)


def test_numpy_preprocessing_equals_the_torch_eval_transform() -> None:
    rng = np.random.default_rng(0)
    pre = Preprocessing(32, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    transform = build_transform(32, train=False)
    for w, h, mode in ((32, 32, "RGB"), (50, 33, "RGB"), (31, 200, "L"), (400, 12, "RGBA"), (64, 48, "P")):
        img = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).convert(mode)
        expected = transform(img.convert("RGB") if mode != "RGBA" else _flatten(img)).numpy()
        got = pre(img)
        assert got.shape == (3, 32, 32) and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=1e-6)


def _flatten(img: Image.Image) -> Image.Image:
    from deepfake_lib.core.images import to_rgb

    return to_rgb(img)


def test_onnx_predictor_scores_files_like_pytorch(
    exported: export_mod.ExportResult, tiny_checkpoint: Path, tiny_data: Path
) -> None:
    files = sorted((tiny_data / "test").rglob("*.jpg"))
    ours = OnnxPredictor.from_file(exported.path, "cpu").predict(files)
    ref = Predictor.from_checkpoint(tiny_checkpoint, "cpu").predict(files, heatmaps=False)
    p_onnx = np.array([p.probability for p in ours])
    p_torch = np.array([p.probability for p in ref])
    assert p_onnx.std() > 1e-4  # the images get different scores: the comparison means something
    np.testing.assert_allclose(p_onnx, p_torch, atol=1e-4)
    assert [p.decision for p in ours] == [p.decision for p in ref]
    assert all(p.heatmap is None for p in ours)


def test_predict_cli_with_onnx_gives_the_same_json(
    exported: export_mod.ExportResult, tiny_checkpoint: Path, tiny_data: Path, tmp_path: Path, capsys
) -> None:
    image = tiny_data / "val" / "fake" / "fake_0000.jpg"
    assert main(["--frame", str(image), "--weights", str(exported.path), "--out", str(tmp_path / "o")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["decision", "probability", "heatmap", "note"]
    assert out["heatmap"] is None and out["note"] == NO_HEATMAP_NOTE and not (tmp_path / "o" / "gradcam.png").exists()
    assert main(["--frame", str(image), "--weights", str(tiny_checkpoint), "--out", str(tmp_path / "t")]) == 0
    ref = json.loads(capsys.readouterr().out)
    assert out["decision"] == ref["decision"] and abs(out["probability"] - ref["probability"]) <= 1e-4
    # an explicit threshold works as with PyTorch
    args = ["--frame", str(image), "--weights", str(exported.path), "--out", str(tmp_path / "o"), "--runtime", "onnx"]
    assert main([*args, "--threshold", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["decision"] == "FAKE"


def test_predict_cli_folder_with_onnx(
    exported: export_mod.ExportResult, tiny_checkpoint: Path, mixed_folder: Path, tmp_path: Path, capsys
) -> None:
    common = ["--input", str(mixed_folder), "--no-progress", "--batch-size", "2"]
    assert main([*common, "--weights", str(exported.path), "--out", str(tmp_path / "o")]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["scored"] == 3 and summary["bad"] == 2 and summary["heatmaps"] is None
    assert summary["note"] == NO_HEATMAP_NOTE and "2 file(s) could not be scored" in captured.err
    rows = read_csv(tmp_path / "o" / "predictions.csv")
    assert main([*common, "--weights", str(tiny_checkpoint), "--out", str(tmp_path / "t"), "--no-heatmap"]) == 0
    capsys.readouterr()
    ref = read_csv(tmp_path / "t" / "predictions.csv")
    assert [r["path"] for r in rows] == [r["path"] for r in ref] and list(rows[0]) == list(ref[0])
    for mine, theirs in zip(rows, ref, strict=True):
        assert mine["decision"] == theirs["decision"] and mine["error"] == theirs["error"] and mine["heatmap"] == ""
        if theirs["probability"]:
            assert abs(float(mine["probability"]) - float(theirs["probability"])) <= 1e-4
    assert not (tmp_path / "o" / "heatmaps").exists()


def test_fixed_clip_length_export_of_the_lite_family(
    lite_clip_checkpoint: Path, tmp_path: Path, tiny_data: Path
) -> None:
    """--frames T: the graph takes clips of T frames, checked against PyTorch on image files; such a file cannot
    score single images, and says so."""
    result = export_onnx(lite_clip_checkpoint, tmp_path / "clip.onnx", frames=3, images=tiny_data / "val", n_check=4)
    assert result.max_abs_diff <= 1e-4 and result.checked == 4 and result.check_source == str(tiny_data / "val")
    assert result.summary()["frames"] == 3 and result.summary()["backbone"] == "efficientnet-lite0"
    predictor = OnnxPredictor.from_file(result.path, "cpu")
    assert predictor.threshold == 0.3 and predictor.trained_on_faces and predictor.face_margin == 1.5
    session = predictor.session
    assert session.get_inputs()[0].shape[1:] == [3, 3, 32, 32]
    clips = np.random.default_rng(0).normal(size=(2, 3, 3, 32, 32)).astype(np.float32)
    ref = Predictor.from_checkpoint(lite_clip_checkpoint, "cpu").model
    with torch.no_grad():
        expected = torch.sigmoid(ref(torch.from_numpy(clips))).numpy()
    np.testing.assert_allclose(predictor.score(clips), expected, atol=1e-5)
    with pytest.raises(PredictError, match="clips of 3 frames, so it cannot score an image"):
        predictor.predict([tiny_data / "val" / "real" / "real_0000.jpg"])


def test_export_refuses_to_write_a_file_that_does_not_match(
    exported: export_mod.ExportResult, tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When onnxruntime's probabilities drift from PyTorch's, nothing is written and no temporary file stays."""
    monkeypatch.setattr(export_mod, "_torch_export", lambda m, x, path, *a, **k: shutil.copy(exported.path, path))
    ok = export_onnx(tiny_checkpoint, tmp_path / "ok.onnx")  # the same graph: passes
    assert ok.max_abs_diff <= 1e-4
    real_score = OnnxPredictor.score
    monkeypatch.setattr(OnnxPredictor, "score", lambda self, x, batch_size=16: real_score(self, x, batch_size) + 1e-3)
    with pytest.raises(ExportFailed, match=r"differs from PyTorch by 0\.001 .*nothing written"):
        export_onnx(tiny_checkpoint, tmp_path / "bad.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.onnx"]


# --------------------------------------------------------------------------- bad input, one line, exit 2
def _foreign_onnx(path: Path) -> Path:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "other", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return path


def _wrong_size_metadata(src: Path, path: Path) -> Path:
    model = onnx.load(str(src))
    for prop in model.metadata_props:
        if prop.key == "image_size":
            prop.value = "224"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(
    "case", ["other model", "wrong input shape", "truncated", "lfs pointer", "pth as onnx", "onnx as pth"]
)
def test_bad_onnx_input_fails_with_one_line(
    case: str, exported: export_mod.ExportResult, tiny_checkpoint: Path, tiny_data: Path, tmp_path: Path, capsys
) -> None:
    weights, extra = tmp_path / "m.onnx", []
    if case == "other model":
        match = "not a deepfake-workbench detector"
        _foreign_onnx(weights)
    elif case == "wrong input shape":
        match = "does not match its metadata"
        _wrong_size_metadata(exported.path, weights)
    elif case == "truncated":
        match = "truncated or corrupt"
        weights.write_bytes(exported.path.read_bytes()[:50_000])
    elif case == "lfs pointer":
        match = "git lfs pull"
        weights.write_bytes(LFS_POINTER)
    elif case == "pth as onnx":
        match, weights, extra = "a PyTorch checkpoint, not an ONNX model", tiny_checkpoint, ["--runtime", "onnx"]
    else:
        match, weights, extra = "an ONNX model, not a workbench checkpoint", exported.path, ["--runtime", "torch"]
    image = tiny_data / "val" / "real" / "real_0000.jpg"
    assert main(["--frame", str(image), "--weights", str(weights), "--out", str(tmp_path / "o"), *extra]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert match in lines[0] and str(weights) in lines[0]


def test_export_cli(tiny_checkpoint: Path, tmp_path: Path, exported: export_mod.ExportResult, capsys) -> None:
    """The command line: a checkpoint that is not ours and bad arguments exit 2 with one line, nothing written."""
    foreign = tmp_path / "foreign.pth"
    torch.save({"model": {"w": torch.zeros(2)}}, foreign)
    out = ["--out", str(tmp_path / "x.onnx")]
    result = subprocess.run(
        [sys.executable, "-m", "deepfake_lib.cli.export", "--weights", str(foreign), *out],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2 and result.stdout == "", result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "not a deepfake-workbench" in result.stderr
    for argv, match in (
        (["--weights", str(exported.path)], "an ONNX model, not a workbench checkpoint"),
        (["--weights", str(tmp_path / "missing.pth")], "not found"),
        (["--weights", str(tiny_checkpoint), "--check-images", str(tmp_path / "nowhere")], "folder not found"),
    ):
        assert export_cli.main([*argv, *out]) == 2
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert captured.out == "" and len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0]
    with pytest.raises(SystemExit) as exc:
        export_cli.main(["--weights", str(tiny_checkpoint), *out, "--frames", "0"])
    assert exc.value.code == 2
    assert not (tmp_path / "x.onnx").exists()


def test_onnx_scoring_needs_no_pytorch(exported: export_mod.ExportResult, mixed_folder: Path, tmp_path: Path) -> None:
    """With ``import torch`` made to fail, predict --runtime onnx still scores an image and a folder."""
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['torchvision'] = None\n"
        "from deepfake_lib.cli.predict import main\n"
        f"rc1 = main(['--frame', {str(mixed_folder / 'y.jpg')!r}, '--weights', {str(exported.path)!r}, "
        f"'--out', {str(tmp_path / 'a')!r}])\n"
        f"rc2 = main(['--input', {str(mixed_folder)!r}, '--weights', {str(exported.path)!r}, "
        f"'--out', {str(tmp_path / 'b')!r}, '--no-progress'])\n"
        "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        "sys.exit(rc1 * 10 + rc2)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    first, summary = (json.loads(line) for line in result.stdout.strip().splitlines())
    assert first["decision"] in ("FAKE", "REAL") and summary["scored"] == 3


def test_face_mode_scores_crops_like_pytorch(exported: export_mod.ExportResult, tiny_checkpoint: Path) -> None:
    """Face mode is shared by both runtimes: the same crops, the same most suspicious face."""
    from deepfake_lib.data.faces import Face

    rng = np.random.default_rng(3)
    image = Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    faces = [Face((10.0, 10.0, 60.0, 70.0), 0.99), Face((90.0, 30.0, 150.0, 100.0), 0.95)]
    ours = OnnxPredictor.from_file(exported.path, "cpu").score_faces([image], [faces], heatmaps=False)[0]
    ref = Predictor.from_checkpoint(tiny_checkpoint, "cpu").score_faces([image], [faces], heatmaps=False)[0]
    assert [f.crop_box for f in ours.faces] == [f.crop_box for f in ref.faces]
    np.testing.assert_allclose([f.probability for f in ours.faces], [f.probability for f in ref.faces], atol=1e-4)
    assert ours.top.face == ref.top.face and ours.decision == ref.decision
