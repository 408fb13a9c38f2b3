"""The suite's own scheduling: under ``make test`` (pytest-xdist, ``--dist loadgroup``) every test that uses one of
the costly shared fixtures runs on one worker, so the fixture is built once, not once per worker."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CONFTEST = """
import os
import pytest
from tests.conftest import SHARED_FIXTURE_GROUPS, pytest_collection_modifyitems  # noqa: F401  (the hook under test)

@pytest.fixture(scope="session")
def notebook_run():
    return os.environ["PYTEST_XDIST_WORKER"]
"""

TESTS = """
import pytest

@pytest.mark.parametrize("i", range(4))
def test_shared_{name}(notebook_run, i):
    assert notebook_run

@pytest.mark.parametrize("i", range(4))
def test_free_{name}(i):
    pass
"""


def test_tests_of_a_shared_fixture_run_on_one_worker(tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    (tmp_path / "conftest.py").write_text(CONFTEST)
    for name in ("a", "b"):
        (tmp_path / f"test_{name}.py").write_text(TESTS.format(name=name))
    cmd = [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-v", "-p", "no:cacheprovider",
           "--rootdir", str(tmp_path), str(tmp_path)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    workers = re.findall(r"\[(gw\d)\].*PASSED .*::test_shared_", proc.stdout)
    assert len(workers) == 8 and len(set(workers)) == 1, proc.stdout[-3000:]
