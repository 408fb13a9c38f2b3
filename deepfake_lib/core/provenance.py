"""What a run was made from, for reproducing and comparing runs: a fingerprint of the data folder's listing and
the versions of the packages that decide the numbers."""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from deepfake_lib.core.files import walk_folder

PROVENANCE_FILE = "provenance.json"  # in a run folder
PACKAGES = ("torch", "torchvision", "numpy", "scikit-learn", "pillow", "opencv-python-headless",
            "efficientnet-pytorch", "efficientnet-lite-pytorch", "facenet-pytorch", "deepfake-workbench")  # fmt: skip


def data_fingerprint(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """A fingerprint of a data folder's listing: ``{"sha256", "files", "bytes"}`` over every file's relative path
    and size (sorted; links followed as every scan follows them, ``files.walk_folder``; hidden names skipped). The same files give the same fingerprint on any
    machine; a file added, removed, renamed or resized changes it (the bytes are not read: it is quick on 100,000
    images, and an edit that keeps a file's size is not seen)."""
    root = Path(folder)
    digest = hashlib.sha256()
    files = size = 0
    for dirpath, dirnames, filenames in walk_folder(root, []):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in sorted(n for n in filenames if not n.startswith(".")):
            path = Path(dirpath) / name
            try:
                n = path.stat().st_size
            except OSError:
                continue  # a broken link: not data
            digest.update(f"{path.relative_to(root).as_posix()}\t{n}\n".encode())
            files, size = files + 1, size + n
    return {"sha256": digest.hexdigest()[:16], "files": files, "bytes": size}


def package_versions() -> dict[str, str | None]:
    """Python, the platform and the installed versions of ``PACKAGES`` (None: not installed)."""
    versions: dict[str, str | None] = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        import torch

        versions["cuda"] = torch.version.cuda
    except ImportError:  # pragma: no cover - torch is a dependency
        versions["cuda"] = None
    return versions


def provenance(data_dir: str | os.PathLike[str] | None) -> dict[str, Any]:
    """``{"data": {"folder", fingerprint...}, "versions": {...}}`` for a run on ``data_dir``."""
    data = None
    if data_dir is not None and Path(data_dir).is_dir():
        data = {"folder": str(Path(data_dir).resolve()), **data_fingerprint(data_dir)}
    return {"data": data, "versions": package_versions()}


def provenance_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """What differs between two provenance records, one line each (data fingerprint, package versions)."""
    lines = []
    da, db = a.get("data") or {}, b.get("data") or {}
    if da.get("sha256") != db.get("sha256"):
        lines.append(
            f"data: {da.get('sha256')} ({da.get('files')} files) -> {db.get('sha256')} ({db.get('files')} files)"
        )
    va, vb = a.get("versions") or {}, b.get("versions") or {}
    lines += [f"{k}: {va.get(k)} -> {vb.get(k)}" for k in sorted(set(va) | set(vb)) if va.get(k) != vb.get(k)]
    return lines
