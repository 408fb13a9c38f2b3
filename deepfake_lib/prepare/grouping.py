"""Which group each file belongs to, so a whole group goes to one split: a file-name regex, a CSV column or a
mapping; and the grouping settings ``make_splits`` records."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepfake_lib import CLASS_NAMES


class SplitError(ValueError):
    """Bad input for splitting; the message says what is wrong and what to do."""


class RegexGrouper:
    """Callable ``path -> group``: the first capture group (or the whole match) of the regex in the file name.

    A file whose name does not match (or matches with an empty key) is a group of its own, keyed by the
    path it was called with; ``unmatched`` counts such files.
    """

    def __init__(self, pattern: str) -> None:
        try:
            self.regex = re.compile(pattern)
        except re.error as exc:
            raise SplitError(f"bad group regex {pattern!r}: {exc}") from None
        self.pattern = pattern
        self.unmatched_paths: set[str] = set()

    @property
    def unmatched(self) -> int:
        return len(self.unmatched_paths)

    def key(self, name: str) -> str | None:
        """The group key of a file name, or ``None`` when the regex does not give one."""
        m = self.regex.search(name)
        if m is None:
            return None
        return (m.group(1) if self.regex.groups else m.group(0)) or None

    def __call__(self, path: Path) -> str:
        p = Path(path)
        key = self.key(p.name)
        if key is None:
            self.unmatched_paths.add(p.as_posix())
            return p.as_posix()
        return key


def group_from_regex(pattern: str) -> RegexGrouper:
    """A ``Callable[[Path], str]`` grouping files by ``re.search(pattern, file name)`` (see ``RegexGrouper``)."""
    return RegexGrouper(pattern)


def _norm_key(raw: str) -> str:
    """A path as written in a CSV or mapping, in the manifest's form (posix, no ``./``)."""
    text = raw.strip().replace("\\", "/")
    return posixpath.normpath(text) if text else text


def groups_from_csv(
    csv_path: str | os.PathLike[str], path_column: str, group_column: str, root: str | os.PathLike[str]
) -> dict[str, str]:
    """Read ``relative path (or file name) -> group`` from a CSV; absolute paths are made relative to ``root``.

    Rows with an empty path or group are ignored; a path given two different groups is an error.
    """
    path = Path(csv_path).expanduser()
    if not path.is_file():
        raise SplitError(f"group CSV {path} not found")
    roots = {Path(os.path.abspath(root)), Path(root).resolve()}
    mapping: dict[str, str] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = list(reader.fieldnames or [])
            missing = [c for c in (path_column, group_column) if c not in columns]
            if missing:
                found = ", ".join(repr(c) for c in columns) or "none (empty file)"
                raise SplitError(f"{path}: no column {' or '.join(map(repr, missing))} (columns: {found})")
            for line, row in enumerate(reader, start=2):
                raw, group = (row.get(path_column) or "").strip(), (row.get(group_column) or "").strip()
                if not raw or not group:
                    continue
                key = _csv_key(raw, roots)
                if mapping.setdefault(key, group) != group:
                    raise SplitError(
                        f"{path} line {line}: {raw!r} is in group {group!r} here but {mapping[key]!r} earlier"
                    )
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SplitError(f"{path}: not a readable UTF-8 CSV file ({exc})") from None
    if not mapping:
        raise SplitError(f"{path}: no row has both a {path_column!r} and a {group_column!r} value")
    return mapping


def _csv_key(raw: str, roots: Iterable[Path]) -> str:
    text = _norm_key(raw)
    if os.path.isabs(text):
        for root in roots:
            try:
                return Path(os.path.normpath(text)).relative_to(root).as_posix()
            except ValueError:
                continue
    return text


@dataclass(frozen=True)
class _File:
    rel: str  # relative to the source folder, posix: the manifest's ``path``
    inner: str  # relative to the class folder: the path under ``<out>/<split>/<class>/``
    label: int


def _lookup(mapping: Mapping[str, str], f: _File) -> str | None:
    """A file's group in a mapping keyed by relative path (to the source or class folder) or file name."""
    for key in (f.rel, f"{CLASS_NAMES[f.label]}/{f.inner}", f.inner, posixpath.basename(f.inner)):
        group = mapping.get(key)
        if group:
            return group
    return None


def _grouping(
    src: Path,
    group_regex: str | None,
    groups: Mapping[str, str] | None,
    group_csv: str | os.PathLike[str] | None,
    group_column: str | None,
    path_column: str,
) -> tuple[dict[str, Any], Callable[[_File], str | None]]:
    """The grouping settings (as recorded) and ``file -> group or None``."""
    given = [
        name
        for name, v in (("group_regex", group_regex), ("groups", groups), ("group_csv", group_csv))
        if v is not None
    ]
    if len(given) > 1:
        raise SplitError(f"give one way of grouping, not {' and '.join(given)}")
    if group_column is not None and group_csv is None:
        raise SplitError("group_column goes with group_csv")
    if group_regex is not None:
        grouper = RegexGrouper(group_regex)
        return {"method": "regex", "pattern": group_regex}, lambda f: grouper.key(posixpath.basename(f.inner))
    if group_csv is not None:
        if not group_column:
            raise SplitError("group_csv needs group_column (the CSV column holding the group)")
        mapping = groups_from_csv(group_csv, path_column, group_column, src)
        csv_path = str(Path(group_csv).expanduser().resolve())
        settings = {"method": "csv", "csv": csv_path, "path_column": path_column, "group_column": group_column}
        return settings, lambda f: _lookup(mapping, f)
    if groups is not None:
        mapping = {_norm_key(str(k)): str(v).strip() for k, v in groups.items()}
        digest = hashlib.sha256(json.dumps(sorted(mapping.items())).encode()).hexdigest()
        return {"method": "mapping", "entries": len(mapping), "sha256": digest}, lambda f: _lookup(mapping, f)
    return {"method": "file"}, lambda f: None
