"""Run folders, project-relative paths, atomic file writes and the shared metrics.json."""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from deepfake_lib.core.files import folder_problem, is_within

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
# checkpoint file names inside <run_dir>/checkpoints/
BEST_MODEL = "best_model.pth"
LAST_MODEL = "last.pth"
FINETUNED_MODEL = "best_model_finetuned.pth"
FIGURES = "figures"
METRICS_FILE = "metrics.json"
CONFIG_FILE = "config.json"  # the pipeline's record of each invocation (parameters, steps, times)


def project_root(start: Path | None = None) -> Path:
    """The repository root (the folder holding ``pyproject.toml`` and ``deepfake_lib``), else the cwd."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "deepfake_lib").is_dir():
            return folder
    return here


def resolve_path(path: str | os.PathLike[str]) -> Path:
    """Anchor a relative path at the project root, so notebooks work from ``notebooks/`` and from the root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else project_root() / p


def new_run_id(prefix: str = "run") -> str:
    """A sortable run id such as ``run-20261125-103000``."""
    return f"{prefix}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def run_paths(run_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Create (if needed) and return the standard sub-folders of a run folder."""
    root = resolve_path(run_dir)
    paths = {"root": root, "checkpoints": root / CHECKPOINTS, "figures": root / FIGURES}
    for p in paths.values():
        p.mkdir(parents=True, exist_ok=True)
    return paths


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None], suffix: str = ".tmp") -> Path:
    """Call ``write(tmp_path)`` on a temporary file next to ``path``, then rename it into place.

    A crash or kill during ``write`` leaves any previous ``path`` untouched. ``suffix``: the temporary file's
    extension, for writers that choose the format by it (OpenCV's video writer).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions of a new file
        write(tmp_path)
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return target


def check_step_folders(
    src: Path, out: Path, config_file: str, settings: dict[str, Any], what: str, error: type[Exception]
) -> None:
    """Refuse what a cached preparation step (face crops, clips) must not write into, raising ``error`` with a
    one-line message: a missing ``src``; ``out`` that is ``src``, inside it, or a file; a non-empty ``out`` holding
    no ``config_file`` (not the step's own folder); an unreadable one; and an ``out`` made with other settings (the
    message lists them; ``what`` names the step's output, e.g. "face crops")."""
    if not src.is_dir():
        raise error(f"{src}: source folder {folder_problem(src) or 'not found'}")
    resolved_out, resolved_src = out.resolve(), src.resolve()
    if is_within(resolved_out, resolved_src):
        raise error(f"{out}: the output folder must not be the source folder or inside it ({src})")
    if out.exists() and not out.is_dir():
        raise error(f"{out}: exists and is not a folder")
    config_path = out / config_file
    if not config_path.is_file():
        if out.is_dir() and any(out.iterdir()):
            raise error(f"{out}: not empty and holds no {config_file}; choose an empty or new output folder")
        return
    try:
        old = read_json(config_path)
    except (OSError, ValueError) as exc:
        raise error(f"{config_path}: unreadable ({exc}); delete {out} or choose another output folder") from None
    if old != settings:
        old = old if isinstance(old, dict) else {}
        diff = ", ".join(
            f"{k}: {old.get(k)!r} -> {settings.get(k)!r}"
            for k in sorted(set(old) | set(settings))
            if old.get(k) != settings.get(k)
        )
        raise error(f"{out} holds {what} made with other settings ({diff}); choose another output folder or delete it")


class LinkWriter:
    """Creates each output file (or clip folder) as a symlink to ``source`` (give it absolute), or a copy: ``mode``
    "link" falls back to copies once links fail (counted in ``copied_instead_of_linked``), "copy" always copies."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.links_ok = mode == "link"
        self.copied_instead_of_linked = 0

    def __call__(self, source: Path, dest: Path) -> bool:
        """Create ``dest`` unless it already exists; True when something was written."""
        if dest.is_symlink() or dest.exists():
            return False
        dest.parent.mkdir(parents=True, exist_ok=True)
        if self.links_ok:
            try:
                os.symlink(source, dest)
                return True
            except FileExistsError:
                raise
            except OSError as exc:
                log.warning("cannot create symlinks in %s (%s); copying the files instead", dest.parent, exc)
                self.links_ok = False
        if self.mode == "link":
            self.copied_instead_of_linked += 1
        if source.is_dir():  # a clip folder
            shutil.copytree(source, dest)
        else:
            shutil.copy2(source, dest)
        return True


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_csv(path: str | os.PathLike[str], columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> Path:
    """Write ``rows`` (dicts) as CSV with the header ``columns``, atomically."""

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(columns))
            writer.writeheader()
            writer.writerows(rows)

    return atomic_write(path, write)


def read_json(path: str | os.PathLike[str], default: Any = None) -> Any:
    """Read JSON, or return ``default`` when the file does not exist."""
    p = Path(path)
    if not p.exists():
        return default
    return json.loads(p.read_text(encoding="utf-8"))


SKIPPED = "skipped"  # the status of a metrics.json section whose step did not run


def skipped_record(reason: str) -> dict[str, Any]:
    """A metrics.json section for a step that did not run, and why (it replaces an older result):
    ``{"status": "skipped", "reason": reason}``."""
    return {"status": SKIPPED, "reason": reason}


def status_text(record: dict[str, Any]) -> str:
    """How a section's status reads: ``skipped (why)``, ``done``; ``not run`` for a section without one."""
    status = str(record.get("status", "not run"))
    return f"{status} ({record['reason']})" if record.get("reason") else status


def update_metrics(run_dir: str | os.PathLike[str], section: str, values: dict[str, Any]) -> Path:
    """Replace one section (``data``, ``train``, ``evaluate``...) of the run's ``metrics.json``."""
    path = resolve_path(run_dir) / METRICS_FILE
    metrics = read_json(path, default={})
    metrics[section] = values
    return write_json(path, metrics)


def save_figure(fig: Any, run_dir: str | os.PathLike[str], name: str, dpi: int = 120) -> Path:
    """Save a matplotlib figure as ``<run_dir>/figures/<name>.png`` (atomically) and return the path."""
    return save_figure_file(fig, run_paths(run_dir)["figures"] / f"{name}.png", dpi)


def save_figure_file(fig: Any, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Save a matplotlib figure as the PNG ``path`` (atomically) and return the path."""
    return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):  # numpy scalars
        return obj.item()
    if hasattr(obj, "tolist"):  # numpy arrays, torch tensors
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
