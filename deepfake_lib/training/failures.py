"""The failures.json that notebook 03 mined: loading it, and the checks that it fits the model and the splits."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from deepfake_lib import CLASS_NAMES
from deepfake_lib.core.runs import read_json, resolve_path
from deepfake_lib.data.scan import Sample
from deepfake_lib.evaluation.evaluate import FAILURES_FILE
from deepfake_lib.models.checkpoint import weights_id


@dataclass
class FailureSet:
    """The content of failures.json: the split the failures came from and the records (hardest first)."""

    split: str
    threshold: float
    records: list[dict[str, Any]]
    source: Path
    missing: list[str] = field(default_factory=list)
    weights_id: str | None = None  # of the checkpoint that was evaluated (None in files written before ids)
    checkpoint: str | None = None

    @property
    def samples(self) -> list[Sample]:
        return [Sample(Path(r["path"]), CLASS_NAMES.index(r["true_label"])) for r in self.records]


def load_failures(run_dir: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None = None) -> FailureSet:
    """Read ``<run_dir>/failures.json`` (written by notebook 03).

    When the data folder moved, paths under the recorded ``data_dir`` are re-rooted at ``data_dir``;
    failures whose file is gone are dropped and listed in ``missing``.
    """
    path = resolve_path(run_dir) / FAILURES_FILE
    payload = read_json(path)
    if payload is None:
        raise FileNotFoundError(f"{path} not found: run notebook 03_evaluate first (it mines the failures)")
    if not isinstance(payload, dict) or "split" not in payload or "failures" not in payload:
        raise ValueError(f"{path}: not a failures file written by deepfake_lib.evaluation.evaluate.write_failures")
    old_root = Path(payload["data_dir"]) if payload.get("data_dir") else None
    new_root = resolve_path(data_dir) if data_dir is not None else None
    records, missing = [], []
    for rec in payload["failures"]:
        p = Path(rec["path"])
        if not p.exists() and old_root is not None and new_root is not None:
            with contextlib.suppress(ValueError):
                p = new_root / p.relative_to(old_root)
        if p.exists():
            records.append({**rec, "path": str(p)})
        else:
            missing.append(rec["path"])
    return FailureSet(
        payload["split"], float(payload["threshold"]), records, path, missing, payload.get("weights_id"),
        payload.get("checkpoint"),
    )  # fmt: skip


class StaleFailuresError(ValueError):
    """failures.json was mined from another model than the one about to be fine-tuned."""


def check_failures_source(failures: FailureSet, model: nn.Module) -> None:
    """Raise ``StaleFailuresError`` when ``failures`` were mined with other weights than ``model``'s (a model
    re-trained after 03 ran): its failures are not this model's. Files written before ids pass unchecked."""
    if failures.weights_id is None:
        return
    current = weights_id(model.state_dict())
    if current != failures.weights_id:
        raise StaleFailuresError(
            f"{failures.source} was mined from other weights ({failures.checkpoint or 'a checkpoint'}, weights id "
            f"{failures.weights_id}) than the model being fine-tuned (weights id {current}): best_model.pth was "
            "re-trained after 03_evaluate ran; run 03_evaluate again first"
        )


def check_splits(failure_split: str, eval_split: str, val_split: str, replay_split: str = "train") -> list[str]:
    """Refuse to report on, or validate on, a split fine-tuning learned from; return warnings for weaker set-ups."""
    for role, split in (("failures", failure_split), ("replay images", replay_split)):
        if eval_split == split:
            raise ValueError(
                f"EVAL_SPLIT '{eval_split}' is where the {role} come from: before/after must be compared on a split "
                f"fine-tuning never saw (for example 'test')"
            )
    for role, split in (("failures", failure_split), ("replay images", replay_split)):
        if val_split == split:
            raise ValueError(
                f"VAL_SPLIT '{val_split}' is where the {role} come from: early stopping, keeping the original and "
                f"the new threshold need images fine-tuning does not train on (for example 'val')"
            )
    warnings = []
    if val_split == eval_split:
        warnings.append(
            f"VAL_SPLIT and EVAL_SPLIT are both '{eval_split}': early stopping and the threshold are tuned on the "
            f"split that reports the comparison, so the 'after' numbers are optimistic"
        )
    return warnings
