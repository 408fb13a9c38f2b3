"""A one-file view of a run: ``<run_dir>/summary.md`` with key metrics, figures and notebook links."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from deepfake_lib.core.runs import METRICS_FILE, atomic_write, read_json, status_text
from deepfake_lib.evaluation.metrics import SUMMARY_KEYS

SUMMARY_FILE = "summary.md"
MODEL_CARD_FILE = "MODEL_CARD.md"  # report.model_card writes it
# Headline metrics shown first when a section has them (others follow in a compact table).
HEADLINE = ("auc", "roc_auc", "average_precision", "eer", "accuracy", "balanced_accuracy", "log_loss", "ece")


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def _table(rows: list[list[Any]], header: list[str]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]
    return lines + [""]


def _scalars(d: dict[str, Any], prefix: str = "", depth: int = 2) -> list[tuple[str, Any]]:
    """Flatten nested dicts of scalars (lists and deep structures are left out)."""
    out = []
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict) and depth > 1:
            out += _scalars(v, f"{name}.", depth - 1)
        elif isinstance(v, (int, float, str, bool)) or v is None:
            out.append((name, v))
    return out


def describe_weights(info: dict[str, Any]) -> str:
    """One line for reports, e.g. ``efficientnet-lite0, ImageNet weights from /path/w.pth (requested ...)``."""
    if info.get("pretrained_loaded"):
        text = f"{info['backbone']}, ImageNet weights from {info.get('weights_source')}"
    else:
        text = f"{info['backbone']}, random initialisation (no ImageNet weights)"
    if info.get("requested_backbone") and info["requested_backbone"] != info["backbone"]:
        text += f" (requested {info['requested_backbone']}, whose weights were unavailable)"
    return text


def _data_section(data: dict[str, Any]) -> list[str]:
    rows = [
        [split, c["real"], c["fake"], data.get("imbalance_ratio", {}).get(split), data.get("skipped", {}).get(split)]
        for split, c in data.get("counts", {}).items()
    ]
    return ["## Data", "", f"`{data.get('data_dir', '')}`", "", *_data_prep_lines(data.get("prepared"))] + _table(
        rows, ["split", "real", "fake", "imbalance", "skipped files"]
    )


def _train_section(train: dict[str, Any]) -> list[str]:
    lines = ["## Training", ""]
    if train.get("model"):
        info = train["model"]
        lines.append(f"- backbone: {describe_weights(info)}")
        lines.append(f"- image size {info.get('image_size')}, trainable backbone blocks {info.get('trainable_blocks')}")
    hist = train.get("history") or []
    best = next((h for h in hist if h.get("epoch") == train.get("best_epoch")), None)
    lines += [
        f"- best epoch: {train.get('best_epoch')} of {train.get('epochs_run')}"
        f" (stopped early: {train.get('stopped_early')})",
        f"- best validation loss: {_fmt(train.get('best_val_loss'))}",
    ]
    if best:
        lines.append(
            f"- at the best epoch: val AUC {_fmt(best.get('val_auc'))}, val balanced accuracy "
            f"{_fmt(best.get('val_balanced_accuracy'))}, {_fmt(best.get('train_images_per_s'))} training images/s"
        )
    if train.get("load_errors"):
        lines.append(f"- images that failed to load during training: {len(train['load_errors'])}")
    return lines + [""]


REPORT_KEYS = tuple(k for k in SUMMARY_KEYS if k not in ("n", "threshold"))


def _evaluate_section(ev: dict[str, Any]) -> list[str]:
    thr = ev.get("threshold", {})
    report = ev.get("report", {})
    failures = ev.get("failures", {})
    lines = [
        "## Evaluation",
        "",
        f"- decision threshold {_fmt(thr.get('threshold'))} ({thr.get('method')}, chosen on the "
        f"`{thr.get('split')}` split, stored in the checkpoint)",
        f"- final numbers on the `{ev.get('report_split')}` split ({report.get('n')} images: "
        f"{report.get('n_real')} real, {report.get('n_fake')} fake)",
        f"- failures: {failures.get('count')} on the `{failures.get('split')}` split -> `failures.json`",
    ]
    fit = (ev.get("calibration") or {}).get("fit")
    if "calibration" in ev:
        lines.append(
            f"- scores: TTA `{ev.get('tta')}`, "
            + (f"temperature {_fmt(fit['temperature'])} fitted on `{fit['split']}` (NLL {_fmt(fit['nll_before'])} -> "
               f"{_fmt(fit['nll_after'])})" if fit else "not calibrated")
        )  # fmt: skip
    alarms = ev.get("false_alarms")
    if alarms:
        budget = f" (budget {alarms['target_fpr']})" if alarms.get("target_fpr") is not None else ""
        lines.append(
            f"- false alarms: {_fmt(alarms['threshold_split_fpr'])} on `{alarms['threshold_split']}`{budget}, "
            f"{_fmt(alarms['report_split_fpr'])} on `{alarms['report_split']}`"
        )
    lines += [f"- WARNING: {w}" for w in ev.get("warnings") or []]
    lines.append("")
    lines += _table([[k, report[k]] for k in REPORT_KEYS if k in report], ["metric", "value"])
    if {"tn", "fp", "fn", "tp"} <= set(report):
        lines += _table(
            [["true real", report["tn"], report["fp"]], ["true fake", report["fn"], report["tp"]]],
            ["", "predicted real", "predicted fake"],
        )
    return lines


def _finetune_section(ft: dict[str, Any]) -> list[str]:
    lines = [
        "## Hard-example fine-tuning",
        "",
        f"- status: {ft.get('status')}" + (f" ({ft['reason']})" if ft.get("reason") else ""),
    ]
    ft_set = ft.get("set") or {}
    if ft_set:
        lines.append(
            f"- trained on {ft_set.get('n_failures')} failures from `{ft.get('failures_split')}` + "
            f"{ft_set.get('n_replay')} replayed correct images"
        )
    lines += [f"- WARNING: {w}" for w in ft.get("warnings") or []]
    lines.append("")
    before, after, change = ft.get("before") or {}, ft.get("after") or {}, ft.get("change") or {}
    if before and after:
        lines.append(f"Before / after on the `{ft.get('eval_split')}` split (the failures did not come from it):")
        lines.append("")
        rows = [[k, before[k], after[k], change.get(k)] for k in REPORT_KEYS if k in before and k in after]
        lines += _table(rows, ["metric", "before", "after", "change"])
    return lines


def _robustness_section(rb: dict[str, Any]) -> list[str]:
    lines = ["## Robustness", ""]
    if rb.get("status") == "skipped":
        return lines + [f"- not run ({rb.get('reason')})", ""]
    lines += [
        f"- `{rb.get('split')}` split, degraded before resizing; decision threshold {_fmt(rb.get('threshold'))} "
        f"held fixed for every degradation (AUC drop = clean AUC - AUC)",
        "",
    ]
    rows = [
        [r.get("degradation"), r.get("severity"), r.get("auc"), r.get("balanced_accuracy"), r.get("auc_drop")]
        for r in rb.get("rows") or []
    ]
    return lines + _table(rows, ["degradation", "severity", "AUC", "balanced accuracy", "AUC drop"])


def _baseline_section(record: dict[str, Any], key: str, name: str, column: str, what: str) -> list[str]:
    """A baseline beside the detector (``record["comparison"]``: ``{metric: {"detector": x, key: y}}``)."""
    lines = [f"## Baseline: {name}", ""]
    if "comparison" not in record:
        return lines + [f"- {status_text(record)}", ""]
    lines += [
        f"- logistic regression on {what}" if what else "",
        f"- fitted on `train`, threshold on `{record.get('threshold_split')}`, numbers on "
        f"`{record.get('report_split')}`",
        "",
    ]
    rows = [[k, v.get("detector"), v.get(key)] for k, v in record["comparison"].items()]
    return lines + _table(rows, ["metric", "detector", column])


def _probe_section(lp: dict[str, Any]) -> list[str]:
    model = lp.get("model") or {}
    what = f"frozen ImageNet features: {describe_weights(model)}" if model else ""
    return _baseline_section(lp, "linear_probe", "linear probe", "linear probe", what)


def _spectral_section(sb: dict[str, Any]) -> list[str]:
    return _baseline_section(
        sb, "spectral_baseline", "spectral classifier", "spectral baseline", f"the {sb.get('features')}"
    )


def _frequency_section(freq: dict[str, Any]) -> list[str]:
    n = freq.get("n") or {}
    lines = [
        "## Frequency analysis",
        "",
        f"- spectra of `{freq.get('spectra_split')}` at {freq.get('image_size')} px: "
        + ", ".join(f"{k} {v}" for k, v in n.items()),
        "",
    ]
    rows = [[b["band"], b["real"], b["fake"], b["fake_minus_real"], b["effect_size"]] for b in freq.get("bands", [])]
    lines += _table(rows, ["band", "REAL mean log power", "FAKE", "FAKE - REAL", "effect size"])
    report = freq.get("report") or {}
    if report:
        rows = [
            [name, r.get("n"), r.get("auc"), r.get("balanced_accuracy"), r.get("eer")] for name, r in report.items()
        ]
        lines += _table(rows, ["scoring", "n", "AUC", "balanced accuracy", "EER"])
    return lines


def _data_prep_lines(prep: dict[str, Any] | None) -> list[str]:
    if not prep:
        return []
    lines = [f"- prepared from `{prep.get('source_dir')}`: {', '.join(prep.get('steps') or [])}"]
    clips = prep.get("clips")
    if clips:
        st = clips.get("settings") or {}
        how = "face tracks" if st.get("faces") else "whole frames"
        lines.append(
            f"- video clips ({st.get('frames')} frames, up to {st.get('clips')} per track, {how}): {clips.get('clips')} "
            f"clips from {clips.get('videos')} videos, {len(clips.get('left_out') or [])} videos left out"
        )
    faces = prep.get("faces")
    if faces:
        lines.append(
            f"- faces (MTCNN, margin {faces.get('margin')}, size {faces.get('size')}, {faces.get('keep')}): "
            f"{faces.get('with_face')} of {faces.get('sources')} images with a face, {faces.get('crops')} crops, "
            f"{len(faces.get('left_out') or [])} left out (no face or unreadable)"
        )
    splits = prep.get("splits")
    if splits:
        lines.append(f"- splits: groups per split {splits.get('n_groups')}, no group on two sides")
    return lines + _protocol_lines(prep.get("protocol")) + [""]


def _protocol_lines(protocol: dict[str, Any] | None, shown: int = 5) -> list[str]:
    """What the dataset's reader found and what was left out, and why (the protocol step's record)."""
    if not protocol:
        return []
    found = protocol.get("found") or {}
    lines = [
        f"- dataset `{protocol.get('dataset')}`: {found.get('files')} files in {found.get('groups')} groups, splits "
        f"{protocol.get('split_origin')}; {protocol.get('frames')} frames per training video, "
        f"{protocol.get('test_frames')} per validation and test video"
    ]
    missing = found.get("missing") or []
    if missing:
        lines.append(f"- {len(missing)} file(s) the dataset's metadata names are absent (a partial download), "
                     f"e.g. `{missing[0].get('path')}` ({missing[0].get('why')})")  # fmt: skip
    left_out = protocol.get("left_out") or []
    lines += [f"- left out `{x.get('path')}`: {x.get('reason')}" for x in left_out[:shown]]
    if len(left_out) > shown:
        lines.append(f"- ... and {len(left_out) - shown} more left out (metrics.json, data.prepared.protocol)")
    return lines + [f"- note: {note}" for note in protocol.get("notes") or []]


def _matrix_section(matrix: dict[str, Any]) -> list[str]:
    lines = ["## Cross-dataset matrix", ""]
    if "rows" not in matrix:
        return lines + [f"- {status_text(matrix)}", ""]
    lines += [f"- at the stored threshold {_fmt(matrix.get('threshold'))} and temperature "
              f"{_fmt(matrix.get('temperature'))}; video score: the {matrix.get('video_rule')} of its frames", ""]  # fmt: skip
    keys = ("domain", "method", "real videos", "fake videos", "frame AUC", "frame AUC 95%", "video AUC",
            "video AUC 95%", "ECE", "false alarms")  # fmt: skip
    rows = [[_interval(r.get(k)) if k.endswith("95%") else r.get(k) for k in keys] for r in matrix["rows"]]
    return lines + _table(rows, list(keys))


def _interval(bounds: Any) -> str:
    """``low-high``; ``n/a`` without an interval (one class, or fewer than two groups)."""
    if not (isinstance(bounds, list) and len(bounds) == 2) or any(b is None or b != b for b in bounds):
        return "n/a"
    return f"{_fmt(bounds[0])}-{_fmt(bounds[1])}"


def _video_section(video: dict[str, Any]) -> list[str]:
    lines = ["## Videos: frame and video level", ""]
    if "levels" not in video:
        return lines + [f"- {status_text(video)}", ""]
    lines += ["- each level at its own threshold, chosen on the threshold split's videos", ""]
    rows = [
        [name, v.get("n"), v.get("auc"), v.get("balanced_accuracy"), v.get("eer"), v.get("threshold")]
        for name, v in video["levels"].items()
    ]
    return lines + _table(rows, ["level", "n", "AUC", "balanced accuracy", "EER", "threshold"])


def _generic_section(name: str, values: dict[str, Any]) -> list[str]:
    items = _scalars(values)
    items.sort(key=lambda kv: (kv[0].rsplit(".", 1)[-1] not in HEADLINE, kv[0]))
    if not items:
        return []
    return [f"## {name.capitalize()}", ""] + _table([[k, v] for k, v in items[:40]], ["metric", "value"])


def _cross_dataset_section(cd: dict[str, Any]) -> list[str]:
    lines = ["## Cross-dataset", ""]
    if "sets" not in cd:
        return lines + [f"- {cd.get('reason', 'not run')}", ""]
    lines += [
        f"- every set scored at the run's threshold {_fmt(cd.get('threshold'))}, face crops: {cd.get('faces')}",
        "",
    ]
    keys = ("n_real", "n_fake", "auc", "balanced_accuracy", "eer")
    rows = [[f"{cd['in_domain'].get('name')} (in-domain)", *(cd["in_domain"].get(k) for k in keys)]]
    rows += [[s.get("name"), *(s.get(k) for k in keys)] for s in cd["sets"]]
    return lines + _table(rows, ["set", "real", "fake", "AUC", "balanced accuracy", "EER"])


def _fakes_section(fk: dict[str, Any]) -> list[str]:
    lm = fk.get("landmarks") or {}
    lines = ["## Training fakes", "", f"- FAKES = `{fk.get('mode')}`"]
    if lm.get("images"):
        lines.append(f"- landmarks found in {lm.get('with_landmarks')} of {lm.get('images')} real faces")
    rows = [
        [split, *(fk.get(split, {}).get(k) for k in ("real", "labelled_fake", "pseudo_fake"))]
        for split in ("train", "val")
    ]
    return lines + [""] + _table(rows, ["split", "real", "labelled fake", "pseudo-fake"])


def _linked_at_the_top(_: dict[str, Any]) -> list[str]:
    return []


SECTIONS = {
    "model_card": _linked_at_the_top,  # MODEL_CARD.md: the card's own record
    "fakes": _fakes_section,
    "cross_dataset": _cross_dataset_section,
    "cross_dataset_matrix": _matrix_section,
    "data": _data_section,
    "train": _train_section,
    "evaluate": _evaluate_section,
    "finetune": _finetune_section,
    "robustness": _robustness_section,
    "linear_probe": _probe_section,
    "video": _video_section,
    "spectral_baseline": _spectral_section,
    "frequency": _frequency_section,
}


def write_summary(run_dir: str | os.PathLike[str]) -> Path:
    """Write ``summary.md`` for ``run_dir`` from ``config.json``, ``metrics.json`` and the files present."""
    root = Path(run_dir)
    config = read_json(root / "config.json", default={})
    metrics = read_json(root / METRICS_FILE, default={})
    lines = [f"# Run `{root.name}`", ""]
    if config:
        lines += [
            f"- started {config.get('started', '?')}, finished {config.get('finished', '(not finished)')}",
            f"- library version {config.get('library_version', '?')}",
            f"- data: `{config.get('parameters', {}).get('DATA_DIR', '?')}`",
            "",
        ]
    if (root / MODEL_CARD_FILE).is_file():
        lines += [f"Model card: [{MODEL_CARD_FILE}]({MODEL_CARD_FILE})", ""]
    for section, values in metrics.items():
        if not isinstance(values, dict):
            continue
        render = SECTIONS.get(section)
        lines += render(values) if render else _generic_section(section, values)
    figures = sorted((root / "figures").glob("*.png"))
    if figures:
        lines += ["## Figures", ""]
        lines += [f"### {f.stem}\n\n![{f.stem}](figures/{f.name})\n" for f in figures]
    executed = sorted((root / "executed").glob("*.ipynb"))
    seconds = config.get("step_seconds", {})
    if executed:
        lines += ["## Executed notebooks", ""]
        lines += [
            f"- [{nb.name}](executed/{nb.name})" + (f" ({seconds[nb.name]:.0f} s)" if nb.name in seconds else "")
            for nb in executed
        ]
        lines.append("")
    artifacts = sorted(p for p in (root / "checkpoints").glob("*.pth")) + sorted(root.glob("*.json"))
    if artifacts:
        lines += ["## Files", ""] + [f"- [{p.relative_to(root)}]({p.relative_to(root).as_posix()})" for p in artifacts]
        lines.append("")
    text = "\n".join(lines)
    return atomic_write(root / SUMMARY_FILE, lambda tmp: tmp.write_text(text, encoding="utf-8"))
