"""Issue 6, point 3: checkpoints load with weights_only only, bad ones are refused, writes are atomic."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from deepfake_lib import models as M
from deepfake_lib.core.runs import atomic_write
from tests.conftest import tiny_model

ROOT = Path(__file__).resolve().parents[1]


def test_pickle_with_a_code_payload_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "payload_ran"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "best_model.pth"
    ckpt = M.model_checkpoint(tiny_model())
    ckpt["extra"] = Exploit()
    torch.save(ckpt, evil)
    with pytest.raises(M.CheckpointError, match="refused"):
        M.load_model(evil)
    assert not marker.exists()


def test_truncated_and_mismatched_checkpoints(tmp_path: Path, tiny_checkpoint: Path) -> None:
    blob = tiny_checkpoint.read_bytes()
    for n in (10, len(blob) // 3, len(blob) - 100):
        (tmp_path / "t.pth").write_bytes(blob[:n])
        with pytest.raises(M.CheckpointError, match="corrupt or truncated"):
            M.load_model(tmp_path / "t.pth")
    other = M.model_checkpoint(tiny_model(backbone="efficientnet-b1"))
    other["config"]["backbone"] = "efficientnet-b0"  # b1 weights under a b0 label
    M.save_checkpoint(other, tmp_path / "b1.pth")
    with pytest.raises(M.CheckpointError, match="do not fit"):
        M.load_model(tmp_path / "b1.pth")
    with pytest.raises(M.CheckpointError, match="trained at image size 32"):
        M.load_model(tiny_checkpoint, image_size=64)


def test_a_failed_save_leaves_the_previous_checkpoint_intact(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "best_model.pth"
    M.save_model(tiny_model(), path, threshold=0.3)
    before = path.read_bytes()

    def dies_half_way(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        M.save_model(tiny_model(), path, threshold=0.9)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


SAVE_LOOP = """
import sys, torch
from deepfake_lib.models.checkpoint import save_checkpoint
path, i = sys.argv[1], 0
big = {"format": "x", "blob": torch.randn(4_000_000)}
while True:
    i += 1
    big["i"] = i
    save_checkpoint(big, path)
    print(i, flush=True)
"""


def test_killing_the_process_while_saving_never_corrupts_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "last.pth"
    proc = subprocess.Popen([sys.executable, "-c", SAVE_LOOP, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # one save finished
        time.sleep(0.23)  # somewhere in the middle of a later save
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    loaded = torch.load(path, weights_only=True)
    assert loaded["i"] >= 1 and loaded["blob"].shape == (4_000_000,)


def test_atomic_write_replaces_in_one_step(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    target.write_text("old")
    atomic_write(target, lambda tmp: tmp.write_text("new"))
    assert target.read_text() == "new" and len(list(tmp_path.iterdir())) == 1


def test_random_bytes_are_called_corrupt_not_malicious(tmp_path: Path) -> None:
    (tmp_path / "garbage.pth").write_bytes(os.urandom(4096))
    with pytest.raises(M.CheckpointError, match="corrupt or truncated"):
        M.load_checkpoint(tmp_path / "garbage.pth")


def test_atomic_write_gives_normal_file_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "a.json", lambda tmp: tmp.write_text("{}"))
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_checkpoint_tta_is_read_once_and_an_unknown_one_is_refused_at_load(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    ckpt = M.load_checkpoint(tiny_checkpoint)
    assert M.checkpoint_tta({k: v for k, v in ckpt.items() if k != "tta"}) == "none"  # written before 03
    assert M.checkpoint_tta({**ckpt, "tta": None}) == "none"
    assert M.checkpoint_tta({**ckpt, "tta": "more"}) == "more"
    bad = tmp_path / "bad_tta.pth"
    M.save_checkpoint({**ckpt, "tta": "rotate"}, bad)
    for load in (M.load_checkpoint, M.load_model):
        with pytest.raises(M.CheckpointError, match=r"bad_tta\.pth: unknown test-time augmentation tta='rotate'"):
            load(bad)
    Image.new("RGB", (40, 40), (120, 90, 60)).save(tmp_path / "x.png")
    proc = subprocess.run(
        [sys.executable, "-m", "deepfake_lib.predict", "--frame", str(tmp_path / "x.png"), "--weights", str(bad),
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0 and "unknown test-time augmentation" in proc.stderr and "Traceback" not in proc.stderr
