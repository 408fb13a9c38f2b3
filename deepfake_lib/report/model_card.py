"""``<run>/MODEL_CARD.md``: what the run's model is, what it was trained on, how it was measured and what it
measured (``metrics.json``), its intended use and its known failure modes. Written by 03, rewritten by 04."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deepfake_lib.core.runs import METRICS_FILE, atomic_write, read_json, resolve_path, update_metrics
from deepfake_lib.evaluation.evaluate import FAILURES_FILE
from deepfake_lib.evaluation.metrics import bootstrap_auc_interval, normal_auc_interval
from deepfake_lib.report.summary import MODEL_CARD_FILE, describe_weights

SECTION = "model_card"  # metrics.json: the card's file and its AUC intervals
LARGE_AUC_DROP = 0.02  # a degradation that costs this much AUC is a known failure mode
CROSS_DATASET_GAP = 0.05  # and so is a set this far below the in-domain AUC
EVALUATED, FINETUNED = "evaluated", "finetuned"
INTENDED_USE = (
    "Research on deepfake detection and forensic triage: ranking images and videos so that a trained examiner "
    "looks at the most suspicious first, and comparing detectors. **Not a sole basis for decisions** about people, "
    "content or legal matters: a score is one piece of evidence to weigh, not a verdict. The model knows the "
    "forgeries of its training data only (below); fakes made another way, re-compressed or resized copies and faces "
    "unlike those it was trained on lower its accuracy (see the known failure modes)."
)
PairScores = Mapping[str, tuple[Any, Any]]


def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool) or value is None:
        return "n/a" if value is None else str(value)
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def _pct(value: Any) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, int | float) and math.isfinite(value) else "n/a"


def _table(rows: list[list[Any]], header: list[str]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows] + [""]


def domains(metrics: dict[str, Any], finetuned: bool = False) -> list[dict[str, Any]]:
    """The rows of the metrics table: ``{"key", "name", "kind", "model", "report"}`` for the fine-tuned model on
    04's comparison split (``finetuned``), then 03's report split and each cross-dataset set."""
    ev, cross, ft = metrics.get("evaluate") or {}, metrics.get("cross_dataset") or {}, metrics.get("finetune") or {}
    rows = []
    if finetuned and ft.get("after"):
        split = ft.get("eval_split", "test")
        model = "fine-tuned (04)" if ft.get("status") == "done" else f"04 kept the original ({ft.get('status')})"
        rows.append({"key": f"{FINETUNED}:{split}", "name": split, "kind": "in-domain", "model": model,
                     "report": ft["after"]})  # fmt: skip
    if ev.get("report"):
        rows.append({"key": f"{EVALUATED}:{ev.get('report_split')}", "name": ev.get("report_split"),
                     "kind": "in-domain", "model": "trained (02)", "report": ev["report"]})  # fmt: skip
    for s in cross.get("sets") or []:
        rows.append({"key": f"{EVALUATED}:{s.get('name')}", "name": s.get("name"), "kind": "cross-dataset",
                     "model": "trained (02)", "report": s})  # fmt: skip
    return rows


def auc_intervals(
    metrics: dict[str, Any], scores: PairScores | None, model: str, n_boot: int = 1000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """The AUC intervals the card shows, by row key (``evaluated:test``): bootstrap intervals of ``scores``
    (``{set name: (labels, probs)}`` of ``model``) replace that model's stored ones; stored bootstrap intervals of the
    other model are kept; every other row gets the normal approximation from its AUC and class sizes."""
    stored = dict((metrics.get(SECTION) or {}).get("auc_intervals") or {})
    if scores is not None:
        stored = {k: v for k, v in stored.items() if not k.startswith(f"{model}:")}
        for name, (labels, probs) in scores.items():
            stored[f"{model}:{name}"] = bootstrap_auc_interval(labels, probs, n_boot=n_boot, seed=seed)
    out = {}
    for row in domains(metrics, finetuned=True):
        r = row["report"]
        out[row["key"]] = stored.get(row["key"]) or normal_auc_interval(
            float(r.get("auc") if r.get("auc") is not None else math.nan), int(r.get("n_fake") or 0),
            int(r.get("n_real") or 0),
        )  # fmt: skip
    return out


def _model_section(metrics: dict[str, Any], finetuned: bool) -> list[str]:
    train, ft = metrics.get("train") or {}, metrics.get("finetune") or {}
    info, ev = train.get("model") or {}, metrics.get("evaluate") or {}
    checkpoint = ft.get("checkpoint") if finetuned else ev.get("checkpoint")
    lines = ["## Model", "", f"- checkpoint: `checkpoints/{Path(checkpoint).name if checkpoint else '?'}`"]
    if info:
        params = info.get("parameters") or {}
        lines += [
            f"- backbone: {describe_weights(info)}",
            f"- image size {info.get('image_size')} px, trainable backbone blocks "
            f"{'all' if info.get('trainable_blocks') == -1 else info.get('trainable_blocks')}, "
            f"{_fmt(params.get('total'))} parameters",
        ]
    if train:
        lines.append(
            f"- trained by 02: best epoch {train.get('best_epoch')} of {train.get('epochs_run')} (stopped early: "
            f"{train.get('stopped_early')}), best validation loss {_fmt(train.get('best_val_loss'), 4)}, "
            f"{train.get('processes', 1)} process(es), global batch {train.get('global_batch_size')}"
        )
    if finetuned and ft:
        ft_set = ft.get("set") or {}
        lines.append(
            f"- fine-tuned by 04 ({ft.get('status')}): {ft_set.get('n_failures')} failures from "
            f"`{ft.get('failures_split')}` + {ft_set.get('n_replay')} replayed images"
            + (f"; {ft['reason']}" if ft.get("reason") else "")
        )
    return lines + [""]


def _data_section(metrics: dict[str, Any]) -> list[str]:
    data, fakes = metrics.get("data") or {}, metrics.get("fakes") or {}
    prep = data.get("prepared") or {}
    lines = ["## Data", "", f"- folder: `{data.get('data_dir', '?')}`"]
    if prep.get("source_dir"):
        lines.append(f"- prepared from `{prep['source_dir']}`: {', '.join(prep.get('steps') or []) or 'as it was'}")
    clips, faces = prep.get("clips") or {}, prep.get("faces") or {}
    if clips:
        st = clips.get("settings") or {}
        lines.append(f"- video clips of {st.get('frames')} frames: {clips.get('clips')} clips from "
                     f"{clips.get('videos')} videos ({'face tracks' if st.get('faces') else 'whole frames'})")  # fmt: skip
    if faces:
        lines.append(f"- face crops: {faces.get('crops')} crops, {faces.get('with_face')} of {faces.get('sources')} "
                     "images with a face")  # fmt: skip
    if fakes:
        train = fakes.get("train") or {}
        lines.append(f"- fakes (`FAKES = {fakes.get('mode')!r}`): {train.get('labelled_fake', 0)} labelled and "
                     f"{train.get('pseudo_fake', 0)} self-blended pseudo-fakes in training")  # fmt: skip
    rows = [[split, c.get("real"), c.get("fake")] for split, c in (data.get("counts") or {}).items()]
    return lines + [""] + (_table(rows, ["split", "real", "fake"]) if rows else [])


def _protocol_section(metrics: dict[str, Any]) -> list[str]:
    ev = metrics.get("evaluate") or {}
    used, thr = ev.get("splits_used") or {}, ev.get("threshold") or {}
    fit = (ev.get("calibration") or {}).get("fit")
    calibration = (
        f"temperature {_fmt(fit.get('temperature'))} fitted on `{fit.get('split')}`" if fit else "none (raw scores)"
    )
    rows = [
        ["decision threshold", f"{thr.get('method')} on `{used.get('threshold', thr.get('split'))}`"],
        ["reported numbers", f"`{used.get('report', ev.get('report_split'))}` (never tuned on)"],
        ["failures for fine-tuning", f"`{used.get('failures')}`"],
        ["test-time augmentation", f"`{ev.get('tta')}`"],
        ["calibration", calibration],
        ["cross-dataset sets", "scored at the same threshold, nothing re-tuned"],
    ]
    return ["## Evaluation protocol", "", *_table(rows, ["step", "how"])]


def _metrics_section(metrics: dict[str, Any], intervals: dict[str, Any], finetuned: bool) -> list[str]:
    lines = ["## Metrics per test domain", ""]
    rows = []
    for d in domains(metrics, finetuned):
        r, ci = d["report"], intervals.get(d["key"]) or {}
        fpr = r.get("fpr")
        if fpr is None and isinstance(r.get("real_recall"), int | float):  # a cross-dataset row
            fpr = 1 - r["real_recall"]
        rows.append([
            f"`{d['name']}`", d["kind"], d["model"], r.get("n_real"), r.get("n_fake"), r.get("auc"),
            f"{_fmt(ci.get('low'))} - {_fmt(ci.get('high'))}", r.get("balanced_accuracy"), r.get("eer"),
            r.get("fake_recall"), fpr,
        ])  # fmt: skip
    if not rows:
        return lines + ["- not evaluated yet (run 03_evaluate)", ""]
    header = ["set", "domain", "model", "real", "fake", "AUC", "AUC 95% interval", "balanced accuracy", "EER",
              "FAKE recall", "false alarms (FPR)"]  # fmt: skip
    methods = sorted({str((intervals.get(d["key"]) or {}).get("method")) for d in domains(metrics, finetuned)})
    lines += _table(rows, header)
    lines.append(f"AUC 95% intervals: {' and '.join(methods)}. The bootstrap resamples the scores (1000 times, each "
                 "class keeping its size); the normal approximation (Hanley and McNeil) uses the AUC and the class "
                 "sizes alone, where the scores are not at hand.")  # fmt: skip
    video = metrics.get("video") or {}
    if video.get("levels"):
        lines += ["", "Videos, the trained model (03), each level at its own threshold:", ""]
        rows = [[k, v.get("n"), v.get("auc"), v.get("eer"), v.get("threshold")] for k, v in video["levels"].items()]
        return lines + _table(rows, ["level", "n", "AUC", "EER", "threshold"])
    return lines + [""]


def _calibration_section(metrics: dict[str, Any]) -> list[str]:
    ev = metrics.get("evaluate") or {}
    cal = ev.get("calibration") or {}
    fit, splits = cal.get("fit"), cal.get("splits") or {}
    lines = ["## Calibration", ""]
    if fit:
        lines.append(f"- temperature {_fmt(fit.get('temperature'))} (fitted on `{fit.get('split')}`, n = "
                     f"{fit.get('n')}): NLL {_fmt(fit.get('nll_before'), 4)} -> {_fmt(fit.get('nll_after'), 4)}")  # fmt: skip
    else:
        lines.append("- not calibrated: the scores are the raw model's")
    rows = [
        [f"`{s}`", (t.get("before") or {}).get("ece"), (t.get("after") or {}).get("ece")] for s, t in splits.items()
    ]
    return lines + [""] + (_table(rows, ["split", "ECE raw", "ECE calibrated"]) if rows else [])


def _threshold_section(metrics: dict[str, Any], finetuned: bool) -> list[str]:
    ev, ft = metrics.get("evaluate") or {}, metrics.get("finetune") or {}
    thr, alarms = ev.get("threshold") or {}, ev.get("false_alarms") or {}
    lines = ["## Decision threshold", ""]
    if thr:
        budget = f" (budget {_pct(alarms['target_fpr'])})" if alarms.get("target_fpr") is not None else ""
        lines.append(
            f"- trained model: {_fmt(thr.get('threshold'), 4)} ({thr.get('method')} on `{thr.get('split')}`); "
            f"false alarms (REAL called FAKE) {_pct(alarms.get('threshold_split_fpr'))} on "
            f"`{alarms.get('threshold_split')}`{budget}, {_pct(alarms.get('report_split_fpr'))} on "
            f"`{alarms.get('report_split')}`"
        )
    ft_thr = ft.get("threshold") or {}
    if finetuned and ft_thr:
        at = ft_thr.get("at_threshold") or {}
        lines.append(
            f"- fine-tuned model: {_fmt(ft_thr.get('threshold'), 4)} ({ft_thr.get('method')} on "
            f"`{ft_thr.get('split')}`); false alarms {_pct(at.get('fpr'))} on `{ft_thr.get('split')}`, "
            f"{_pct((ft.get('after') or {}).get('fpr'))} on `{ft.get('eval_split')}`"
        )
    return lines + ([""] if thr or ft_thr else ["- not chosen yet (run 03_evaluate)", ""])


def _robustness_section(metrics: dict[str, Any]) -> list[str]:
    rb = metrics.get("robustness") or {}
    lines = ["## Robustness", ""]
    if rb.get("status") != "done":
        return lines + [f"- not measured ({rb.get('reason', 'run 03_evaluate with ROBUSTNESS = True')})", ""]
    lines += [
        f"- the trained model (03) on `{rb.get('split')}`, degraded before resizing, threshold held at "
        f"{_fmt(rb.get('threshold'), 4)}",
        "",
    ]
    ordered = sorted(rb.get("rows") or [], key=lambda r: -(r.get("auc_drop") or 0.0))
    rows = [[r.get("degradation"), r.get("severity"), r.get("auc"), r.get("auc_drop"), r.get("balanced_accuracy")]
            for r in ordered]  # fmt: skip
    return lines + _table(rows, ["degradation", "severity", "AUC", "AUC drop", "balanced accuracy"])


def _finetune_section(metrics: dict[str, Any]) -> list[str]:
    ft = metrics.get("finetune") or {}
    before, after = ft.get("before") or {}, ft.get("after") or {}
    lines = ["## Fine-tuning", "", f"- status: {ft.get('status')}" + (f" ({ft['reason']})" if ft.get("reason") else "")]
    if before and after:
        keys = ("auc", "balanced_accuracy", "eer", "fake_recall", "fpr", "ece")
        lines += [f"- before / after on `{ft.get('eval_split')}`, each at its own threshold:", ""]
        lines += _table([[k, before.get(k), after.get(k)] for k in keys], ["metric", "before", "after"])
    return lines + ([""] if not (before and after) else [])


def _use_section(metrics: dict[str, Any]) -> list[str]:
    data, fakes = metrics.get("data") or {}, metrics.get("fakes") or {}
    counts = (data.get("counts") or {}).get("train") or {}
    trained_on = (
        f"`{data.get('source_dir') or (data.get('prepared') or {}).get('source_dir') or data.get('data_dir')}`: "
        f"{counts.get('real')} real and {counts.get('fake')} fake "
        f"training images or clips, fakes `{fakes.get('mode', 'labelled')}`"
    )
    return ["## Intended use and limits", "", INTENDED_USE, "", f"Trained on {trained_on}.", ""]


def _failure_counts(run_dir: Path) -> str | None:
    failures = read_json(run_dir / FAILURES_FILE, default=None)
    if not isinstance(failures, dict) or not isinstance(failures.get("failures"), list):
        return None
    by = [sum(r.get("true_label") == c for r in failures["failures"]) for c in ("real", "fake")]
    return (
        f"{failures.get('n_failures', sum(by))} of {failures.get('n_evaluated')} `{failures.get('split')}` images "
        f"misclassified at threshold {_fmt(failures.get('threshold'), 4)}: {by[0]} REAL called FAKE, {by[1]} fakes "
        "missed (`failures.json`, hardest first)"
    )


def failure_modes(metrics: dict[str, Any], run_dir: Path, finetuned: bool = False) -> list[str]:
    """The known failure modes, one sentence each: the degradations that cost the most AUC, cross-dataset sets
    well below the in-domain AUC, the error rates at the threshold and the mined failures."""
    modes = []
    rows = (metrics.get("robustness") or {}).get("rows") or []
    for r in sorted(rows, key=lambda r: -(r.get("auc_drop") or 0.0))[:3]:
        if (r.get("auc_drop") or 0.0) >= LARGE_AUC_DROP:
            modes.append(f"`{r['degradation']}` at {r.get('severity')}: AUC drops by {_fmt(r['auc_drop'])} to "
                         f"{_fmt(r.get('auc'))}")  # fmt: skip
    cross = metrics.get("cross_dataset") or {}
    home = (cross.get("in_domain") or {}).get("auc")
    for s in cross.get("sets") or []:
        if isinstance(home, float) and isinstance(s.get("auc"), float) and s["auc"] < home - CROSS_DATASET_GAP:
            modes.append(f"fakes from elsewhere: `{s['name']}` reaches AUC {_fmt(s['auc'])}, against {_fmt(home)} "
                         "in-domain")  # fmt: skip
    for d in domains(metrics, finetuned)[: 2 if finetuned else 1]:
        r = d["report"]
        modes.append(f"the {d['model']} model at its threshold flags {_pct(r.get('fpr'))} of the REAL images of "
                     f"`{d['name']}` FAKE and misses {_pct(r.get('fnr'))} of its fakes")  # fmt: skip
    counts = _failure_counts(run_dir)
    if counts:
        modes.append(counts)
    return modes


def model_card_text(metrics: dict[str, Any], run_dir: Path, intervals: dict[str, Any], finetuned: bool = False) -> str:
    """The card's Markdown from a run's ``metrics`` (and its ``failures.json``)."""
    writer = "fine-tuning (notebook 04)" if finetuned else "the evaluation (notebook 03)"
    lines = [
        f"# Model card: run `{run_dir.name}`",
        "",
        f"Written by {writer} on {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} from the run's `{METRICS_FILE}`"
        " (the numbers below are what this run measured; `summary.md` has the figures).",
        "",
        *_model_section(metrics, finetuned),
        *_data_section(metrics),
        *_protocol_section(metrics),
        *_metrics_section(metrics, intervals, finetuned),
        *_calibration_section(metrics),
        *_threshold_section(metrics, finetuned),
        *_robustness_section(metrics),
        *(_finetune_section(metrics) if finetuned else []),
        *_use_section(metrics),
        "## Known failure modes",
        "",
    ]
    modes = failure_modes(metrics, run_dir, finetuned)
    lines += [f"- {m}" for m in modes] if modes else ["- none measured yet"]
    return "\n".join(lines) + "\n"


def write_model_card(
    run_dir: str | os.PathLike[str],
    scores: PairScores | None = None,
    finetuned: bool = False,
    n_boot: int = 1000,
    seed: int = 0,
) -> Path:
    """Write ``<run_dir>/MODEL_CARD.md`` (atomically) from ``metrics.json`` and record it there (``model_card``:
    the file, which model it describes, the AUC intervals).

    ``scores``: ``{set name: (labels, probs)}`` of the described model (03: the report split and the cross-dataset
    sets; 04 with ``finetuned``: the comparison split after fine-tuning), for bootstrap AUC intervals; the rows
    without scores keep the intervals stored by an earlier card, or get a normal approximation.
    """
    root = resolve_path(run_dir)
    metrics = read_json(root / METRICS_FILE, default={}) or {}
    model = FINETUNED if finetuned else EVALUATED
    intervals = auc_intervals(metrics, scores, model, n_boot=n_boot, seed=seed)
    text = model_card_text(metrics, root, intervals, finetuned)
    path = atomic_write(root / MODEL_CARD_FILE, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    bootstrap = {k: v for k, v in intervals.items() if v.get("method") == "bootstrap"}
    update_metrics(root, SECTION, {"file": MODEL_CARD_FILE, "model": model, "auc_intervals": bootstrap})
    return path
