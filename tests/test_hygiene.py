"""Repository hygiene: notebooks (parameters cell, no outputs, thin), environment.yml vs pyproject.toml."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

from deepfake_lib.pipeline import declared_parameters, list_notebooks

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# What the pipeline passes to every notebook; each notebook must declare these.
PIPELINE_PARAMS = {"DATA_DIR", "RUN_DIR", "REPO_URL", "MOUNT_DRIVE"}


def test_numbered_notebooks_exist() -> None:
    assert [p.name[:2] for p in list_notebooks(ROOT / "notebooks").values()] == sorted(p.name[:2] for p in NOTEBOOKS)
    assert NOTEBOOKS[0].name == "01_data_balance.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_hygiene(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    params = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    tree = ast.parse(params[0].source)
    names = [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets]
    assert names and all(re.fullmatch(r"[A-Z][A-Z0-9_]*", n) for n in names)
    assert all(isinstance(node, ast.Assign) for node in tree.body), "parameters cell holds assignments only"
    assert set(declared_parameters(path)) == set(names), "papermill must parse every parameter"
    assert set(names) >= PIPELINE_PARAMS
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0] is params[0], "the parameters cell is the first code cell"
    assert '"google.colab" in sys.modules' in code[1].source and "REPO_URL" in code[1].source, "Colab set-up next"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, "outputs must be stripped"
            src = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("!", "%")))
            defs = [n for n in ast.walk(ast.parse(src)) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Lambda))]
            assert not defs, "notebooks call the library; no function or class definitions"


def test_nbstripout_finds_nothing_to_strip() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nbstripout", "--verify", *map(str, NOTEBOOKS)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = project["dependencies"] + extras["dev"] + extras["onnx"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = [p for p in pip if not p.startswith("-e")]
    assert sorted(listed) == sorted(wanted)
    assert any(p.startswith("-e .") for p in pip), "environment.yml installs the package itself"
    assert "pip" in env["dependencies"] and any(str(d).startswith("python") for d in env["dependencies"])
    assert len({_name(r) for r in listed}) == len(listed)


def test_gitattributes_routes_data_and_weights_to_lfs_but_not_notebooks() -> None:
    text = (ROOT / ".gitattributes").read_text()
    for pattern in ("data/**", "*.pth", "*.pt", "*.onnx", "*.safetensors"):
        assert re.search(rf"^{re.escape(pattern)} filter=lfs", text, re.M), pattern
    assert not re.search(r"^\*\.ipynb .*filter=lfs", text, re.M)


def test_repository_url_comes_from_pyproject(tmp_path: Path) -> None:
    """Notebooks' REPO_URL and the Colab badges of the README and the docs pages are pyproject's [project.urls]
    Repository, and a fork's one-line change there reaches all of them through ``python -m deepfake_lib.cli.repo_url``."""
    from deepfake_lib.cli import repo_url

    assert repo_url.out_of_step(ROOT) == []
    fork = tmp_path / "fork"
    shutil.copytree(ROOT / "notebooks", fork / "notebooks")
    shutil.copytree(ROOT / "docs", fork / "docs")
    shutil.copy(ROOT / "README.md", fork / "README.md")
    text = (ROOT / "pyproject.toml").read_text().replace(repo_url.repository_url(ROOT), "https://github.com/me/my-fork")
    (fork / "pyproject.toml").write_text(text)
    assert repo_url.main(["--check", "--root", str(fork)]) == 1
    assert repo_url.main(["--root", str(fork)]) == 0 and repo_url.out_of_step(fork) == []
    for page in ("README.md", "docs/workflow.md"):  # the notebooks' Colab badges
        text = (fork / page).read_text()
        assert "colab.research.google.com/github/me/my-fork/blob/main/notebooks/01_data_balance.ipynb" in text, page
        assert "deepfake-workbench/deepfake-workbench" not in text, page
    assert all("deepfake-workbench/deepfake-workbench" not in p.read_text() for p in (fork / "docs").glob("*.md"))
    for nb in sorted((fork / "notebooks").glob("*.ipynb")):
        params = next(c for c in json.loads(nb.read_text())["cells"] if "parameters" in c["metadata"].get("tags", []))
        assert 'REPO_URL = "https://github.com/me/my-fork"' in "".join(params["source"]), nb.name
