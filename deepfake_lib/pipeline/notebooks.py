"""Which notebooks a pipeline runs: the numbered notebooks' folder (found from any working folder), the step
selection (``--steps``) and each notebook's declared parameters."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from deepfake_lib.core.runs import project_root
from deepfake_lib.pipeline.errors import PipelineInputError

NOTEBOOK_RE = re.compile(r"^(\d\d)_[\w-]+\.ipynb$")
NOTEBOOKS_ENV = "DEEPFAKE_NOTEBOOKS"  # a folder of numbered notebooks to run instead of the checkout's


def notebook_folders() -> list[Path]:
    """Where the notebooks are looked for, in order: ``$DEEPFAKE_NOTEBOOKS``, the project the current folder is
    in, and the checkout this package was imported from (so the pipeline runs from any folder)."""
    folders = [Path(os.environ[NOTEBOOKS_ENV]).expanduser()] if os.environ.get(NOTEBOOKS_ENV) else []
    folders += [project_root() / "notebooks", Path(__file__).resolve().parents[2] / "notebooks"]
    return list(dict.fromkeys(folders))


def notebooks_dir() -> Path:
    """The first of ``notebook_folders()`` that holds numbered notebooks (else the first one)."""
    folders = notebook_folders()
    return next((f for f in folders if _numbered(f)), folders[0])


def _numbered(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {m.group(1): p for p in sorted(folder.glob("*.ipynb")) if (m := NOTEBOOK_RE.match(p.name))}


def list_notebooks(folder: Path | None = None) -> dict[str, Path]:
    """``{"01": Path(".../01_data_balance.ipynb"), ...}`` in step order."""
    found = _numbered(folder or notebooks_dir())
    if not found:
        looked = [folder] if folder else notebook_folders()
        raise PipelineInputError(
            f"no numbered notebooks (NN_name.ipynb) in {', '.join(map(str, looked))}; run from the repository "
            f"checkout, or point {NOTEBOOKS_ENV} at its notebooks/ folder"
        )
    return found


def select_steps(spec: str | None, available: dict[str, Path]) -> list[str]:
    """``"02-05"``, ``"05"``, ``"1,3"`` or ``None``/``"all"`` -> sorted step numbers that exist."""
    keys = sorted(available)
    if not spec or spec == "all":
        return keys
    chosen: set[str] = set()
    for part in spec.split(","):
        part = part.strip()
        if m := re.fullmatch(r"(\d+)-(\d+)", part):
            lo, hi = int(m.group(1)), int(m.group(2))
            chosen |= {k for k in keys if lo <= int(k) <= hi}
        elif part.isdigit():
            if f"{int(part):02d}" not in available:
                raise PipelineInputError(f"step {part} not found; available: {', '.join(keys)}")
            chosen.add(f"{int(part):02d}")
        else:
            raise PipelineInputError(f"cannot read --steps {spec!r}; use e.g. 02-05, 05 or 01,03")
    if not chosen:
        raise PipelineInputError(f"--steps {spec!r} selects no notebook; available: {', '.join(keys)}")
    return sorted(chosen)


def declared_parameters(notebook: Path) -> dict[str, Any]:
    """The names and defaults of the notebook's ``parameters`` cell."""
    import papermill as pm

    return {name: info["default"] for name, info in pm.inspect_notebook(str(notebook)).items()}
