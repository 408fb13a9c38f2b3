"""The output-path policy, permissions reported as permissions in scans, and the pipeline found from any folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deepfake_lib import pipeline
from deepfake_lib.cli.paths import check_input, check_output
from deepfake_lib.cli.runner import CommandError
from deepfake_lib.core.images import ImageLoadError, list_image_files, list_samples, load_image
from deepfake_lib.pipeline.notebooks import NOTEBOOKS_ENV, notebook_folders

ROOT = Path(__file__).resolve().parents[1]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def test_an_output_reached_through_a_symlink_is_still_the_input(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "link").symlink_to(data)
    with pytest.raises(CommandError, match="inside the input folder"):
        check_output(tmp_path / "link" / "out", "--out", "folder", [data], [data])
    with pytest.raises(CommandError, match="is the input"):
        check_output(tmp_path / "link", "--out", "folder", [data])


def test_an_output_beside_the_inputs_is_created_and_returned_as_given(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    out = tmp_path / "runs" / "a"
    assert check_output(out, "--out", "folder", [data], [data]) == out and out.is_dir()
    assert not list(out.iterdir())  # the write probe leaves nothing behind
    assert check_output(tmp_path / "new" / "f.json", "--out", "file", create=False) == tmp_path / "new" / "f.json"
    assert not (tmp_path / "new").exists()  # create=False only looks


def test_an_input_folder_that_cannot_be_listed_is_named_as_a_permission_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(CommandError, match=f"cannot read --input {locked}: permission denied"):
        check_input(locked, "--input", "folder")


def test_an_unreadable_subfolder_is_listed_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """os.walk passes over a folder it cannot list; the scan lists it as skipped, like any bad file."""
    from PIL import Image

    (tmp_path / "ok").mkdir()
    (tmp_path / "locked").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "ok" / "a.png")
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path) == tmp_path / "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    for listing in (list_image_files, list_samples):
        files, skipped = listing(tmp_path)
        assert files == [tmp_path / "ok" / "a.png"]
        assert [(s.path, s.reason) for s in skipped] == [
            (tmp_path / "locked", "cannot read folder (permission denied): not scanned")
        ]


def test_an_unreadable_image_is_a_permission_problem_not_a_corrupt_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    path = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(path)
    real_open = Image.open

    def refuse(fp, *args, **kwargs):
        if Path(fp) == path:
            raise PermissionError(13, "Permission denied", str(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", refuse)
    with pytest.raises(ImageLoadError, match="permission denied"):
        load_image(path)


@pytest.mark.skipif(IS_ROOT or not hasattr(os, "geteuid"), reason="root reads chmod-000 files")
def test_chmod_000_folder_and_file_read_as_permission_denied(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "locked").mkdir()
    image = tmp_path / "b.png"
    Image.new("RGB", (8, 8)).save(image)
    os.chmod(tmp_path / "locked", 0)
    os.chmod(image, 0)
    try:
        _, skipped = list_image_files(tmp_path)
        assert any("permission denied" in s.reason for s in skipped)
        with pytest.raises(ImageLoadError, match="permission denied"):
            load_image(image)
    finally:
        os.chmod(tmp_path / "locked", 0o755)
        os.chmod(image, 0o644)


def test_the_pipeline_finds_its_notebooks_from_any_folder(tmp_path: Path) -> None:
    code = "from deepfake_lib import pipeline; print(sorted(pipeline.list_notebooks()))"
    env = {k: v for k, v in os.environ.items() if k != NOTEBOOKS_ENV}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(sorted(pipeline.list_notebooks(ROOT / "notebooks")))


def test_no_notebooks_says_where_it_looked_and_how_to_point_at_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(NOTEBOOKS_ENV, str(tmp_path / "empty"))
    assert notebook_folders()[0] == tmp_path / "empty"
    with pytest.raises(pipeline.PipelineInputError) as exc:
        pipeline.list_notebooks(tmp_path / "empty")
    assert str(tmp_path / "empty") in str(exc.value) and NOTEBOOKS_ENV in str(exc.value)
    assert exc.value.exit_code == 2


def test_a_parameter_out_of_range_names_the_range() -> None:
    assert (
        pipeline.parameter_problem("IMAGE_SIZE", 16)
        == "IMAGE_SIZE 16 is out of range: it takes values between 32 and 4096"
    )
    assert pipeline.parameter_problem("NUM_WORKERS", -1) is None
    assert pipeline.parameter_problem("BATCH_SIZE", 0) == "BATCH_SIZE 0 is out of range: it takes values from 1"
    assert pipeline.parameter_problem("BATCH_SIZE", True) == "BATCH_SIZE must be a number, got True"
    assert pipeline.parameter_problem("THRESHOLD", None) is None and pipeline.parameter_problem("SEED", -5) is None
