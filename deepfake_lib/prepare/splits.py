"""Turn a flat ``{real,fake}`` image folder into ``train/val/test`` splits with no group on two sides.

Leakage (the same identity, source video or source photo in train and in test) makes deepfake numbers look
better than they are. Files are therefore grouped (by a file-name regex, a CSV column or a mapping) and each
group goes wholly to one split, stratified by label. The source files are never moved or modified: the
splits are symlinks (or copies) in a new folder, with ``split_manifest.csv`` and ``split_info.json`` beside.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from deepfake_lib import CLASS_NAMES
from deepfake_lib.core.files import Skipped, folder_problem, is_within
from deepfake_lib.core.images import list_samples
from deepfake_lib.core.runs import LinkWriter, atomic_write, write_json
from deepfake_lib.data.scan import DataLayoutError, find_class_dirs

# the grouping helpers lived here before grouping.py: still importable from this module
from deepfake_lib.prepare.grouping import RegexGrouper as RegexGrouper
from deepfake_lib.prepare.grouping import SplitError, _File, _grouping
from deepfake_lib.prepare.grouping import group_from_regex as group_from_regex
from deepfake_lib.prepare.grouping import groups_from_csv as groups_from_csv

log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "val", "test")
MANIFEST_FILE = "split_manifest.csv"
INFO_FILE = "split_info.json"
MANIFEST_COLUMNS = ("path", "label", "group", "split")
TOOL = "deepfake_lib.splits"  # the maker recorded in split_info.json: kept across the package regrouping
SPLITS_FORMAT_VERSION = 1
ASSIGN_VERSION = 1  # bump when assign_splits would place the same items differently
FRACTION_TOLERANCE = 1e-3
MODES = ("link", "copy")
_MAX_REFINE_PASSES = 20


class LeakageError(SplitError):
    """Some groups have files in more than one split; ``groups`` maps each to its splits."""

    def __init__(self, message: str, groups: dict[str, list[str]]) -> None:
        super().__init__(message)
        self.groups = groups


# --------------------------------------------------------------------------- assignment
def _check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    try:
        values = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise SplitError(f"fractions must be numbers, got {fractions!r}") from None
    if len(values) not in (2, 3):
        raise SplitError(f"fractions need 2 (train, val) or 3 (train, val, test) entries, got {len(values)}: {values}")
    if any(not math.isfinite(f) or f < 0 for f in values):
        raise SplitError(f"fractions must be finite and >= 0, got {values}")
    if abs(sum(values) - 1.0) > FRACTION_TOLERANCE:
        raise SplitError(f"fractions must sum to 1, got {values} (sum {sum(values):.6g})")
    if values[0] == 0:
        raise SplitError(f"the train fraction must be > 0, got {values}")
    if sum(f > 0 for f in values) < 2:
        raise SplitError(f"at least two splits need a non-zero fraction (train and val or test), got {values}")
    return values


def assign_splits(
    items: list[tuple[str, int, str]], fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0
) -> dict[str, str]:
    """Map each item ``(key, label, group)`` to a split name, keeping every group in one split.

    Stratified by label: for each split and class the item count comes as close to ``fraction * class
    total`` as the groups allow. The procedure, deterministic for a seed and independent of item order:
    groups are shuffled with the seed (which breaks ties); first each split with a non-zero fraction gets
    the smallest group holding each class it lacks; the rest go largest first, each to the split where it
    most reduces the squared per-class deviation from the targets (a split's largest deficit for the
    group's classes); last, single groups move between splits while that lowers the deviation and leaves
    every split with both classes. Raises ``SplitError`` for bad fractions or items, and when a class has
    too few groups to appear in every split.
    """
    fracs = _check_fractions(fractions)
    splits = [name for name, f in zip(SPLIT_NAMES, fracs, strict=False) if f > 0]
    weights = [f / sum(fracs) for f in fracs if f > 0]
    n_cls, n_spl = len(CLASS_NAMES), len(splits)
    sizes: dict[str, list[int]] = {}
    group_of: dict[str, str] = {}
    for key, label, group in items:
        if label not in range(n_cls):
            raise SplitError(f"item {key!r}: label must be 0 ({CLASS_NAMES[0]}) or 1 ({CLASS_NAMES[1]}), got {label!r}")
        if key in group_of:
            raise SplitError(f"item {key!r} is listed twice")
        group_of[key] = group
        sizes.setdefault(group, [0] * n_cls)[label] += 1
    totals = [sum(v[c] for v in sizes.values()) for c in range(n_cls)]
    for c, n in enumerate(totals):
        if n == 0:
            raise SplitError(f"no '{CLASS_NAMES[c]}' items: every split needs both {' and '.join(CLASS_NAMES)}")
    with_class = [sum(1 for v in sizes.values() if v[c]) for c in range(n_cls)]
    for c, n in enumerate(with_class):
        if n < n_spl:
            raise SplitError(
                f"too few groups: class '{CLASS_NAMES[c]}' is in only {n} group(s), but each of the {n_spl} splits "
                f"with a non-zero fraction ({', '.join(splits)}) needs at least one; use fewer splits (e.g. "
                f"fractions=(0.8, 0.2)) or finer groups"
            )

    order = sorted(sizes)
    random.Random(seed).shuffle(order)
    rank = {g: i for i, g in enumerate(order)}
    target = [[w * t for t in totals] for w in weights]
    count = [[0] * n_cls for _ in splits]
    scale = [(max(totals) / t) ** 2 for t in totals]  # per-class relative deviations, largest class weighs 1
    where: dict[str, int] = {}

    def cost(g: str, s: int, sign: int = 1) -> float:
        """Change of the squared deviation of split ``s`` when group ``g`` is added (sign 1) or removed (-1)."""
        return sum(scale[c] * v * (2 * sign * (count[s][c] - target[s][c]) + v) for c, v in enumerate(sizes[g]) if v)

    def move(g: str, s: int, sign: int = 1) -> None:
        for c, v in enumerate(sizes[g]):
            count[s][c] += sign * v
        if sign > 0:
            where[g] = s

    # 1. each split gets each class: the smallest group that covers a missing class without doubling one
    for s in range(n_spl):
        for c in sorted(range(n_cls), key=lambda c: (with_class[c], c)):
            if count[s][c]:
                continue
            free = [g for g in order if g not in where and sizes[g][c]]
            if not free:
                raise SplitError(
                    f"too few groups: no group with class '{CLASS_NAMES[c]}' is left for split '{splits[s]}'; "
                    f"use fewer splits (e.g. fractions=(0.8, 0.2)) or finer groups"
                )

            def smallest_first(g: str, s: int = s) -> tuple[int, int, int]:
                doubled = sum(1 for k, v in enumerate(sizes[g]) if v and count[s][k])
                return doubled, sum(sizes[g]), rank[g]

            move(min(free, key=smallest_first), s)
    # 2. the rest, largest first, each where it fills the largest deficit
    for g in sorted((g for g in order if g not in where), key=lambda g: (-sum(sizes[g]), rank[g])):
        move(g, min(range(n_spl), key=lambda s: (cost(g, s), s)))
    # 3. move single groups while that lowers the deviation and leaves both classes in every split
    for _ in range(_MAX_REFINE_PASSES):
        moved = False
        for g in order:
            s = where[g]
            if any(v and count[s][c] == v for c, v in enumerate(sizes[g])):
                continue
            change, dest = min((cost(g, s, -1) + cost(g, s2), s2) for s2 in range(n_spl) if s2 != s)
            if change < -1e-9:
                move(g, s, -1)
                move(g, dest)
                moved = True
        if not moved:
            break
    return {key: splits[where[group]] for key, group in group_of.items()}


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


def _read_manifest(path: Path) -> list[dict[str, str]] | None:
    if not path.is_file():
        return None
    with path.open(newline="", encoding="utf-8") as fh:
        return [dict(row) for row in csv.DictReader(fh)]


def split_groups(data_dir: str | os.PathLike[str]) -> dict[str, str]:
    """Each file of a ``make_splits`` folder (``data_dir/<split>/<class>/...``, an absolute path string) -> its group,
    from the folder's ``split_manifest.csv``; empty for a folder without one (split by hand)."""
    root = Path(os.path.abspath(data_dir))
    rows = _read_manifest(root / MANIFEST_FILE) or []
    return {str(root / r["split"] / r["path"]): r["group"] for r in rows if r.get("split") and r.get("group")}


def _write_manifest(path: Path, rows: list[dict[str, str]]) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(path, write)


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
