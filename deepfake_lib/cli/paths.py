"""One output-path policy for every command, checked before any work: an output never equals an input, never lies
inside a folder the command reads, and must be writable; inputs must be readable. Errors name the user's path.

Paths are compared resolved (symlinks followed, ``..`` removed), so ``out/../data`` and a link to ``data`` are
``data``. Nothing here reads file contents.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from deepfake_lib.cli.runner import CommandError
from deepfake_lib.core.files import is_within

PathArg = str | os.PathLike[str]


def resolved(path: PathArg) -> Path:
    """``path`` with ``~``, symlinks and ``..`` resolved (it need not exist); a symlink loop is a
    ``CommandError`` naming the path (Python before 3.13 raises ``RuntimeError`` for one)."""
    p = Path(path).expanduser()
    try:
        return p.resolve(strict=False)
    except (RuntimeError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno != errno.ELOOP:
            raise CommandError(f"{path}: cannot resolve the path ({_reason(exc)})") from None
        raise CommandError(f"{path}: a symlink loop (the link leads back to itself)") from None


def _reason(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return exc.strerror or str(exc)


def check_input(path: PathArg, option: str, kind: Literal["file", "folder", "any"] = "any") -> Path:
    """``path`` exists, is the right kind and can be read (a folder: listed); else ``CommandError`` naming it."""
    p = Path(path)
    resolved(p)  # a symlink loop is named as one, not as "not found"
    if not p.exists():
        raise CommandError(f"{option} {p}: {'' if kind == 'any' else kind + ' '}not found")
    if kind == "file" and not p.is_file():
        raise CommandError(f"{option} {p}: is a folder, not a file")
    if kind == "folder" and not p.is_dir():
        raise CommandError(f"{option} {p}: is a file, not a folder")
    try:
        if p.is_dir():
            with os.scandir(p):
                pass
        else:
            with open(p, "rb"):
                pass
    except OSError as exc:
        raise CommandError(f"cannot read {option} {p}: {_reason(exc)}") from None
    return p


def check_output(
    out: PathArg,
    option: str,
    kind: Literal["file", "folder"],
    inputs: Iterable[PathArg | None] = (),
    read_folders: Iterable[PathArg | None] = (),
    create: bool = True,
    writes: Iterable[str] = (),
) -> Path:
    """Refuse an output that is an input, lies inside a folder that will be read, or cannot be written.

    ``inputs``: files and folders the command reads (None entries are ignored); ``read_folders``: the folders
    among them whose whole contents are read, so outputs inside them would be read back as inputs. ``writes``:
    for a folder output, the names the command writes inside it (``gradcam.png``, ``heatmaps``): none of them may
    be or hold an input. A folder output is created when ``create``; a file output's folder is. Returns ``out``
    as given (messages name it).
    """
    p = Path(out)
    target = resolved(p)
    sources = [s for s in inputs if s is not None]
    for src in sources:
        if resolved(src) == target:
            raise CommandError(f"{option} {p} is the input {src}: choose another output, the input is never replaced")
    for name in writes:
        written = resolved(p / name)
        for src in sources:
            if is_within(resolved(src), written):
                raise CommandError(
                    f"{option} {p}: the output {p / name} would replace the input {src}; choose another output "
                    "folder, the input is never replaced"
                )
    for folder in (f for f in read_folders if f is not None):
        if is_within(target, resolved(folder)):
            raise CommandError(
                f"{option} {p} lies inside the input folder {folder}, which is read: its outputs would be read "
                "back as inputs; choose an output outside it"
            )
    if kind == "folder":
        if p.exists() and not p.is_dir():
            raise CommandError(f"{option} {p}: exists and is not a folder, so it cannot be the output folder")
        _check_writable_folder(p, option, create)
    else:
        if p.is_dir():
            raise CommandError(f"{option} {p}: is a folder; give the output file's name")
        _check_writable_folder(p.parent, option, create, shown=p)
        if p.exists() and not os.access(p, os.W_OK):
            raise CommandError(f"cannot write to {p}: permission denied")
    return p


def _check_writable_folder(folder: Path, option: str, create: bool, shown: Path | None = None) -> None:
    """Create ``folder`` (or find the folder it would be made in) and prove a file can be written there."""
    shown = shown if shown is not None else folder
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise CommandError(f"{option} {shown}: cannot create the output there, {existing} is a file")
    where = existing
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            where = folder
        except OSError as exc:
            raise CommandError(f"cannot write to {shown}: {_reason(exc)}") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=where)
    except OSError as exc:
        raise CommandError(f"cannot write to {shown}: {_reason(exc)}") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def check_device(device: str | None, option: str = "--device") -> None:
    """A device this machine has (``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``), checked before any work; else
    ``CommandError`` naming the option and the value."""
    from deepfake_lib.core.device import device_problem

    problem = device_problem(device)
    if problem:
        raise CommandError(f"{option} {device}: {problem}")
