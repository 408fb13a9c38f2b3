"""Runs side by side: what each was made with (recipe, data, package versions) and what it measured (test AUC with
its interval, calibration, false alarms, time), and their learning curves overlaid."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfake_lib.core.provenance import PROVENANCE_FILE
from deepfake_lib.core.recipe import RECIPE_FILE, Recipe, RecipeError, load_recipe
from deepfake_lib.core.runs import CONFIG_FILE, METRICS_FILE, read_json


@dataclass
class RunRecord:
    """One run folder read back: its recipe (None when it has none), provenance, metrics and pipeline config."""

    run_dir: Path
    recipe: Recipe | None
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def history(self) -> list[dict[str, Any]]:
        return list((self.metrics.get("train") or {}).get("history") or [])


def _json(path: Path) -> dict[str, Any]:
    try:
        found = read_json(path, default={})
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def read_run(run_dir: str | os.PathLike[str]) -> RunRecord:
    """A run folder's records; ``FileNotFoundError`` when ``run_dir`` is not a run folder (no metrics.json)."""
    root = Path(run_dir)
    if not (root / METRICS_FILE).is_file():
        raise FileNotFoundError(f"{root}: not a run folder (no {METRICS_FILE})")
    try:
        recipe = load_recipe(root / RECIPE_FILE) if (root / RECIPE_FILE).is_file() else None
    except RecipeError:
        recipe = None
    return RunRecord(root, recipe, _json(root / PROVENANCE_FILE), _json(root / METRICS_FILE), _json(root / CONFIG_FILE))


def is_run(folder: str | os.PathLike[str]) -> bool:
    """True for a run folder that has measured something (it holds metrics.json)."""
    return (Path(folder) / METRICS_FILE).is_file()


def latest_runs(runs_dir: str | os.PathLike[str], n: int = 5) -> list[Path]:
    """The ``n`` most recently changed run folders under ``runs_dir`` (oldest first; ``latest`` skipped)."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and is_run(p)]
    return sorted(found, key=lambda p: (p / METRICS_FILE).stat().st_mtime)[-n:]


def _auc_interval(report: dict[str, Any]) -> tuple[float, float]:
    """The report's stored AUC interval, else one from the AUC and the class sizes (Hanley-McNeil)."""
    stored = report.get("auc_interval") or report.get("auc_ci")
    if isinstance(stored, dict) and "low" in stored:
        return float(stored["low"]), float(stored["high"])
    from deepfake_lib.evaluation.metrics import normal_auc_interval

    got = normal_auc_interval(float(report.get("auc", math.nan)), int(report.get("n_fake", 0)),
                              int(report.get("n_real", 0)))  # fmt: skip
    return got["low"], got["high"]


def run_seconds(record: RunRecord) -> float:
    """The run's time: the pipeline's seconds per notebook where it ran them, else its training epochs' seconds (a run
    of ``cli.train`` or a benchmark); 0 when neither was recorded."""
    steps = record.config.get("step_seconds") or {}
    if steps:
        return float(sum(steps.values()))
    return float(sum(h.get("epoch_seconds", 0) for h in record.history))


def run_row(record: RunRecord, reference: RunRecord | None = None) -> dict[str, Any]:
    """One row of the comparison: the run, how its recipe differs from ``reference``'s, its data, and what it
    measured (NaN where the run has not got that far)."""
    evaluate = record.metrics.get("evaluate") or {}
    report = evaluate.get("report") or {}
    train = record.metrics.get("train") or {}
    low, high = _auc_interval(report) if report else (math.nan, math.nan)
    differs = ""
    if reference is not None and record is not reference:
        if record.recipe is not None and reference.recipe is not None:
            diff = record.recipe.differences(reference.recipe)
            differs = ", ".join(f"{k} {a!r}" for k, (a, _) in diff.items()) or "same recipe"
        else:
            differs = "no recipe.yaml"
    data = record.provenance.get("data") or {}
    seconds = run_seconds(record)
    return {
        "run": record.name,
        "recipe": record.recipe.name if record.recipe is not None else "",
        "differs from the first": differs,
        "data": f"{Path(data['folder']).name} {data['sha256']}" if data else "",
        "test AUC": report.get("auc", math.nan),
        "AUC 95% interval": f"{low:.3f}-{high:.3f}" if math.isfinite(low) else "",
        "ECE": report.get("ece", math.nan),
        "TPR@5% FPR": report.get("tpr_at_5pct_fpr", math.nan),
        "epochs (best)": f"{train.get('epochs_run', '')} ({train.get('best_epoch', '')})" if train else "",
        "minutes": round(seconds / 60, 1) if seconds else math.nan,
    }


def compare_runs(run_dirs: list[str | os.PathLike[str]]) -> Any:
    """A table (pandas DataFrame) of ``run_row`` for each run, the first being the reference."""
    import pandas as pd

    records = [read_run(d) for d in run_dirs]
    return pd.DataFrame([run_row(r, records[0] if records else None) for r in records])


def learning_curves_figure(run_dirs: list[str | os.PathLike[str]], metrics: tuple[str, ...] = ("val_auc", "val_loss")):
    """Each run's per-epoch ``metrics`` overlaid, one panel per metric (a matplotlib Figure)."""
    import matplotlib.pyplot as plt

    records = [read_run(d) for d in run_dirs]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for record in records:
            rows = [h for h in record.history if isinstance(h.get(metric), int | float)]
            if rows:
                ax.plot([h["epoch"] for h in rows], [h[metric] for h in rows], marker="o", ms=3, label=record.name)
        ax.set_xlabel("epoch")
        ax.set_title(metric.replace("_", " "))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def markdown_table(table: Any) -> str:
    """A DataFrame as a Markdown table, numbers to 3 decimals, NaN as blank."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "" if math.isnan(value) else f"{value:.3f}"
        return str(value).replace("|", "/")

    head = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, rule, *rows])
