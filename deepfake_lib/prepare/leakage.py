"""Leakage checks: no group (identity, source video or photo), and no file, in more than one split."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from deepfake_lib.prepare.grouping import SplitError
from deepfake_lib.prepare.split_writer import _read_manifest


class LeakageError(SplitError):
    """Some groups have files in more than one split; ``groups`` maps each to its splits."""

    def __init__(self, message: str, groups: dict[str, list[str]]) -> None:
        super().__init__(message)
        self.groups = groups


def check_no_leakage(manifest_rows: Iterable[Mapping[str, Any]] | str | os.PathLike[str] | Any) -> None:
    """Raise ``LeakageError`` naming every group (and file) found in more than one split.

    Takes manifest rows (mappings with ``group`` and ``split``, e.g. ``csv.DictReader`` rows), a DataFrame,
    or the path of a ``split_manifest.csv``.
    """
    if isinstance(manifest_rows, (str, os.PathLike)):
        rows = _read_manifest(Path(manifest_rows))
        if rows is None:
            raise SplitError(f"manifest {manifest_rows} not found")
        manifest_rows = rows
    elif hasattr(manifest_rows, "to_dict"):
        manifest_rows = manifest_rows.to_dict("records")
    splits_of: dict[str, set[str]] = defaultdict(set)
    path_splits: dict[str, set[str]] = defaultdict(set)
    for row in manifest_rows:
        if "group" not in row or "split" not in row:
            raise SplitError(f"manifest rows need 'group' and 'split' columns, got {sorted(row)}")
        splits_of[str(row["group"])].add(str(row["split"]))
        if "path" in row:
            path_splits[str(row["path"])].add(str(row["split"]))
    bad = {g: sorted(s) for g, s in splits_of.items() if len(s) > 1}
    bad_paths = {p: sorted(s) for p, s in path_splits.items() if len(s) > 1}
    if not bad and not bad_paths:
        return
    shown = [f"group {g!r} ({', '.join(s)})" for g, s in sorted(bad.items())[:10]]
    shown += [f"file {p!r} ({', '.join(s)})" for p, s in sorted(bad_paths.items())[:10]]
    more = len(bad) + len(bad_paths) - len(shown)
    raise LeakageError(
        f"leakage: {len(bad)} group(s) and {len(bad_paths)} file(s) in more than one split: {'; '.join(shown)}"
        + (f"; and {more} more" if more > 0 else ""),
        bad,
    )
