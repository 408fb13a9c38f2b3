"""Face mode of prediction: ``Predictor.predict_faces`` and ``python -m deepfake_lib.predict --faces``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from skimage import data as skdata

from deepfake_lib.cli.predict import main
from deepfake_lib.data.faces import FaceDetector, no_face_reason, square_box
from deepfake_lib.predict.predictors import Predictor
from deepfake_lib.predict.results import CSV_COLUMNS, FacePrediction, NoFaceError
from tests.conftest import ASTRONAUT_FACE, iou

NO_FACE = no_face_reason(0.9)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(device="cpu")


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint: Path) -> Predictor:
    return Predictor.from_checkpoint(tiny_checkpoint, "cpu")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``astronaut.png`` (one face), ``pair.png`` (two faces, the right one smaller), ``coffee.jpg`` (no face)."""
    folder = tmp_path_factory.mktemp("faces_in")
    astronaut = Image.fromarray(skdata.astronaut())
    astronaut.save(folder / "astronaut.png")
    pair = Image.new("RGB", (640, 320))
    pair.paste(astronaut.resize((320, 320)), (0, 0))
    pair.paste(astronaut.resize((200, 200)).transpose(Image.Transpose.FLIP_LEFT_RIGHT), (400, 60))
    pair.save(folder / "pair.png")
    Image.fromarray(skdata.coffee()).resize((300, 200)).save(folder / "coffee.jpg")
    return {p.stem: p for p in folder.iterdir()}


def run(capsys: pytest.CaptureFixture, *args: str | Path) -> tuple[int, str, str]:
    code = main([*map(str, args), "--device", "cpu"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_faces_on_the_astronaut(
    tiny_checkpoint: Path, images: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    code, stdout, err = run(
        capsys, "--frame", images["astronaut"], "--weights", tiny_checkpoint, "--out", out, "--faces"
    )
    assert code == 0, err
    payload = json.loads(stdout)
    assert stdout.count("\n") == 1 and list(payload) == ["decision", "probability", "heatmap", "faces"]
    assert len(payload["faces"]) == 1
    face = payload["faces"][0]
    assert list(face) == ["box", "score", "probability", "decision"]
    assert iou(tuple(face["box"]), ASTRONAUT_FACE) > 0.6 and face["score"] >= 0.9
    assert payload["probability"] == face["probability"] and payload["decision"] == face["decision"]
    assert payload["decision"] == ("FAKE" if payload["probability"] >= 0.5 else "REAL")
    assert payload["heatmap"] == str(out / "gradcam.png")
    with Image.open(payload["heatmap"]) as heat:
        assert heat.format == "PNG" and heat.size == (512, 512)


def test_without_faces_the_output_is_unchanged(
    tiny_checkpoint: Path, images: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = ["--frame", images["astronaut"], "--weights", tiny_checkpoint, "--out", tmp_path / "o", "--no-heatmap"]
    code, stdout, _ = run(capsys, *args)
    assert code == 0 and list(json.loads(stdout)) == ["decision", "probability", "heatmap"]


def test_no_face_is_a_one_line_error(
    tiny_checkpoint: Path, images: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    code, stdout, err = run(capsys, "--frame", images["coffee"], "--weights", tiny_checkpoint, "--out", out, "--faces")
    assert code == 2 and stdout == ""
    expected = f"error: {images['coffee']}: {NO_FACE}; run without --faces to score the whole image"
    assert err.strip().splitlines() == [expected]
    assert not (out / "gradcam.png").exists()


def test_face_margin_needs_faces(
    tiny_checkpoint: Path, images: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = ["--frame", images["astronaut"], "--weights", tiny_checkpoint, "--out", tmp_path, "--face-margin", "2"]
    code, stdout, err = run(capsys, *args)
    assert code == 2 and stdout == "" and err.strip() == "error: --face-margin only applies with --faces"
    with pytest.raises(SystemExit):
        main([*map(str, args[:-1]), "0", "--faces"])  # margin must be > 0


def test_most_suspicious_face_decides(
    predictor: Predictor, images: dict[str, Path], detector: FaceDetector, tmp_path: Path
) -> None:
    assert (predictor.face_margin, predictor.face_size) == (1.3, 32)
    result = predictor.predict_faces(images["pair"], detector)
    assert isinstance(result, FacePrediction) and len(result.faces) == 2 and result.path == str(images["pair"])
    probs = [f.probability for f in result.faces]
    assert result.probability == max(probs) and result.top.probability == max(probs)
    for fs in result.faces:
        assert fs.crop_box == square_box(fs.face.box, 1.3, 640, 320)
        assert fs.prediction.heatmap.shape == (32, 32)  # at the scored crop's size
    faces = [[f.face for f in result.faces]]
    for threshold, expected in ((0.0, "FAKE"), (1.0, "REAL")):
        strict = Predictor(predictor.model, predictor.image_size, threshold)
        assert strict.score_faces([result.image], faces, heatmaps=False)[0].decision == expected
    picture = result.overlay()
    assert picture.size == (640, 320) and picture.mode == "RGB"
    payload = result.to_dict(tmp_path / "h.png")
    assert [f["probability"] for f in payload["faces"]] == [round(p, 4) for p in probs]

    with pytest.raises(NoFaceError, match="no face found"):
        predictor.predict_faces(Image.open(images["coffee"]), detector)


def test_checkpoint_face_settings_and_margin_override(
    tiny_checkpoint: Path, images: dict[str, Path], detector: FaceDetector, tmp_path: Path
) -> None:
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    weights = tmp_path / "faces.pth"
    torch.save({**ckpt, "faces": {"margin": 1.8, "size": None}}, weights)  # trained on native-size crops
    predictor = Predictor.from_checkpoint(weights, "cpu")
    assert (predictor.face_margin, predictor.face_size) == (1.8, None)
    image = Image.open(images["astronaut"])
    face = detector.detect(image)[0]
    side = max(face.box[2] - face.box[0], face.box[3] - face.box[1])
    default = predictor.score_faces([image], [[face]], heatmaps=False)[0].faces[0]
    assert default.crop_box[2] - default.crop_box[0] == round(1.8 * side)
    wider = predictor.score_faces([image], [[face]], margin=2.2, heatmaps=True)[0].faces[0]
    assert wider.crop_box[2] - wider.crop_box[0] == round(2.2 * side)
    assert wider.prediction.heatmap.shape == (round(2.2 * side),) * 2  # native crop: heatmap at its size


def test_folder_mode_with_faces(
    tiny_checkpoint: Path, images: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("astronaut", "pair", "coffee"):
        (folder / images[name].name).write_bytes(images[name].read_bytes())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 50)
    out = tmp_path / "out"
    args = ["--input", folder, "--weights", tiny_checkpoint, "--out", out, "--faces", "--no-progress"]
    code, stdout, err = run(capsys, *args, "--batch-size", "2")
    assert code == 0, err
    summary = json.loads(stdout)
    assert (summary["scored"], summary["bad"]) == (2, 2)
    assert err.strip() == f"warning: 2 file(s) could not be scored; see {out / 'predictions.csv'}"
    with open(out / "predictions.csv", newline="") as fh:
        rows = {Path(r["path"]).name: r for r in csv.DictReader(fh)}
        fh.seek(0)
        assert next(csv.reader(fh)) == [*CSV_COLUMNS, "n_faces"]
    assert rows["astronaut.png"]["n_faces"] == "1" and rows["pair.png"]["n_faces"] == "2"
    for name in ("astronaut.png", "pair.png"):
        assert 0 <= float(rows[name]["probability"]) <= 1 and rows[name]["error"] == ""
        assert Path(rows[name]["heatmap"]).is_file()
    assert rows["coffee.jpg"]["error"] == NO_FACE and rows["coffee.jpg"]["n_faces"] == "0"
    assert rows["coffee.jpg"]["probability"] == "" and rows["coffee.jpg"]["heatmap"] == ""
    assert rows["broken.jpg"]["error"] and rows["broken.jpg"]["n_faces"] == ""

    # the same folder without --faces: the CSV keeps its usual columns
    code, _, _ = run(
        capsys, "--input", folder, "--weights", tiny_checkpoint, "--out", tmp_path / "plain", "--no-heatmap"
    )
    with open(tmp_path / "plain" / "predictions.csv", newline="") as fh:
        assert code == 0 and next(csv.reader(fh)) == list(CSV_COLUMNS)


def test_whole_image_on_a_face_model_warns_to_use_faces(
    tiny_checkpoint: Path, images: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    weights = tmp_path / "faces.pth"
    torch.save({**ckpt, "faces": {"margin": 1.3, "size": 32}}, weights)
    args = ["--frame", images["astronaut"], "--weights", weights, "--out", tmp_path / "o", "--no-heatmap"]
    code, stdout, err = run(capsys, *args)
    assert code == 0 and list(json.loads(stdout)) == ["decision", "probability", "heatmap"]
    assert "trained on face crops (margin 1.3)" in err and "--faces" in err
    code, _, err = run(capsys, *args, "--faces")
    assert code == 0 and "trained on face crops" not in err
    _, _, err = run(capsys, "--frame", images["astronaut"], "--weights", tiny_checkpoint, "--out", tmp_path / "p")
    assert "trained on face crops" not in err  # a whole-image model: nothing to say
