"""How a dataset and its options are named: one string, the same as notebook 01's ``DATA_DIR``, the pipeline's
``--data``, a config's ``data:`` and the ``prepare`` command's argument.

    ffpp:/data/FaceForensics++?compression=c23&methods=Deepfakes,FaceSwap&frames=8&test_frames=32
    celebdf:/data/Celeb-DF-v2
    dfdc:/data/dfdc_train_part_0
    folders:data/my_faces

``NAME:ROOT`` names the reader (``DATASETS``) and the dataset's root as it downloads; the options after ``?`` are the
reader's (``compression``, ``methods`` for FaceForensics++) and the protocol's (``frames`` per training video,
``test_frames`` per validation or test video, ``faces``: crop faces, default true). Anything that is not
``NAME:...`` with a known name is a plain folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

DATASETS = ("ffpp", "dfdc", "dfdcp", "celebdf", "folders")
# the field trains on 8-32 frames per video and tests on 32 (DeepfakeBench, SBI)
TRAIN_FRAMES = 8
TEST_FRAMES = 32
READER_OPTIONS = {"ffpp": ("compression", "methods")}
PROTOCOL_OPTIONS = ("frames", "test_frames", "faces")


class DatasetSpecError(ValueError):
    """A dataset string that cannot be used: the message names it and what is wrong."""


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset named by ``NAME:ROOT?options``: the reader, the root, the reader's options and the protocol's."""

    name: str
    root: Path
    reader_options: dict[str, Any] = field(default_factory=dict)
    frames: int = TRAIN_FRAMES
    test_frames: int = TEST_FRAMES
    faces: bool = True

    def __str__(self) -> str:
        return format_dataset(self)

    @property
    def label(self) -> str:
        """A short name for tables: ``ffpp c23``, ``celebdf``."""
        extra = [str(v) if not isinstance(v, tuple) else "+".join(v) for v in self.reader_options.values()]
        return " ".join([self.name, *extra])


def is_dataset_spec(text: str | os.PathLike[str] | None) -> bool:
    """True for ``NAME:...`` with a known dataset name (a Windows drive ``C:`` is not one)."""
    return isinstance(text, str) and text.partition(":")[0] in DATASETS and ":" in text


def input_path(data: str | os.PathLike[str] | None) -> str | os.PathLike[str] | None:
    """The path a ``DATA_DIR`` reads from: a dataset's root, else ``data`` itself (for the checks that no output
    lands inside an input)."""
    if data is not None and is_dataset_spec(str(data)):
        return str(str(data).partition(":")[2].partition("?")[0])
    return data


def _int_option(spec: str, key: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise DatasetSpecError(f"dataset {spec!r}: {key} must be a whole number, got {value!r}") from None
    if number < 1:
        raise DatasetSpecError(f"dataset {spec!r}: {key} must be >= 1, got {number}")
    return number


def _bool_option(spec: str, key: str, value: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise DatasetSpecError(f"dataset {spec!r}: {key} must be true or false, got {value!r}")


def parse_dataset(text: str) -> DatasetSpec:
    """``NAME:ROOT?key=value&...`` -> ``DatasetSpec`` (``DatasetSpecError`` naming the string for an unknown dataset
    or option, a bad value or an empty root). ROOT is relative to the project folder unless absolute."""
    from deepfake_lib.core.runs import resolve_path

    name, _, rest = text.partition(":")
    if name not in DATASETS:
        raise DatasetSpecError(f"dataset {text!r}: unknown dataset {name!r}; one of {', '.join(DATASETS)}")
    root, _, query = rest.partition("?")
    if not root.strip():
        raise DatasetSpecError(f"dataset {text!r}: no root folder after '{name}:'")
    allowed = (*READER_OPTIONS.get(name, ()), *PROTOCOL_OPTIONS)
    reader: dict[str, Any] = {}
    protocol: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if key not in allowed:
            raise DatasetSpecError(f"dataset {text!r}: unknown option {key!r}; {name} takes {', '.join(allowed)}")
        if key in ("frames", "test_frames"):
            protocol[key] = _int_option(text, key, value)
        elif key == "faces":
            protocol[key] = _bool_option(text, key, value)
        elif key == "methods":
            reader[key] = tuple(m for m in value.split(",") if m)
        else:
            reader[key] = value
    return DatasetSpec(name, resolve_path(root.strip()).resolve(), reader, **protocol)


def format_dataset(spec: DatasetSpec) -> str:
    """The string ``parse_dataset`` reads back into ``spec``."""
    options = {k: ",".join(v) if isinstance(v, tuple) else v for k, v in spec.reader_options.items()}
    defaults = {"frames": TRAIN_FRAMES, "test_frames": TEST_FRAMES, "faces": True}
    for key, default in defaults.items():
        value = getattr(spec, key)
        if value != default:
            options[key] = str(value).lower() if isinstance(value, bool) else value
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return f"{spec.name}:{spec.root}" + (f"?{query}" if query else "")


def read_dataset(spec: DatasetSpec | str) -> Any:
    """The dataset's table (``table.DatasetTable``) from its reader."""
    import importlib

    spec = parse_dataset(spec) if isinstance(spec, str) else spec
    module = importlib.import_module(f"deepfake_lib.prepare.datasets.{spec.name}")
    return getattr(module, f"read_{spec.name}")(spec.root, **spec.reader_options)
