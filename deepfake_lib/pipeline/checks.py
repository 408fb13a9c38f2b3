"""Every check a run's input gets before any kernel starts: parameters (known, in range, one of their choices),
the run id, the device and the data folder."""

from __future__ import annotations

import ast
import math
import re
from typing import Any

from deepfake_lib.core import choices as ch
from deepfake_lib.core.files import is_within
from deepfake_lib.core.recipe import MIN_IMAGE_SIZE
from deepfake_lib.core.runs import resolve_path
from deepfake_lib.pipeline.errors import PipelineInputError

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
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
RESERVED_RUN_IDS = ("latest",)  # ``<runs_dir>/latest`` points at the newest run


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


def check_dataset(text: str, where: str) -> None:
    """A dataset string (``NAME:ROOT?options``) must parse and its reader must accept the root (the table is read,
    nothing decoded): a wrong root is refused before any notebook runs, with the reader's one line."""
    from deepfake_lib.prepare.datasets.spec import DatasetSpecError, read_dataset
    from deepfake_lib.prepare.datasets.table import DatasetRootError

    try:
        read_dataset(text)
    except (DatasetSpecError, DatasetRootError, ValueError) as exc:
        raise PipelineInputError(f"{where}: {exc}") from None


def check_data(params: dict[str, Any], declared: dict[str, dict[str, Any]]) -> None:
    """``DATA_DIR`` must be a folder notebook 01 can prepare (a flat ``{real,fake}`` folder or split folders of
    them, with fake folders unless ``FAKES`` is "self-blended"), and ``PREPARED_DIR`` must not lie inside it."""
    from deepfake_lib.prepare.dataset import PrepareError, check_source
    from deepfake_lib.prepare.datasets.spec import is_dataset_spec

    for text in params.get("TEST_DATASETS") or []:
        check_dataset(str(text), "TEST_DATASETS")
    if is_dataset_spec(str(params["DATA_DIR"])):
        check_dataset(str(params["DATA_DIR"]), "DATA_DIR")
        return
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
