"""Cross-dataset evaluation: further ``{real,fake}`` folders scored with the run's checkpoint and threshold.

A detector's number on its own test split says how well it knows the fakes it was trained on; a folder of fakes
from another source says whether it generalises. ``score_extra_dirs`` predicts each folder exactly like the report
split (same checkpoint, same decision threshold, no re-tuning), with faces cropped as the checkpoint's training
data was when it was trained on face crops, and ``cross_dataset_table`` puts the rows next to the in-domain one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn

from deepfake_lib.core.choices import AUTO_OR_BOOL
from deepfake_lib.core.runs import resolve_path, skipped_record
from deepfake_lib.data.scan import DataLayoutError, find_class_dirs, scan_split
from deepfake_lib.evaluation.evaluate import predict_samples
from deepfake_lib.evaluation.inference import Predictions
from deepfake_lib.evaluation.metrics import full_metrics

TABLE_KEYS = ("n_real", "n_fake", "auc", "balanced_accuracy", "eer", "fake_recall", "real_recall", "average_precision")
FACES_CHOICES = AUTO_OR_BOOL


def resolve_extra_dir(path: str | os.PathLike[str]) -> Path:
    """The ``{real,fake}`` folder to score: ``path`` itself when it holds both class folders, else its ``test``
    split. ``DataLayoutError`` says what is missing."""
    root = resolve_path(path)
    if not root.is_dir():
        raise DataLayoutError(f"extra test folder {root} not found")
    for folder in (root, root / "test"):
        if folder.is_dir() and len(find_class_dirs(folder)) == 2:
            return folder
    raise DataLayoutError(
        f"extra test folder {root}: expected real/ and fake/ folders in it (or in {root / 'test'}); "
        f"found {', '.join(sorted(p.name for p in root.iterdir() if p.is_dir())) or 'no folders'}"
    )


def _name(folder: Path, taken: set[str]) -> str:
    base = f"{folder.parent.name}/{folder.name}" if folder.name in ("test", "val", "train") else folder.name
    name, k = base, 2
    while name in taken:
        name, k = f"{base} ({k})", k + 1
    taken.add(name)
    return name


@dataclass
class CrossResult:
    """One extra folder's predictions at the run's threshold: ``report`` is ``metrics.full_metrics``;
    ``left_out``: files not scored (no face, unreadable) as ``(path, reason)``; ``faces``: the crop settings used
    (None: the images as they are)."""

    name: str
    folder: Path
    preds: Predictions
    report: dict[str, Any]
    faces: dict[str, Any] | None = None
    left_out: list[tuple[str, str]] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        """The table and metrics.json row: the folder, how it was read, ``TABLE_KEYS`` and what was left out."""
        return {
            "name": self.name,
            "path": str(self.folder),
            "faces": self.faces is not None,
            **{k: self.report.get(k) for k in TABLE_KEYS},
            "n_left_out": len(self.left_out),
            "left_out": [{"path": p, "reason": r} for p, r in self.left_out[:50]],
        }


def face_settings(faces: bool | str, checkpoint: dict[str, Any] | None) -> dict[str, Any] | None:
    """The face-crop settings for an extra folder: "auto" crops as the checkpoint's training data was (its
    ``faces`` key), True crops with those or the face step's defaults, False never crops."""
    if faces not in FACES_CHOICES:
        raise ValueError(f"EXTRA_TEST_FACES must be 'auto', True or False, got {faces!r}")
    trained = (checkpoint or {}).get("faces")
    if faces is False or (faces == "auto" and not trained):
        return None
    defaults = {"margin": 1.3, "size": 224, "keep": "largest", "min_score": 0.9}
    return {**defaults, **{k: v for k, v in (trained or {}).items() if k in defaults}}


def _crop(
    folder: Path, settings: dict[str, Any], out_root: Path, name: str, device: str, progress: bool
) -> tuple[Path, list[tuple[str, str]]]:
    from deepfake_lib.prepare.faces import prepare_faces
    from deepfake_lib.prepare.folder_names import faces_folder_name

    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    out = (
        out_root
        / slug
        / faces_folder_name(settings["margin"], settings["size"], settings["keep"], settings["min_score"])
    )
    result = prepare_faces(folder, out, device=device, progress=progress, **settings)
    left = [(str(folder / p), r) for p, r in [*result.no_face, *result.unreadable]]
    return result.out_dir, left


def score_extra_dirs(
    model: nn.Module,
    dirs: list[str | os.PathLike[str]] | None,
    threshold: float,
    run_dir: str | os.PathLike[str],
    faces: bool | str = "auto",
    checkpoint: dict[str, Any] | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
    device: str = "cpu",
    progress: bool = True,
    tta: str = "none",
) -> list[CrossResult]:
    """Predict every folder of ``dirs`` (``resolve_extra_dir``) with ``model`` (and test-time augmentation
    ``tta``, as the threshold was chosen) and score it at ``threshold``.

    Face crops (``face_settings(faces, checkpoint)``) are cached under ``run_dir/extra_test/``; images without a
    face and unreadable files are left out and listed, the rest are scored. A folder without usable images of
    both classes still gets a row (AUC and EER are then NaN).
    """
    taken: set[str] = set()
    settings = face_settings(faces, checkpoint)
    results = []
    for d in dirs or []:
        folder = resolve_extra_dir(d)
        name = _name(folder, taken)
        scored, left_out = folder, []
        if settings is not None:
            scored, left_out = _crop(folder, settings, resolve_path(run_dir) / "extra_test", name, device, progress)
        try:
            scan = scan_split(scored.parent, scored.name, validate=False)
        except DataLayoutError as exc:  # face cropping can leave a class (or everything) without images
            if settings is None:
                raise
            scan, left_out = None, [*left_out, (str(scored), str(exc))]
        preds = predict_samples(
            model, scan.samples if scan else [], batch_size=batch_size, num_workers=num_workers, progress=progress,
            desc=f"predict {name}", tta=tta,
        )  # fmt: skip
        left_out += [(str(s.path), s.reason) for s in (scan.skipped if scan else [])] + list(preds.bad)
        report = full_metrics(preds.labels, preds.probs, threshold)
        results.append(CrossResult(name, folder, preds, report, settings, left_out))
    return results


def cross_dataset_table(report_split: str, report: dict[str, Any], results: list[CrossResult]) -> pd.DataFrame:
    """In-domain (the report split) and each extra folder: one row each, ``TABLE_KEYS`` as columns."""
    rows = {f"{report_split} (in-domain)": {k: report.get(k) for k in TABLE_KEYS}}
    rows.update({r.name: {k: r.report.get(k) for k in TABLE_KEYS} for r in results})
    return pd.DataFrame(rows).T


def roc_scores(report_split: str, final: Predictions, results: list[CrossResult]) -> dict[str, tuple[Any, Any]]:
    """``{name: (labels, probs)}`` of the report split and each extra folder, for ``plots.roc_levels``."""
    return {
        f"{report_split} (in-domain)": (final.labels, final.probs),
        **{r.name: (r.preds.labels, r.preds.probs) for r in results},
    }


def cross_dataset_record(
    report_split: str, report: dict[str, Any], threshold: float, results: list[CrossResult], faces: bool | str
) -> dict[str, Any]:
    """The ``cross_dataset`` section of metrics.json."""
    if not results:
        return skipped_record("no EXTRA_TEST_DIRS")
    return {
        "threshold": float(threshold),
        "faces": faces,
        "in_domain": {"name": report_split, **{k: report.get(k) for k in TABLE_KEYS}},
        "sets": [r.row() for r in results],
    }
