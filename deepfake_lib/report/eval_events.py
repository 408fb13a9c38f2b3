"""An evaluation as TensorBoard events (``<run>/tensorboard/evaluate``): PR curves and ROC figures of the report
split and each cross-dataset set, the headline metrics as scalars, and the most confident mistakes as images."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepfake_lib.core.events import events_dir, open_writer, write_events
from deepfake_lib.core.images import ImageLoadError, load_image, resize_center_crop
from deepfake_lib.evaluation.evaluate import find_failures
from deepfake_lib.evaluation.metrics import SUMMARY_KEYS, has_both_classes

EVALUATE_EVENTS = "evaluate"
N_MISTAKES = 8
THUMB = 96  # px of each mistake's image


def tag_name(name: str) -> str:
    """A set's name as a TensorBoard tag part: letters, digits, ``.``, ``_`` and ``-``."""
    return re.sub(r"[^\w.-]+", "_", str(name)).strip("_") or "set"


def _scalars(writer: Any, prefix: str, report: dict[str, Any]) -> None:
    for key in SUMMARY_KEYS:
        value = report.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            writer.add_scalar(f"{prefix}/{key}", float(value), 0)


def _curves(writer: Any, name: str, labels: Any, probs: Any, threshold: float) -> None:
    """The PR curve (TensorBoard's own) and the ROC curve (the report's figure) of one set."""
    from deepfake_lib.report.plots import roc_curve

    y, p = np.asarray(labels).astype(int), np.clip(np.asarray(probs, dtype=np.float64), 0.0, 1.0)
    if y.size == 0:
        return
    writer.add_pr_curve(f"pr_curve/{name}", y, p, global_step=0)
    if has_both_classes(y):
        writer.add_figure(f"roc_curve/{name}", roc_curve(y, p, threshold, label=name), global_step=0, close=True)


def mistake_images(mistakes: Sequence[dict[str, Any]], size: int = THUMB) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """``[N, size, size, 3]`` uint8 thumbnails of the mistakes' files (a clip's middle frame) and their records;
    files that no longer load are left out."""
    images, shown = [], []
    for record in mistakes:
        try:
            images.append(np.asarray(resize_center_crop(load_image(record["path"]), size), dtype=np.uint8))
        except (ImageLoadError, OSError):
            continue
        shown.append(record)
    return (np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)), shown


def _mistakes_text(shown: Sequence[dict[str, Any]]) -> str:
    rows = [
        f"| {i} | {Path(r['path']).name} | {r['true_label']} | {r['probability']:.4f} |" for i, r in enumerate(shown, 1)
    ]
    return "\n".join(["| # | file | true | p(FAKE) |", "|---|---|---|---|", *rows])


def log_evaluation(
    run_dir: str | os.PathLike[str],
    split: str,
    preds: Any,
    report: dict[str, Any],
    threshold: float,
    extra: Sequence[Any] = (),
    n_mistakes: int = N_MISTAKES,
    enabled: bool | None = None,
) -> Path | None:
    """Write the events of 03's evaluation, replacing those of an earlier one; returns their folder, or None when
    events are off or cannot be written (``core.events``).

    ``preds``: the report split's ``Predictions`` (labels, probs, paths); ``report``: its metrics at ``threshold``;
    ``extra``: the cross-dataset results (``name``, ``preds``, ``report``). The ``n_mistakes`` images of ``split``
    misclassified most confidently go in as one batch of images, listed in a text beside them.
    """
    folder = events_dir(run_dir, EVALUATE_EVENTS)
    writer = open_writer(folder, replace=True, enabled=enabled)
    if writer is None:
        return None
    name = tag_name(split)
    mistakes = find_failures(preds, threshold)[:n_mistakes] if n_mistakes > 0 else []
    images, shown = mistake_images(mistakes)

    def write(w: Any) -> None:
        _scalars(w, name, report)
        _curves(w, name, preds.labels, preds.probs, threshold)
        for result in extra:
            _scalars(w, tag_name(result.name), result.report)
            _curves(w, tag_name(result.name), result.preds.labels, result.preds.probs, threshold)
        if len(shown):
            w.add_images(f"mistakes/{name}", images, global_step=0, dataformats="NHWC")
            w.add_text(f"mistakes/{name}", _mistakes_text(shown), global_step=0)

    written = write_events(writer, "the evaluation", write)
    write_events(writer, "the evaluation", lambda w: w.close())
    return folder if written else None
