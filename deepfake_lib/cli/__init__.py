"""Command lines: thin parsers over the library, one per command, all ending through ``cli.runner``.

Each module is run as ``python -m deepfake_lib.cli.<name>`` or through its console script (``deepfake-<name>``,
see ``[project.scripts]`` in pyproject.toml); ``python -m deepfake_lib.predict`` and
``python -m deepfake_lib.pipeline`` are kept as the short forms.
"""

from deepfake_lib.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__, {"runner": ("CommandError", "add_debug_flag", "error", "one_line", "run_command")}
)
