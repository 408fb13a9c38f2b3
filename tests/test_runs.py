"""Run-folder helpers: JSON of numpy/torch values, metrics sections, path anchoring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from deepfake_lib.core import runs


def test_write_json_converts_numpy_and_torch_values(tmp_path: Path) -> None:
    data = {
        "scalar": np.float32(0.5), "int": np.int64(3), "array": np.array([[1, 2], [3, 4]]),
        "tensor": torch.tensor([0.25, 0.75]), "scalar_tensor": torch.tensor(2.0), "path": tmp_path,
    }  # fmt: skip
    runs.write_json(tmp_path / "x.json", data)
    assert runs.read_json(tmp_path / "x.json") == {
        "scalar": 0.5, "int": 3, "array": [[1, 2], [3, 4]], "tensor": [0.25, 0.75], "scalar_tensor": 2.0,
        "path": str(tmp_path),
    }  # fmt: skip


def test_update_metrics_replaces_one_section(tmp_path: Path) -> None:
    runs.update_metrics(tmp_path, "data", {"n": 1})
    runs.update_metrics(tmp_path, "train", {"best_epoch": 2})
    runs.update_metrics(tmp_path, "data", {"n": 5})
    assert runs.read_json(tmp_path / "metrics.json") == {"data": {"n": 5}, "train": {"best_epoch": 2}}


def test_relative_paths_are_anchored_at_the_project_root(monkeypatch) -> None:
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root / "notebooks")  # as in Jupyter
    assert runs.resolve_path("data/demo") == root / "data" / "demo"
    assert runs.resolve_path("/abs/x") == Path("/abs/x")
