"""Turn a flat ``{real,fake}`` image folder into ``train/val/test`` splits with no group on two sides.

Leakage (the same identity, source video or source photo in train and in test) makes deepfake numbers look
better than they are. Files are therefore grouped (by a file-name regex, a CSV column or a mapping) and each
group goes wholly to one split, stratified by label. The source files are never moved or modified: the
splits are symlinks (or copies) in a new folder, with ``split_manifest.csv`` and ``split_info.json`` beside.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from deepfake_lib import CLASS_NAMES
from deepfake_lib.core.files import Skipped, folder_problem, is_within
from deepfake_lib.core.images import list_samples
from deepfake_lib.data.scan import DataLayoutError, find_class_dirs
from deepfake_lib.prepare.assignment import ASSIGN_VERSION, SPLIT_NAMES, _check_fractions, assign_splits
from deepfake_lib.prepare.grouping import SplitError, _File, _grouping
from deepfake_lib.prepare.leakage import check_no_leakage
from deepfake_lib.prepare.split_writer import (
    INFO_FILE,
    MANIFEST_FILE,
    TOOL,
    _previous_run,
    _read_manifest,
    _write_split_files,
)

log = logging.getLogger(__name__)

SPLITS_FORMAT_VERSION = 1
MODES = ("link", "copy")


# --------------------------------------------------------------------------- folders
def _holds_class_dirs(folder: Path) -> bool:
    try:
        return bool(find_class_dirs(folder))
    except DataLayoutError:
        return True
    except OSError:
        return False


def _layout_problem(src: Path) -> str | None:
    """``None`` when ``src`` is a flat ``{real,fake}`` folder, else what was found and what is expected."""
    expected = f"expected {src}/real and {src}/fake (any case) holding the images, sub-folders allowed"
    if not src.is_dir():
        return f"source folder {src}: {folder_problem(src) or 'not found'}; {expected}"
    class_dirs = find_class_dirs(src)  # DataLayoutError for two folders of one class
    children = sorted(p.name for p in src.iterdir() if p.is_dir())
    splits = [n for n in children if n.lower() not in CLASS_NAMES and _holds_class_dirs(src / n)]
    if splits:
        return (
            f"{src} is not flat: {', '.join(splits)} hold class folders, so it looks split already (use it as "
            f"DATA_DIR directly); {expected}"
        )
    missing = [name for i, name in enumerate(CLASS_NAMES) if i not in class_dirs]
    if missing:
        return f"{src}: no {' or '.join(missing)} folder (found: {', '.join(children) or 'no folders'}); {expected}"
    return None


def is_flat_layout(data_dir: str | os.PathLike[str]) -> bool:
    """True when ``data_dir`` holds ``real`` and ``fake`` folders (any case) and no split folders of classes."""
    try:
        return _layout_problem(Path(data_dir)) is None
    except (DataLayoutError, OSError):
        return False


def _scan_flat(src: Path) -> tuple[list[_File], list[Skipped]]:
    """Samples under ``src/{real,fake}`` (images, clip folders and videos, each one unit; not decoded), and what
    the listing skipped."""
    files: list[_File] = []
    skipped: list[Skipped] = []
    for label, folder in sorted(find_class_dirs(src).items()):
        found, bad = list_samples(folder, videos=True)
        if not found:
            raise SplitError(f"{folder}: no image, clip or video files found; every class needs some")
        for p in found:
            inner = p.relative_to(folder).as_posix()
            files.append(_File(f"{folder.name}/{inner}", inner, label))
        skipped += bad
    return files, skipped


def split_groups(data_dir: str | os.PathLike[str]) -> dict[str, str]:
    """Each file of a ``make_splits`` folder (``data_dir/<split>/<class>/...``, an absolute path string) -> its group,
    from the folder's ``split_manifest.csv``; empty for a folder without one (split by hand)."""
    root = Path(os.path.abspath(data_dir))
    rows = _read_manifest(root / MANIFEST_FILE) or []
    return {str(root / r["split"] / r["path"]): r["group"] for r in rows if r.get("split") and r.get("group")}


# --------------------------------------------------------------------------- make_splits
@dataclass
class SplitResult:
    """What ``make_splits`` wrote: per-split class counts and group counts, and the manifest."""

    out_dir: Path
    manifest: Path
    counts: dict[str, dict[str, int]]
    n_groups: dict[str, int]
    unmatched: int
    info: Path | None = None
    skipped: int = 0
    copied_instead_of_linked: int = 0
    reused: bool = field(default=False, compare=False)

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())

    def summary(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "manifest": str(self.manifest),
            "info": str(self.info) if self.info else None,
            "total": self.total,
            "counts": self.counts,
            "n_groups": self.n_groups,
            "unmatched": self.unmatched,
            "skipped": self.skipped,
            "copied_instead_of_linked": self.copied_instead_of_linked,
            "reused": self.reused,
        }


def _report(rows: list[dict[str, str]], splits: Sequence[str], weights: Sequence[float]) -> dict[str, Any]:
    """Counts, groups, achieved fractions and the leakage check of manifest rows."""
    counts = {s: {name: 0 for name in CLASS_NAMES} for s in splits}
    groups: dict[str, set[str]] = {s: set() for s in splits}
    for r in rows:
        counts[r["split"]][r["label"]] += 1
        groups[r["split"]].add(r["group"])
    totals = Counter(r["label"] for r in rows)
    achieved = {
        s: {
            **{name: round(counts[s][name] / totals[name], 4) for name in CLASS_NAMES},
            "all": round(sum(counts[s].values()) / len(rows), 4),
        }
        for s in splits
    }
    warnings = [
        f"{s}: {name} got {achieved[s][name]:.1%} of the images for a target of {w:.1%} (the groups are coarse)"
        for s, w in zip(splits, weights, strict=True)
        for name in CLASS_NAMES
        if abs(achieved[s][name] - w) > 0.05
    ]
    all_groups = set().union(*groups.values())
    return {
        "counts": counts,
        "n_groups": {s: len(g) for s, g in groups.items()},
        "fractions_achieved": achieved,
        "leakage_check": {
            "passed": sum(len(g) for g in groups.values()) == len(all_groups),
            "rule": "every group (and so every file) is in exactly one split",
            "groups": len(all_groups),
            "groups_in_several_splits": sum(len(g) for g in groups.values()) - len(all_groups),
            "shared_groups": {f"{a}/{b}": len(groups[a] & groups[b]) for a, b in combinations(splits, 2)},
        },
        "warnings": warnings,
    }


def _checked_folders(src_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], mode: str) -> tuple[Path, Path]:
    """The resolved source and output folders; ``SplitError`` for a bad mode, a missing or unsplittable source,
    or an output inside the source."""
    if mode not in MODES:
        raise SplitError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    src, out = Path(src_dir).expanduser(), Path(out_dir).expanduser()
    if not src.is_dir():
        raise SplitError(f"source folder {src}: {folder_problem(src) or 'not found'}")
    src, out = src.resolve(), out.resolve()
    if is_within(out, src):
        raise SplitError(f"output folder {out} is inside the source folder {src}; choose a folder outside it")
    problem = _layout_problem(src)
    if problem:
        raise SplitError(problem)
    return src, out


def _assigned_rows(
    files: list[_File], group_for: Callable[[_File], str | None], method: str, fracs: tuple[float, ...], seed: int
) -> tuple[list[dict[str, str]], int]:
    """Manifest rows (path, label, group, split), sorted by path and checked for leakage, and how many files
    got no group from the grouping (each is then a group of its own)."""
    keys = [group_for(f) for f in files]
    unmatched = sum(k is None for k in keys)
    if method != "file" and unmatched == len(files):
        raise SplitError(
            f"the {method} grouping gave no group to any of the {len(files)} files (e.g. "
            f"{files[0].rel!r}); check the pattern or the paths"
        )
    if unmatched and method != "file":
        log.warning("%d file(s) got no group from the %s; each is a group of its own", unmatched, method)
    assignment = assign_splits([(f.rel, f.label, k or f.rel) for f, k in zip(files, keys, strict=True)], fracs, seed)
    rows = sorted(
        (
            {"path": f.rel, "label": CLASS_NAMES[f.label], "group": k or f.rel, "split": assignment[f.rel]}
            for f, k in zip(files, keys, strict=True)
        ),
        key=lambda r: r["path"],
    )
    check_no_leakage(rows)
    return rows, unmatched


def _split_info(
    rows: list[dict[str, str]], settings: dict[str, Any], unmatched: int, skipped: list[Skipped]
) -> dict[str, Any]:
    """``split_info.json`` while writing: the settings, the report of ``rows`` with its warnings, what was left."""
    fracs, method = settings["fractions"], settings["grouping"]["method"]
    splits = [s for s, f in zip(SPLIT_NAMES, fracs, strict=False) if f > 0]
    report = _report(rows, splits, [f / sum(fracs) for f in fracs if f > 0])
    if method == "file":
        report["warnings"].insert(0, "no grouping: each file is its own group, so identities or sources may leak")
    if unmatched and method != "file":
        report["warnings"].insert(0, f"{unmatched} file(s) got no group and are each a group of their own")
    return {
        "tool": TOOL,
        "format_version": SPLITS_FORMAT_VERSION,
        "status": "writing",
        "settings": settings,
        "total": len(rows),
        **report,
        "unmatched": unmatched,
        "skipped": [{"path": str(s.path), "reason": s.reason} for s in skipped],
    }


def make_splits(
    src_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    group_regex: str | None = None,
    groups: dict[str, str] | None = None,
    group_csv: str | None = None,
    group_column: str | None = None,
    path_column: str = "path",
    mode: str = "link",
    progress: bool = True,
) -> SplitResult:
    """Split the flat folder ``src_dir/{real,fake}`` into ``out_dir/<split>/<real|fake>/<relative path>``.

    Group by at most one of ``group_regex`` (see ``group_from_regex``), ``groups`` (relative path or file
    name -> group) or ``group_csv`` + ``group_column`` (+ ``path_column``); files without a group, and all
    files when no grouping is given, are groups of their own. ``mode`` "link" writes absolute symlinks
    (copies where links are not permitted), "copy" copies; the sources are never touched. Also writes
    ``split_manifest.csv`` (path, label, group, split) and ``split_info.json``. Re-running with the same
    settings on its own output returns the same result and only restores missing files; anything else in
    the way raises ``SplitError`` (a ``ValueError``) and nothing is deleted.
    """
    fracs = _check_fractions(fractions)
    src, out = _checked_folders(src_dir, out_dir, mode)
    grouping, group_for = _grouping(src, group_regex, groups, group_csv, group_column, path_column)
    files, skipped = _scan_flat(src)
    rows, unmatched = _assigned_rows(files, group_for, grouping["method"], fracs, seed)
    settings = {
        "algorithm": ASSIGN_VERSION,
        "source_dir": str(src),
        "fractions": list(fracs),
        "seed": seed,
        "grouping": grouping,
        "mode": mode,
    }
    info = _split_info(rows, settings, unmatched, skipped)
    previous = _previous_run(out, settings, rows)
    fallback = _write_split_files(src, out, rows, info, previous, mode, progress)
    return SplitResult(
        out_dir=out,
        manifest=out / MANIFEST_FILE,
        counts=info["counts"],
        n_groups=info["n_groups"],
        unmatched=unmatched,
        info=out / INFO_FILE,
        skipped=len(skipped),
        copied_instead_of_linked=fallback,
        reused=previous is not None,
    )
