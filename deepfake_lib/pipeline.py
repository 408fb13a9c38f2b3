"""Run the numbered notebooks with papermill into ``outputs/runs/<run_id>/`` and write a run summary.

python -m deepfake_lib.pipeline --demo
python -m deepfake_lib.pipeline --data data/my_set --steps 02-05 --run-id exp1 -p EPOCHS 20 --config run.yaml

Quiet by default: one line per finished notebook and one for the summary, and while a notebook trains one
updating line with its epoch, last val AUC and time left (``core.progress``); ``-v`` also shows the notebooks' own
output and the kernels' log.
"""

from __future__ import annotations

import ast
import contextlib
import math
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deepfake_lib import __version__
from deepfake_lib.core import choices as ch
from deepfake_lib.core.cpu_env import set_for_children
from deepfake_lib.core.files import is_within
from deepfake_lib.core.progress import live_progress
from deepfake_lib.core.provenance import PROVENANCE_FILE, provenance
from deepfake_lib.core.recipe import (
    MIN_IMAGE_SIZE,
    RECIPE_FILE,
    Recipe,
    RecipeError,
    load_recipe,
    recipe_from_parameters,
    save_recipe,
)
from deepfake_lib.core.runs import (
    CHECKPOINTS,
    CONFIG_FILE,
    FIGURES,
    METRICS_FILE,
    new_run_id,
    project_root,
    read_json,
    resolve_path,
    write_json,
)
from deepfake_lib.core.strict_yaml import StrictYamlError, load_strict
from deepfake_lib.report.summary import SUMMARY_FILE, write_summary

NOTEBOOK_RE = re.compile(r"^(\d\d)_[\w-]+\.ipynb$")
DEMO_DATA = "data/demo"
DEMO_RECIPE = "demo"  # core.recipe's preset for --demo: 240 training images are learnt within a few epochs


def kernel_options(verbose: bool = False) -> dict[str, Any]:
    """papermill/nbclient options for the notebook kernels.

    On POSIX the kernel talks to papermill over Unix-domain sockets (``ipc``), not plain-text TCP on loopback,
    so the kernel has no reason to warn "Kernel is running over TCP without encryption". Windows has no ``ipc``
    transport: there the kernel keeps TCP and, unless ``verbose``, logs errors only.

    jupyter_client interrupts a kernel (SIGINT) before every shutdown. After the last cell the kernel is idle and a
    shutdown request ends it, but a SIGINT that lands while it finishes its last message makes it log
    "KeyboardInterrupt caught in kernel" (seen about once in 30 runs): the manager skips that interrupt. A kernel
    that does not stop within a second is still killed.
    """
    if os.name == "posix":
        from jupyter_client.manager import AsyncKernelManager
        from traitlets import CaselessStrEnum, default

        class IPCKernelManager(AsyncKernelManager):
            transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

            @default("ip")
            def _private_socket_base(self) -> str:
                # jupyter_client's default is "kernel-ipc" in the working folder, numbered by which names exist:
                # two kernels started at once from one folder (two pipelines, parallel tests) picked the same
                # sockets and read each other's messages ("Invalid Signature"). A private folder per kernel.
                return str(Path(tempfile.mkdtemp(prefix="deepfake-kernel-")) / "k")

            def cleanup_ipc_files(self) -> None:
                super().cleanup_ipc_files()
                with contextlib.suppress(OSError):
                    Path(self.ip).parent.rmdir()

            async def _async_interrupt_kernel(self) -> None:
                if not self.shutting_down:
                    await super()._async_interrupt_kernel()

        return {"kernel_manager_class": IPCKernelManager}
    return {} if verbose else {"extra_arguments": ["--IPKernelApp.log_level=ERROR"]}


class PipelineError(RuntimeError):
    """A pipeline that cannot start or a notebook that failed; the message says which and where."""

    exit_code = 1  # the command line's code for a pipeline that stopped


class PipelineInputError(PipelineError):
    """Bad input found before any notebook runs (config file, parameters, steps, data or notebook folder)."""

    exit_code = 2


NOTEBOOKS_ENV = "DEEPFAKE_NOTEBOOKS"  # a folder of numbered notebooks to run instead of the checkout's
# Numeric parameters outside these ranges are refused before anything runs: (lowest, highest), None = open.
PARAMETER_RANGES: dict[str, tuple[float | None, float | None]] = {
    "IMAGE_SIZE": (MIN_IMAGE_SIZE, 4096),  # the backbone's total stride: smaller inputs leave a last feature map under 1 cell
    "BATCH_SIZE": (1, None), "EPOCHS": (1, None), "NUM_WORKERS": (-1, None), "NUM_PROCESSES": (1, None),
    "FRAMES": (1, None), "CLIPS_PER_VIDEO": (1, None), "FRAME_STRIDE": (1, None), "PATIENCE": (0, None),
    "HEAD_WARMUP_EPOCHS": (0, None), "TRAINABLE_BLOCKS": (-1, None), "FACE_SIZE": (8, 4096),
    "FACE_MARGIN": (0.1, 10.0), "FACE_MIN_SCORE": (0.0, 1.0), "THRESHOLD": (0.0, 1.0), "FIXED_THRESHOLD": (0.0, 1.0),
    "TARGET_FAKE_RECALL": (0.0, 1.0), "LR": (1e-8, 1.0), "BACKBONE_LR": (1e-8, 1.0), "WEIGHT_DECAY": (0.0, 1.0),
    "REPLAY_RATIO": (0, None), "N_FAILURES_SHOWN": (0, None), "N_INSPECT": (0, None), "N_PER_GROUP": (0, None),
    "N_SUSPICIOUS": (0, None), "N_VIDEOS": (0, None), "PSEUDO_FAKES_SHOWN": (0, None), "SAMPLES_PER_CLASS": (0, None),
    "TARGET_FPR": (0.0, 0.999), "EMA_DECAY": (0.0, 0.99999), "LABEL_SMOOTHING": (0.0, 0.999), "WARMUP_EPOCHS": (0, None),
    "VIDEO_FRAMES": (1, None),
}  # fmt: skip


# Parameters that name a choice, checked (value and type) before anything runs: one list per setting, in
# core.choices, read by the module that acts on it too.
PARAMETER_CHOICES: dict[str, tuple[Any, ...]] = {
    "AUGMENT": ch.AUGMENTATIONS, "SCHEDULER": ch.SCHEDULERS, "MONITOR": ch.MONITORS, "BALANCE": ch.BALANCES,
    "FAKES": ch.FAKES_MODES, "DECODE": ch.DECODE_MODES, "TTA": ch.TTA_MODES, "THRESHOLD_METHOD": ch.THRESHOLD_METHODS,
    "VIDEO_AGGREGATE": ("auto", *ch.VIDEO_SCORES), "CHANNELS": ch.CHANNELS, "FACE_KEEP": ch.KEEP_CHOICES,
    "EXTRA_TEST_FACES": ch.AUTO_OR_BOOL, "PRETRAINED": ch.AUTO_OR_BOOL, "MAKE_SPLITS": ch.AUTO_OR_BOOL,
    "BACKBONE": ch.BACKBONES, "FACES": (None, True, False),
    **{name: (True, False) for name in (
        "BUILD_DEMO_DATA", "CALIBRATE", "LINEAR_PROBE", "SPECTRAL_BASELINE", "ROBUSTNESS", "RESUME", "BATCH_GROUPS",
        "FREQUENCY_BRANCH", "INTERACTIVE", "MOUNT_DRIVE",
    )},
}  # fmt: skip
EXECUTED_DIR = "executed"
# What a pipeline writes in its run folder: none of it may be a user's input (a config saved as the run's own)
RUN_FOLDER_WRITES = (
    CONFIG_FILE,
    RECIPE_FILE,
    PROVENANCE_FILE,
    EXECUTED_DIR,
    METRICS_FILE,
    SUMMARY_FILE,
    CHECKPOINTS,
    FIGURES,
)
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
RESERVED_RUN_IDS = ("latest",)  # ``<runs_dir>/latest`` points at the newest run


@dataclass
class StepResult:
    notebook: str
    seconds: float
    executed: Path


def notebook_folders() -> list[Path]:
    """Where the notebooks are looked for, in order: ``$DEEPFAKE_NOTEBOOKS``, the project the current folder is
    in, and the checkout this package was imported from (so the pipeline runs from any folder)."""
    folders = [Path(os.environ[NOTEBOOKS_ENV]).expanduser()] if os.environ.get(NOTEBOOKS_ENV) else []
    folders += [project_root() / "notebooks", Path(__file__).resolve().parent.parent / "notebooks"]
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


def parse_value(text: str) -> Any:
    """A ``-p`` value as YAML (numbers, booleans, lists); ``None``/``null`` -> None; text that is not plain YAML
    (or holds an alias) stays text."""
    if text in ("None", "null", "~"):
        return None
    try:
        value, _ = load_strict(text)
    except StrictYamlError:
        return text
    if isinstance(value, str):
        try:
            return float(value)  # YAML 1.1 reads "1e-3" as a string
        except ValueError:
            return value
    return value


def load_config(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a YAML run config -> (options: data/device/steps/run_id, notebook parameters). A file that is not
    YAML, not a mapping, whose ``parameters`` is not a mapping, or that holds aliases or duplicate keys is
    refused with the file and the line (``core.strict_yaml``)."""
    p = resolve_path(path)
    if not p.is_file():
        raise PipelineInputError(f"config file {p} not found")
    try:
        raw, root = load_strict(p.read_text(encoding="utf-8"))
        raw = raw or {}
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelineInputError(f"config file {p}: cannot read it ({exc})") from None
    except StrictYamlError as exc:
        where = f", line {exc.line}" if exc.line else ""
        raise PipelineInputError(f"config file {p}{where}: {exc.problem}") from None
    if not isinstance(raw, dict):
        line = root.start_mark.line + 1 if root is not None else 1
        raise PipelineInputError(f"{p}, line {line}: expected a mapping of settings, found {type(raw).__name__}")
    if raw.get("parameters") is not None and not isinstance(raw["parameters"], dict):
        key = next(k for k, _ in root.value if k.value == "parameters")
        raise PipelineInputError(
            f"{p}, line {key.start_mark.line + 1}: parameters must be a mapping of NAME: value, "
            f"found {type(raw['parameters']).__name__}"
        )
    params = dict(raw.pop("parameters", None) or {})
    params.update({k: v for k, v in raw.items() if isinstance(k, str) and k.isupper()})
    options = {k: v for k, v in raw.items() if not (isinstance(k, str) and k.isupper())}
    unknown = set(options) - {"data", "device", "steps", "run_id", "runs_dir", "recipe"}
    if unknown:
        raise PipelineInputError(f"{p}: unknown setting(s) {sorted(map(str, unknown))}; parameters must be UPPER_CASE")
    return options, params


def declared_parameters(notebook: Path) -> dict[str, Any]:
    """The names and defaults of the notebook's ``parameters`` cell."""
    import papermill as pm

    return {name: info["default"] for name, info in pm.inspect_notebook(str(notebook)).items()}


def check_parameters(params: dict[str, Any], declared: dict[str, dict[str, Any]]) -> None:
    """Refuse a parameter that no notebook declares (a typo would otherwise be silently ignored), and a numeric
    one outside its range (``PARAMETER_RANGES``)."""
    known = set().union(*declared.values()) if declared else set()
    unknown = sorted(set(params) - known)
    if unknown:
        raise PipelineInputError(
            f"unknown parameter(s) {', '.join(unknown)}; the notebooks take: {', '.join(sorted(known))}"
        )
    problems = [problem for name, value in sorted(params.items()) if (problem := parameter_problem(name, value))]
    if problems:
        raise PipelineInputError("; ".join(problems))


def _non_finite(value: Any) -> bool:
    """A NaN or infinity anywhere in ``value`` (a number, or a list or mapping of them)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list | tuple):
        return any(_non_finite(v) for v in value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    return False


def parameter_problem(name: str, value: Any) -> str | None:
    """Why ``value`` is no good for ``name`` (None when it is): a NaN or infinity anywhere, a choice parameter
    outside ``PARAMETER_CHOICES``, a numeric one outside ``PARAMETER_RANGES``."""
    if _non_finite(value):
        return f"{name} {value!r} is not a finite number"
    if name in PARAMETER_CHOICES and not ch.is_choice(value, PARAMETER_CHOICES[name]):
        return f"{name} {value!r} is not one of its choices: {', '.join(map(repr, PARAMETER_CHOICES[name]))}"
    if name not in PARAMETER_RANGES or value is None:
        return None
    low, high = PARAMETER_RANGES[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name} must be a number, got {value!r}"
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"from {low:g}" if high is None else f"between {low:g} and {high:g}"
        return f"{name} {value!r} is out of range: it takes values {span}"
    return None


def _run_recipe(recipe: str | os.PathLike[str] | Recipe | None, demo: bool, run_dir: Path) -> Recipe:
    """The recipe a run starts from: the one given, else the run folder's own (a step re-run continues its run),
    else the demo preset for ``demo``, else the defaults; ``PipelineInputError`` for one that cannot be read."""
    own = run_dir / RECIPE_FILE
    source = recipe if recipe is not None else own if own.is_file() else DEMO_RECIPE if demo else None
    try:
        return load_recipe(source)
    except RecipeError as exc:
        raise PipelineInputError(f"--recipe: {exc}") from None


def check_run_id(run_id: Any) -> str:
    """``run_id`` when it is a folder name (letters, digits, ``.``, ``_``, ``-``; not a path, not ``latest``),
    else ``PipelineInputError``: a run id never leads out of the runs folder."""
    run_id = str(run_id) if isinstance(run_id, int) and not isinstance(run_id, bool) else run_id
    if not isinstance(run_id, str) or not RUN_ID_RE.fullmatch(run_id) or run_id in RESERVED_RUN_IDS:
        raise PipelineInputError(
            f"--run-id {run_id!r}: a run id is a folder name (letters, digits, '.', '_', '-', at most 128, not "
            f"{' or '.join(RESERVED_RUN_IDS)}), not a path; --runs-dir says where run folders go"
        )
    return run_id


def check_device(device: Any) -> None:
    """A ``DEVICE`` that this machine has (``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``), else
    ``PipelineInputError``: a bogus one would otherwise fail inside the first notebook."""
    from deepfake_lib.core.device import device_problem

    problem = device_problem(None if device is None else str(device))
    if problem:
        raise PipelineInputError(f"--device {device}: {problem}")


def _effective(name: str, params: dict[str, Any], declared: dict[str, dict[str, Any]]) -> Any:
    """The value a parameter takes: given, else the first notebook's default (papermill gives its source text)."""
    if name in params:
        return params[name]
    source = next((d[name] for d in declared.values() if name in d), None)
    try:
        return ast.literal_eval(source) if isinstance(source, str) else source
    except (ValueError, SyntaxError):
        return source


def check_data(params: dict[str, Any], declared: dict[str, dict[str, Any]]) -> None:
    """``DATA_DIR`` must be a folder notebook 01 can prepare (a flat ``{real,fake}`` folder or split folders of
    them, with fake folders unless ``FAKES`` is "self-blended"), and ``PREPARED_DIR`` must not lie inside it."""
    from deepfake_lib.prepare.dataset import PrepareError, check_source

    data = resolve_path(params["DATA_DIR"])
    try:
        check_source(
            data,
            make_splits=_effective("MAKE_SPLITS", params, declared),
            need_fakes=_effective("FAKES", params, declared) != "self-blended",
        )
    except PrepareError as exc:
        hint = "; --demo runs on the demo data" if not data.exists() else ""
        raise PipelineInputError(f"DATA_DIR: {exc}{hint}") from None
    prepared = params.get("PREPARED_DIR")
    if isinstance(prepared, str):
        where = resolve_path(prepared)
        if is_within(where.resolve(), data.resolve()):
            raise PipelineInputError(
                f"PREPARED_DIR {where} lies inside the data folder {data}: prepared crops and splits would be read "
                "back as data; choose a folder outside it"
            )
        if where.exists() and not where.is_dir():
            raise PipelineInputError(f"PREPARED_DIR {where}: exists and is not a folder")


def merge_parameters(
    params: dict[str, Any] | None,
    run_dir: Path,
    data_dir: str | os.PathLike[str] | None = None,
    device: str | None = None,
    demo: bool = False,
) -> dict[str, Any]:
    """The notebook parameters of a run: ``params`` (from -p / the config), then ``--data``/``--device``,
    the run folder, and with ``demo`` the demo data folder unless given (the demo's recipe is ``DEMO_RECIPE``).
    Outside the demo a missing data folder must be an error, so ``BUILD_DEMO_DATA`` is off."""
    merged = dict(params or {})
    if data_dir is not None:
        merged["DATA_DIR"] = str(data_dir)
    if device is not None:
        merged["DEVICE"] = device
    if demo:
        merged.setdefault("DATA_DIR", DEMO_DATA)
    else:
        merged.setdefault("BUILD_DEMO_DATA", False)
    merged["RUN_DIR"] = str(run_dir)
    return merged


def run_pipeline(
    params: dict[str, Any] | None = None,
    steps: str | None = None,
    run_id: str | None = None,
    runs_dir: str | os.PathLike[str] = "outputs/runs",
    data_dir: str | os.PathLike[str] | None = None,
    device: str | None = None,
    demo: bool = False,
    notebooks: Path | None = None,
    log=print,
    verbose: bool = False,
    recipe: str | os.PathLike[str] | Recipe | None = None,
) -> Path:
    """Execute the selected notebooks in order into ``<runs_dir>/<run_id>/executed/``; returns the run folder.

    ``log`` gets one line per finished notebook (and the live progress line, ``core.progress``) and one for the
    summary; ``verbose`` adds the set-up lines and streams each notebook's output. Raises ``PipelineError`` naming
    the notebook and the failing cell; the partial executed notebook stays. ``recipe`` (a preset name, a YAML file or a ``Recipe``; ``--demo``: the demo preset)
    gives notebooks 01-04 their recipe parameters, each notebook its own (``EPOCHS`` is 02's epochs and 04's
    fine-tuning epochs); ``params`` win over it. The run folder keeps the recipe it ran with as ``recipe.yaml``.
    """
    detail = log if verbose else (lambda *a, **k: None)
    import papermill as pm

    set_for_children()  # the notebook kernels start with the fast allocator settings
    available = list_notebooks(notebooks)
    selected = select_steps(steps, available)
    run_dir = resolve_path(runs_dir) / (check_run_id(run_id) if run_id else new_run_id("demo" if demo else "run"))
    params = merge_parameters(params, run_dir, data_dir, device, demo)
    declared = {k: declared_parameters(nb) for k, nb in available.items()}
    check_parameters(params, declared)  # every check runs before any kernel starts
    base = _run_recipe(recipe, demo, run_dir)
    given = {k: {**base.notebook_parameters(available[k].stem), **params} for k in available}
    given = {k: {n: v for n, v in values.items() if n in declared[k]} for k, values in given.items()}
    check_device(params.get("DEVICE"))
    if demo and params["DATA_DIR"] == DEMO_DATA:
        from deepfake_lib.demo.images import build_demo_dataset

        detail(f"demo data: {build_demo_dataset(resolve_path(DEMO_DATA), progress=verbose)}")
    elif isinstance(params.get("DATA_DIR"), str):
        check_data(params, declared)
    executed_dir = run_dir / EXECUTED_DIR
    executed_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / CONFIG_FILE
    previous = read_json(config_path, default={})
    earlier = previous.pop("earlier_invocations", [])
    config = {
        "run_id": run_dir.name,
        "library_version": __version__,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "steps": [available[k].name for k in selected],
        "parameters": params,
        "recipe": base.name,
        "demo": demo,
        "notebook_parameters": {available[k].name: {**declared[k], **given[k]} for k in selected},
        "earlier_invocations": earlier + ([previous] if previous else []),
    }
    write_json(config_path, config)
    save_recipe(recipe_from_parameters({available[k].stem: given[k] for k in selected}, base), run_dir / RECIPE_FILE)
    data = params.get("DATA_DIR")
    write_json(run_dir / PROVENANCE_FILE, provenance(resolve_path(data) if isinstance(data, str) else None))
    detail(f"run folder: {run_dir}")

    results: list[StepResult] = []
    for i, key in enumerate(selected, 1):
        nb = available[key]
        out = executed_dir / nb.name
        nb_params = given[key]
        label = f"[{i}/{len(selected)}] {nb.stem}"
        if verbose:
            log(f"{label} ...", flush=True)
        t0 = time.perf_counter()
        try:
            with live_progress(run_dir, label, log, verbose):  # the epoch at work, until the notebook ends
                pm.execute_notebook(
                    str(nb), str(out), parameters=nb_params, kernel_name="python3", cwd=str(project_root()),
                    progress_bar=False, log_output=verbose, **kernel_options(verbose),
                )  # fmt: skip
        except pm.PapermillExecutionError as exc:
            log(f"{label} FAILED", flush=True)
            raise PipelineError(
                f"{nb.name} failed in cell {exc.exec_count or exc.cell_index} ({exc.ename}: "
                f"{str(exc.evalue).strip().splitlines()[0] if str(exc.evalue).strip() else ''}); "
                f"partial executed notebook: {out}"
            ) from None
        dt = time.perf_counter() - t0
        results.append(StepResult(nb.name, dt, out))
        log(f"{label} ok ({dt:.1f} s)", flush=True)

    config["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    config["step_seconds"] = {r.notebook: round(r.seconds, 2) for r in results}
    write_json(config_path, config)
    summary = write_summary(run_dir)
    _point_latest(run_dir)
    log(f"summary: {summary}", flush=True)
    return run_dir


def _point_latest(run_dir: Path) -> None:
    """``<runs_dir>/latest`` -> this run (a symlink; skipped where symlinks are not allowed)."""
    link = run_dir.parent / "latest"
    try:
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(run_dir.name, target_is_directory=True)
    except OSError:
        pass


if __name__ == "__main__":  # the entry point: the command line lives in the cli stage
    from deepfake_lib.cli.pipeline import main

    sys.exit(main())
