"""A CSV that grows one finished batch at a time, so Ctrl-C or a kill keeps every row written, and its reader."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from deepfake_lib.predict.results import PredictError


class CsvLog:
    """``path`` started afresh (atomically) with the header and ``rows``, then open for ``append``: each call is
    one write followed by flush and fsync, so the file on disk always holds whole rows, but for a last line a
    kill -9 may cut short (``read_log`` drops it). ``scored`` counts the rows with a probability."""

    def __init__(self, path: str | os.PathLike[str], columns: Sequence[str], rows: Iterable[dict[str, Any]] = ()):
        from deepfake_lib.core.runs import atomic_write

        self.path = Path(path)
        self.columns = tuple(columns)
        rows = list(rows)
        text = self._text(rows, header=True)
        atomic_write(self.path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        self.scored = _count_scored(rows)
        self._fh: IO[bytes] | None = open(self.path, "ab")  # noqa: SIM115 - closed by close()

    def _text(self, rows: Sequence[dict[str, Any]], header: bool = False) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns, lineterminator="\n", extrasaction="ignore")
        if header:
            writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue()

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        """Add ``rows`` at the end of the file, durably."""
        rows = list(rows)
        if not rows or self._fh is None:
            return
        self._fh.write(self._text(rows).encode("utf-8"))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.scored += _count_scored(rows)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> CsvLog:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def read_log(path: str | os.PathLike[str], columns: Sequence[str]) -> list[dict[str, str]] | None:
    """The whole rows of a CSV with ``columns`` (as ``CsvLog`` writes it), in file order; None when there is no
    file or it holds no complete header line. A last record cut short by a kill (no final newline, or an open
    quoted field) is dropped. Raises ``PredictError`` naming the file when its header is not ``columns``."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PredictError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    text = data.decode("utf-8", errors="replace")
    text = text[: text.rfind("\n") + 1]  # up to the last complete line
    if not text.strip():
        return None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except csv.Error:
        header = []
    if tuple(header) != tuple(columns):
        raise PredictError(
            f"{path}: cannot resume from it: its columns ({', '.join(header)}) are not this prediction's "
            f"({', '.join(columns)}), as when it was made with or without --faces; rerun without --resume "
            "(resume=False) to start clean, or into another folder"
        )
    rows: list[dict[str, str]] = []
    try:
        for fields in reader:
            if len(fields) == len(header):
                rows.append(dict(zip(header, fields, strict=True)))
    except csv.Error:  # a record cut inside a quoted field: the end of what was written whole
        pass
    return rows


def _count_scored(rows: Iterable[dict[str, Any]]) -> int:
    return sum(1 for r in rows if r.get("probability", "") != "")
