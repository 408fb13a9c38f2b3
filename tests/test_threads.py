"""Threads that share the machine: PyTorch's intra-op threads sized to the cores other processes leave free."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deepfake_lib.core import threads


def test_the_free_cores_set_the_threads() -> None:
    assert threads.free_threads(0.0, 2) == 2 and threads.free_threads(0.3, 2) == 2
    assert threads.free_threads(0.5, 2) == 1 and threads.free_threads(1.0, 2) == 1  # a core half busy is taken
    assert threads.free_threads(2.0, 2) == 1  # never fewer than one
    assert threads.free_threads(None, 4) == 4  # unknown load: every usable core


def test_cpu_times_read_proc_stat(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8\n")
    assert threads._cpu_times(stat) == (150, 1000)
    stat.write_text("cpu  100 300 50 500 50 0 0 0 0 0\n")  # niced work yields its core: counted as free
    assert threads._cpu_times(stat) == (150, 1000)
    assert threads._cpu_times(tmp_path / "missing") is None and threads.busy_cores(0.0, tmp_path / "missing") is None


def test_share_cpu_follows_the_load_and_keeps_an_explicit_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.setattr(threads, "usable_cores", lambda: 2)
        monkeypatch.setattr(threads, "busy_cores", lambda interval=0.25: 1.0)
        assert threads.share_cpu() == 1 == torch.get_num_threads()
        monkeypatch.setattr(threads, "busy_cores", lambda interval=0.25: 0.0)
        assert threads.share_cpu() == 2 == torch.get_num_threads()
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        monkeypatch.setattr(threads, "busy_cores", lambda interval=0.25: 1.0)
        assert threads.share_cpu() == 2  # the user's (or the test suite's) setting is left alone
    finally:
        torch.set_num_threads(before)
