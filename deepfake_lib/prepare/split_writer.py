"""Writing a split folder: its manifest and info files, the links (or copies), and the check that a re-run matches."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from deepfake_lib.core.runs import LinkWriter, write_csv, write_json
from deepfake_lib.prepare.grouping import SplitError

MANIFEST_FILE = "split_manifest.csv"
INFO_FILE = "split_info.json"
MANIFEST_COLUMNS = ("path", "label", "group", "split")
TOOL = "deepfake_lib.splits"  # the maker recorded in split_info.json: kept across the package regrouping


def _read_manifest(path: Path) -> list[dict[str, str]] | None:
    if not path.is_file():
        return None
    with path.open(newline="", encoding="utf-8") as fh:
        return [dict(row) for row in csv.DictReader(fh)]


def _write_manifest(path: Path, rows: list[dict[str, str]]) -> None:
    write_csv(path, MANIFEST_COLUMNS, rows)


def _previous_run(out: Path, settings: dict[str, Any], rows: list[dict[str, str]]) -> dict[str, Any] | None:
    """The info of an identical earlier run in ``out``; ``None`` for a new or empty folder; else an error."""
    if not out.exists():
        return None
    if not out.is_dir():
        raise SplitError(f"output {out} exists and is not a folder")
    try:
        info = json.loads((out / INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        info = None
    if not isinstance(info, dict) or info.get("tool") != TOOL:
        if not any(not p.name.startswith(".") for p in out.iterdir()):
            return None
        raise SplitError(
            f"output folder {out} is not empty and was not made by make_splits (no {INFO_FILE}); nothing was "
            f"written: choose a new or empty folder"
        )
    old = info.get("settings", {})
    if old != settings:
        changed = [f"{k}: {old.get(k)!r} -> {settings.get(k)!r}" for k in settings if old.get(k) != settings.get(k)]
        raise SplitError(
            f"{out} holds splits made with other settings ({'; '.join(changed)}); use another output folder, or "
            f"delete {out} yourself to redo it"
        )
    old_rows = _read_manifest(out / MANIFEST_FILE)
    if old_rows is None:
        raise SplitError(f"{out}: {MANIFEST_FILE} is missing; delete {out} yourself to redo the split")
    if old_rows != rows:
        before, now = {r["path"]: r for r in old_rows}, {r["path"]: r for r in rows}
        changed_n = sum(1 for p in before.keys() & now.keys() if before[p] != now[p])
        raise SplitError(
            f"{out}: same settings, but the source changed since the split was made ({len(now.keys() - before.keys())}"
            f" file(s) added, {len(before.keys() - now.keys())} removed, {changed_n} regrouped); use a new output "
            f"folder (a changed split would mix earlier test images into training)"
        )
    return info


def _write_split_files(
    src: Path, out: Path, rows: list[dict[str, str]], info: dict[str, Any], previous: dict[str, Any] | None,
    mode: str, progress: bool,
) -> int:  # fmt: skip
    """Link (or copy) every row's file into ``out/<split>/<label>/``, with the manifest and info beside; a re-run
    (``previous``: the earlier info) only restores missing files. Returns how many were copied instead of linked."""
    manifest, info_path = out / MANIFEST_FILE, out / INFO_FILE
    if previous is None:
        out.mkdir(parents=True, exist_ok=True)
        _write_manifest(manifest, rows)
        write_json(info_path, info)  # marks the folder as ours before the first file is written
    writer = LinkWriter(mode)
    written = 0
    for r in tqdm(rows, desc=f"writing splits ({mode})", disable=not progress, leave=False):
        inner = r["path"].split("/", 1)[1]
        written += writer(src / r["path"], out / r["split"] / r["label"] / inner)
    fallback = writer.copied_instead_of_linked + (previous or {}).get("copied_instead_of_linked", 0)
    if previous is None or previous.get("status") != "complete" or written:
        write_json(info_path, {**info, "status": "complete", "copied_instead_of_linked": fallback})
    return fallback
