"""Folder prediction keeps every finished row on disk: Ctrl-C leaves a valid CSV, ``--resume`` scores only the rest
and ends with the CSV an uninterrupted run writes, and a rerun without it starts clean."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from deepfake_lib.cli.predict import main
from deepfake_lib.data.faces import Face
from deepfake_lib.predict.csv_log import CsvLog, read_log
from deepfake_lib.predict.folder import FolderInterrupted, predict_folder, predict_folder_faces
from deepfake_lib.predict.predictors import Predictor
from deepfake_lib.predict.results import CSV_COLUMNS, FACE_CSV_COLUMNS, PredictError

N_IMAGES = 7
BATCH = 3  # batches of 3, 3 and 1


@pytest.fixture
def folder(tiny_data: Path, tmp_path: Path) -> Path:
    """Seven images in two sub-folders (two of them share the stem ``x``)."""
    root = tmp_path / "in"
    sources = sorted((tiny_data / "val").rglob("*.jpg"))[:N_IMAGES]
    for i, src in enumerate(sources):
        rel = Path("a" if i % 2 else "b") / ("x.jpg" if i < 2 else src.name)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, root / rel)
    return root


@pytest.fixture
def predictor(tiny_checkpoint: Path) -> Predictor:
    return Predictor.from_checkpoint(tiny_checkpoint, "cpu")


def digests(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[list[str], list[int | None]]]:
    """Every path the predictor is asked to score, and a switch: ``stop[0] = n`` raises KeyboardInterrupt after
    ``n`` batches of the next prediction have been handed over (None: run to the end)."""
    paths: list[str] = []
    stop: list[int | None] = [None]
    original = Predictor.iter_files

    def iter_files(self: Predictor, files, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        paths.extend(map(str, files))
        for done, scores in enumerate(original(self, files, *args, **kwargs)):
            if done == stop[0]:
                raise KeyboardInterrupt
            yield scores

    monkeypatch.setattr(Predictor, "iter_files", iter_files)
    yield paths, stop


def cli(capsys: pytest.CaptureFixture, folder: Path, ckpt: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    args = ["--input", folder, "--weights", ckpt, "--out", out, "--batch-size", BATCH, "--num-workers", "0"]
    code = main([*map(str, args), "--no-progress", "--device", "cpu", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def test_interrupted_then_resumed_equals_an_uninterrupted_run(
    folder: Path, tiny_checkpoint: Path, tmp_path: Path, asked, capsys: pytest.CaptureFixture
) -> None:
    paths, stop = asked
    before = digests(folder)
    out = tmp_path / "out"
    code, stdout, err = cli(capsys, folder, tiny_checkpoint, out)
    assert code == 0, err
    reference = (out / "predictions.csv").read_bytes()
    listing = list(paths)
    summary = json.loads(stdout)
    assert len(listing) == N_IMAGES and summary["scored"] == N_IMAGES and "resumed" not in summary
    shutil.rmtree(out)

    # Ctrl-C after the first batch: exit 130, one line, and a valid CSV of exactly that batch
    paths.clear()
    stop[0] = 1
    code, stdout, err = cli(capsys, folder, tiny_checkpoint, out)
    csv_path = out / "predictions.csv"
    assert code == 130 and stdout == ""
    assert err == f"error: interrupted: {BATCH} scored rows kept in {csv_path}; rerun with --resume to score the rest\n"
    columns, rows = read_rows(csv_path)
    assert columns == list(CSV_COLUMNS)
    assert [r["path"] for r in rows] == listing[:BATCH]
    assert all(0 <= float(r["probability"]) <= 1 and Path(r["heatmap"]).is_file() for r in rows)
    assert digests(folder) == before

    # --resume scores only the other files and ends with the uninterrupted run's CSV, byte for byte
    paths.clear()
    stop[0] = None
    code, stdout, err = cli(capsys, folder, tiny_checkpoint, out, "--resume")
    assert code == 0, err
    assert paths == listing[BATCH:]
    summary = json.loads(stdout)
    assert summary["resumed"] == BATCH and summary["scored"] == N_IMAGES
    assert csv_path.read_bytes() == reference
    assert sorted(p.name for p in out.iterdir()) == ["heatmaps", "predictions.csv"]  # no temporary file left
    assert digests(folder) == before

    # resuming a finished run scores nothing; without --resume a rerun starts clean and scores everything
    paths.clear()
    code, stdout, _ = cli(capsys, folder, tiny_checkpoint, out, "--resume")
    assert code == 0 and paths == [] and json.loads(stdout)["resumed"] == N_IMAGES
    assert csv_path.read_bytes() == reference
    code, stdout, _ = cli(capsys, folder, tiny_checkpoint, out)
    assert code == 0 and paths == listing and "resumed" not in json.loads(stdout)
    assert csv_path.read_bytes() == reference
    assert digests(folder) == before


def test_a_rerun_without_resume_starts_clean(
    folder: Path, predictor: Predictor, tmp_path: Path, asked, capsys: pytest.CaptureFixture
) -> None:
    paths, stop = asked
    out = tmp_path / "out"
    stop[0] = 1
    with pytest.raises(FolderInterrupted) as caught:
        predict_folder(predictor, folder, out, BATCH, 0, heatmaps=False, progress=False)
    assert caught.value.scored == BATCH and caught.value.csv_path == out / "predictions.csv"
    assert isinstance(caught.value, KeyboardInterrupt)  # still Ctrl-C to a caller that does not know it
    # the rerun's CSV starts over: while its first batch runs, the earlier rows are gone
    paths.clear()
    stop[0] = 0
    with pytest.raises(FolderInterrupted) as caught:
        predict_folder(predictor, folder, out, BATCH, 0, heatmaps=False, progress=False)
    assert caught.value.scored == 0 and read_rows(out / "predictions.csv") == (list(CSV_COLUMNS), [])
    stop[0] = None
    result = predict_folder(predictor, folder, out, BATCH, 0, heatmaps=False, progress=False)
    assert result.resumed is None and result.scored == N_IMAGES and "resumed" not in result.summary()


def test_resume_keeps_only_rows_of_files_still_there(folder: Path, predictor: Predictor, tmp_path: Path, asked) -> None:
    paths, stop = asked
    out = tmp_path / "out"
    stop[0] = 2
    with pytest.raises(FolderInterrupted):
        predict_folder(predictor, folder, out, BATCH, 0, progress=False)
    scored = [r["path"] for r in read_log(out / "predictions.csv", CSV_COLUMNS) or []]
    assert len(scored) == 2 * BATCH
    Path(scored[0]).unlink()  # gone from the folder: its row is dropped
    Path(read_log(out / "predictions.csv", CSV_COLUMNS)[1]["heatmap"]).unlink()  # its heatmap gone: scored again
    paths.clear()
    stop[0] = None
    result = predict_folder(predictor, folder, out, BATCH, 0, progress=False, resume=True)
    assert result.resumed == 2 * BATCH - 2 and result.scored == N_IMAGES - 1
    assert sorted(paths) == sorted(set(map(str, sorted(folder.rglob("*.jpg")))) - set(scored[2:]))
    assert [r["path"] for r in result.rows] == [r["path"] for r in read_log(result.csv_path, CSV_COLUMNS) or []]
    assert all(Path(r["heatmap"]).is_file() for r in result.rows)


def test_a_cut_last_line_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "predictions.csv"
    rows = [
        {"path": "a.jpg", "probability": "0.100000", "decision": "REAL", "heatmap": "", "error": ""},
        {"path": "b,\n.jpg", "probability": "0.900000", "decision": "FAKE", "heatmap": "", "error": ""},
    ]
    with CsvLog(path, CSV_COLUMNS, rows[:1]) as log:
        log.append(rows[1:])
        assert log.scored == 2
    whole = path.read_bytes()
    assert read_log(path, CSV_COLUMNS) == rows
    for cut in (1, 8, len(b"0.900000,FAKE,,\n"), len(b'.jpg",0.900000,FAKE,,\n')):  # mid-line, inside the quotes
        path.write_bytes(whole[:-cut])
        assert read_log(path, CSV_COLUMNS) == rows[:1], cut
    with open(path, newline="", encoding="utf-8") as fh:  # what a reader without that care would see
        assert len(list(csv.DictReader(fh))) == 2
    path.write_bytes(b"path,probab")  # killed while the header was written: nothing to resume
    assert read_log(path, CSV_COLUMNS) is None
    assert read_log(tmp_path / "none.csv", CSV_COLUMNS) is None


def test_resume_refuses_a_csv_of_other_columns(
    folder: Path, tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    csv_path = out / "predictions.csv"
    csv_path.write_text(",".join(FACE_CSV_COLUMNS) + "\nx.jpg,0.5,FAKE,,,1\n")
    before = digests(folder), csv_path.read_bytes()
    code, stdout, err = cli(capsys, folder, tiny_checkpoint, out, "--resume")
    assert code == 2 and stdout == "" and len(err.splitlines()) == 1
    assert err.startswith(f"error: {csv_path}: cannot resume from it") and "without --resume" in err
    assert (digests(folder), csv_path.read_bytes()) == before

    # only folder mode resumes
    image = next(folder.rglob("*.jpg"))
    code, _, err = cli(capsys, image, tiny_checkpoint, tmp_path / "one", "--resume")
    assert code == 2 and err == "error: --resume only applies to a folder (--input FOLDER)\n"

    # no CSV yet: --resume just starts
    code, stdout, err = cli(capsys, folder, tiny_checkpoint, tmp_path / "fresh", "--resume", "--no-heatmap")
    assert code == 0 and err == "" and json.loads(stdout)["resumed"] == 0


class WholeImageDetector:
    """A stand-in for MTCNN: one face covering each image."""

    min_score = 0.9

    def detect_batch(self, images: list[Image.Image]) -> list[list[Face]]:
        return [[Face((0.0, 0.0, float(im.width), float(im.height)), 0.99)] for im in images]


def test_face_mode_resumes_too(folder: Path, predictor: Predictor, tmp_path: Path) -> None:
    out = tmp_path / "out"
    detector = WholeImageDetector()
    reference = predict_folder_faces(predictor, folder, out, detector, batch_size=BATCH, progress=False)
    expected = reference.csv_path.read_bytes()

    calls: list[int] = []
    stop = [2]  # Ctrl-C on the second batch of faces
    original = predictor.score_faces

    def score_faces(images, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        calls.append(len(images))
        if len(calls) == stop[0]:
            raise KeyboardInterrupt
        return original(images, *args, **kwargs)

    predictor.score_faces = score_faces  # type: ignore[method-assign]
    with pytest.raises(FolderInterrupted) as caught:
        predict_folder_faces(predictor, folder, out, detector, batch_size=BATCH, progress=False)
    assert caught.value.scored == BATCH
    assert read_rows(out / "predictions.csv")[0] == list(FACE_CSV_COLUMNS)
    with pytest.raises(PredictError, match="cannot resume"):
        predict_folder(predictor, folder, out, BATCH, 0, progress=False, resume=True)
    calls.clear()
    stop[0] = 0
    result = predict_folder_faces(predictor, folder, out, detector, batch_size=BATCH, progress=False, resume=True)
    assert calls == [BATCH, N_IMAGES - 2 * BATCH] and result.resumed == BATCH
    assert result.csv_path.read_bytes() == expected
    assert [r["n_faces"] for r in result.rows] == [1] * N_IMAGES


def test_a_kept_row_must_have_its_heatmap_where_this_listing_puts_it(tmp_path: Path) -> None:
    """Files added since the first run can shift the heatmap names: a row whose heatmap is not the one this
    listing gives its file is scored again, so no heatmap is ever shared by two files."""
    from deepfake_lib.predict.folder import _kept_rows

    (tmp_path / "a_gradcam.png").write_bytes(b"png")
    (tmp_path / "b_gradcam.png").write_bytes(b"png")
    old = [
        {"path": "/d/a.jpg", "probability": "0.4", "decision": "REAL", "heatmap": str(tmp_path / "a_gradcam.png"), "error": ""},
        {"path": "/d/b.jpg", "probability": "0.9", "decision": "FAKE", "heatmap": str(tmp_path / "b_gradcam.png"), "error": ""},
        {"path": "/d/c.jpg", "probability": "0.2", "decision": "REAL", "heatmap": "", "error": ""},
    ]  # fmt: skip
    expected = {"/d/a.jpg": str(tmp_path / "a_gradcam.png"), "/d/b.jpg": str(tmp_path / "d__b_gradcam.png"),
                "/d/c.jpg": str(tmp_path / "c_gradcam.png")}  # fmt: skip
    assert list(_kept_rows(old, expected)) == ["/d/a.jpg"]  # b's name moved, c has none where one is wanted
