"""Public names of a stage package, imported on first use: ``import deepfake_lib.training`` costs nothing, and
``from deepfake_lib.training import fit`` imports ``training.loop`` (and torch) only then."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, Sequence[str]]
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``__all__``, ``__getattr__`` and ``__dir__`` for ``package`` re-exporting ``exports`` (submodule -> names).

    A name that is also a submodule (``deepfake_lib.data.faces``) is not listed: ``from package import module``
    finds it without help. A name listed twice is an error, so a package never hides which module it means.
    """
    where: dict[str, str] = {}
    for module, names in exports.items():
        for name in names:
            if name in where:
                raise ValueError(f"{package}: {name} is exported by both {where[name]} and {module}")
            where[name] = module

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        globals_of_package = importlib.import_module(package).__dict__
        globals_of_package[name] = value  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(importlib.import_module(package).__dict__) | set(where))

    return sorted(where), __getattr__, __dir__
