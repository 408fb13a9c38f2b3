"""How every command line ends: one ``error:`` line on stderr and an exit code; ``--debug`` shows the traceback.

Exit codes: 0 done, 2 bad input or usage (argparse's own errors are 2 too), 1 unexpected error, 130 interrupted.
A command's ``main`` parses its arguments and hands the work to ``run_command`` with the exceptions that mean
"bad input" for it; an exception with an integer ``exit_code`` attribute sets its own code.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from typing import NoReturn

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """A problem the user can fix (a bad path, option or file): reported as one line, exit 2."""

    exit_code = EXIT_BAD_INPUT


class ArgumentParser(argparse.ArgumentParser):
    """argparse with usage errors as one ``error:`` line naming the option (exit 2), like every other bad input;
    ``--help`` still shows the usage."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {one_line(message)} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def one_line(text: object) -> str:
    """``text`` on one line: newlines and the spaces around them become one space."""
    return re.sub(r"\s*\n\s*", " ", str(text)).strip()


def add_debug_flag(parser: argparse.ArgumentParser, help: str = "show tracebacks of unexpected errors") -> None:
    parser.add_argument("--debug", action="store_true", help=help)


def error(message: object) -> None:
    """Print ``error: <message>`` on one line to stderr."""
    print(f"error: {one_line(message)}", file=sys.stderr)


def run_command(
    body: Callable[[], int | None],
    *,
    bad_input: tuple[type[BaseException], ...] = (),
    debug: bool = False,
) -> int:
    """Run ``body`` and turn how it ended into an exit code: its return value (None is 0); ``CommandError`` and
    ``bad_input`` exceptions -> one line, 2 (or the exception's ``exit_code``); Ctrl-C -> 130; anything else ->
    one line naming the type, 1, or the traceback itself with ``debug``."""
    try:
        code = body()
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (CommandError, *bad_input) as exc:
        error(exc)
        code = getattr(exc, "exit_code", EXIT_BAD_INPUT)
        return code if isinstance(code, int) else EXIT_BAD_INPUT
    except Exception as exc:
        if debug:
            raise
        error(f"unexpected {type(exc).__name__}: {one_line(exc)} (rerun with --debug for details)")
        return EXIT_UNEXPECTED
    return EXIT_OK if code is None else int(code)
