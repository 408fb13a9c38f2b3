"""Issue 6, point 1 for evaluation and prediction: the hostile corpus through evaluate, the predict CLI and
its folder mode. Every bad file is named with its reason; every good file gets a score."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from deepfake_lib.cli.predict import main
from deepfake_lib.evaluation.evaluate import predict_split, split_report
from deepfake_lib.models.checkpoint import load_model
from tests.hostile import BAD_FILES, add_symlink_loop, write_bad, write_odd_but_good


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], list[str]]:
    root = tmp_path_factory.mktemp("corpus")
    bad = write_bad(root / "test" / "fake")
    good = write_odd_but_good(root / "test" / "real")
    shutil.copy(root / "test" / "real" / "mode_L.png", root / "test" / "fake" / "ok.png")
    add_symlink_loop(root / "test" / "real")
    return root, bad, good


def test_evaluation_scores_good_files_and_reports_bad_ones(corpus, tiny_checkpoint: Path) -> None:
    root, bad, good = corpus
    model, _ = load_model(tiny_checkpoint)
    preds = predict_split(model, root, "test", batch_size=4, progress=False)
    assert sorted(Path(p).name for p in preds.paths) == sorted([*good, "ok.png"])
    reasons = {Path(p).name: r for p, r in preds.bad}
    for name, fragment in bad.items():
        assert fragment in reasons[name]
    assert "symlink loop" in reasons["loop"]
    report = split_report(preds, 0.5)
    assert report["n_skipped"] == len(bad) + 1 and report["n"] == len(good) + 1
    assert {Path(s["path"]).name for s in report["skipped"]} == {*bad, "loop"}


def test_folder_mode_names_every_bad_file_in_the_csv(corpus, tiny_checkpoint: Path, tmp_path: Path, capsys) -> None:
    root, bad, good = corpus
    out = tmp_path / "out"
    code = main(["--input", str(root), "--weights", str(tiny_checkpoint), "--out", str(out), "--no-progress",
                 "--num-workers", "0"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0
    summary = json.loads(captured.out)
    assert summary["scored"] == len(good) + 1 and summary["bad"] == len(bad) + 1
    assert f"warning: {len(bad) + 1} file(s) could not be scored" in captured.err
    with open(out / "predictions.csv", newline="", encoding="utf-8") as fh:
        rows = {Path(r["path"]).name: r for r in csv.DictReader(fh)}
    for name, fragment in bad.items():
        assert fragment in rows[name]["error"] and rows[name]["probability"] == ""
    for name in [*good, "ok.png"]:
        assert rows[name]["error"] == "" and 0.0 <= float(rows[name]["probability"]) <= 1.0
        assert Path(rows[name]["heatmap"]).is_file()
    assert "fälschung bild ü 図.png" in rows  # non-ASCII names survive the CSV round trip


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_single_image_mode_refuses_each_bad_file_in_one_line(
    corpus, tiny_checkpoint: Path, tmp_path, capsys, name
) -> None:
    root, bad, _ = corpus
    code = main(
        ["--frame", str(root / "test" / "fake" / name), "--weights", str(tiny_checkpoint), "--out", str(tmp_path)]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and bad[name] in err[0]
    assert not (tmp_path / "gradcam.png").exists()


def test_single_image_mode_scores_each_odd_but_good_file(corpus, tiny_checkpoint: Path, tmp_path, capsys) -> None:
    root, _, good = corpus
    for name in good:
        out = tmp_path / name.replace(" ", "_")
        assert (
            main(["--frame", str(root / "test" / "real" / name), "--weights", str(tiny_checkpoint), "--out", str(out)])
            == 0
        )
        result = json.loads(capsys.readouterr().out)
        assert result["decision"] in ("FAKE", "REAL") and Path(result["heatmap"]).is_file(), name
