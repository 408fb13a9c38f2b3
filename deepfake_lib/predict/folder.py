"""A folder of images and videos -> predictions.csv and heatmaps, whole images or per face."""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from deepfake_lib.core.files import IMAGE_EXTENSIONS
from deepfake_lib.core.images import ImageLoadError, load_image
from deepfake_lib.core.video import VideoError
from deepfake_lib.data.faces import no_face_reason
from deepfake_lib.predict.csv_log import CsvLog, read_log
from deepfake_lib.predict.predictors import BasePredictor, Predictor
from deepfake_lib.predict.results import (
    CSV_COLUMNS,
    CSV_FILE,
    FACE_CSV_COLUMNS,
    HEATMAP_DIR,
    HEATMAP_FILE,
    BatchScores,
    PredictError,
)
from deepfake_lib.predict.video import VIDEO_FRAMES, NoClipError

if TYPE_CHECKING:
    from deepfake_lib.data.faces import FaceDetector


# --------------------------------------------------------------------------- folders
class FolderInterrupted(KeyboardInterrupt):
    """Ctrl-C during a folder prediction: ``csv_path`` holds the ``scored`` rows finished so far (with
    ``resume=True`` the next prediction keeps them and scores the rest)."""

    def __init__(self, csv_path: Path, scored: int) -> None:
        self.csv_path, self.scored = csv_path, scored
        super().__init__(f"{scored} scored row{'' if scored == 1 else 's'} kept in {csv_path}")


@dataclass
class FolderResult:
    """What ``predict_folder`` did: one CSV row per file found (scored or not); ``resumed``: how many rows came
    from the earlier prediction's CSV (None when not resuming)."""

    rows: list[dict[str, Any]]
    csv_path: Path
    heatmap_dir: Path | None
    threshold: float
    resumed: int | None = None

    @property
    def scored(self) -> int:
        return sum(1 for r in self.rows if r["probability"] != "")

    @property
    def bad(self) -> int:
        return sum(1 for r in self.rows if r["probability"] == "")

    @property
    def fake(self) -> int:
        return sum(1 for r in self.rows if r["decision"] == "FAKE")

    def summary(self) -> dict[str, Any]:
        """The command line's JSON; ``resumed`` only when resuming."""
        out = {
            "scored": self.scored,
            "fake": self.fake,
            "real": self.scored - self.fake,
            "bad": self.bad,
            "threshold": round(self.threshold, 6),
            "csv": str(self.csv_path),
            "heatmaps": None if self.heatmap_dir is None else str(self.heatmap_dir),
        }
        if self.resumed is not None:
            out["resumed"] = self.resumed
        return out


def heatmap_names(paths: Sequence[Path], root: Path) -> list[str]:
    """``<stem>_gradcam.png`` per image; a stem shared by several images gets its folder path and extension
    added (``sub__img_jpg_gradcam.png``), and a counter as the last resort, so no two names collide."""
    stems = Counter(p.stem.lower() for p in paths)
    used: set[str] = set()
    names = []
    for p in paths:
        base = p.stem
        if stems[p.stem.lower()] > 1:
            try:
                rel = p.relative_to(root)
            except ValueError:
                rel = Path(p.name)
            base = "__".join([*rel.parent.parts, rel.stem + p.suffix.replace(".", "_")])
        name, i = f"{base}_gradcam.png", 1
        while name.lower() in used:
            i += 1
            name = f"{base}_{i}_gradcam.png"
        used.add(name.lower())
        names.append(name)
    return names


def predict_folder(
    predictor: BasePredictor,
    folder: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    batch_size: int = 16,
    num_workers: int = -1,
    heatmaps: bool = True,
    progress: bool = True,
    video_frames: int | None = VIDEO_FRAMES,
    video_aggregate: str = "auto",
    resume: bool = False,
) -> FolderResult:
    """Score every image under ``folder`` (recursive) in batches, and every video (``video_predict`` on
    ``video_frames`` frames, decided by ``video_aggregate``; with a PyTorch model).

    Writes ``out_dir/predictions.csv`` (columns ``path, probability, decision, heatmap, error``: one row
    per file, unusable ones with the reason) and ``out_dir/heatmaps/<stem>_gradcam.png`` per scored image
    (for a video: ``heatmaps/<stem>/gradcam.png`` of its most suspicious frame and ``timeline.png``). Raises
    ``PredictError`` when the folder holds no image or video file at all.

    The CSV grows as files are scored (each batch's rows, each video's row, written durably), so Ctrl-C
    (raised as ``FolderInterrupted``) or a kill leaves every finished row on disk; at the end it is rewritten
    in listing order. ``resume=True`` keeps the scored rows of an earlier CSV in ``out_dir`` for files still in
    ``folder`` (and their heatmaps, when still there) and scores only the rest; without it the CSV starts over.
    """
    plan = _folder_plan(folder, out_dir, heatmaps, CSV_COLUMNS, resume)
    with _interruptible(plan):
        _score_videos(predictor, plan, progress, None, video_frames, video_aggregate)
        batches = predictor.iter_files(plan.files, batch_size, num_workers, heatmaps, progress, desc="scoring")
        try:
            for scores in batches:
                _record_batch(predictor, plan, scores)
        finally:
            getattr(batches, "close", lambda: None)()  # a loader's workers stop now, not when collected
        return plan.finish(predictor.threshold)


NOT_FINITE = "the model's output is not a finite number (NaN or infinity): broken weights or input"


def _record_score(row: dict[str, Any], probability: float, decision: str) -> bool:
    """Put a score in its CSV row; a probability that is not a finite number becomes the row's error instead."""
    if not math.isfinite(probability):
        row["error"] = NOT_FINITE
        return False
    row.update(probability=f"{probability:.6f}", decision=decision)
    return True


def _record_batch(predictor: BasePredictor, plan: _Plan, scores: BatchScores) -> None:
    """Fill in the rows of one scored batch and write their heatmaps, then add the rows to the CSV."""
    rows, heat_dir = plan.rows, plan.heat_dir
    for path, reason in scores.bad:
        rows[path]["error"] = reason
    for i, path in enumerate(scores.paths):
        p = float(scores.probs[i])
        if not _record_score(rows[path], p, predictor.decide(p)) or scores.heatmaps is None or heat_dir is None:
            continue
        from deepfake_lib.explain.heatmaps import save_overlay, to_image_size

        try:  # decode again: the overlay is drawn on the full-size image
            image = load_image(path)
        except ImageLoadError as exc:
            rows[path]["error"] = f"heatmap not written: {exc.reason}"
            continue
        target = heat_dir / plan.name_of[path]
        save_overlay(image, to_image_size(scores.heatmaps[i], image.width, image.height), target)
        rows[path]["heatmap"] = str(target)
    plan.log.append([rows[path] for path in [*scores.paths, *(bad for bad, _ in scores.bad)]])


@dataclass
class _Plan:
    """A folder prediction's work: the images and videos still to score, the heatmap folder and each file's
    heatmap name, one row per file found (in the final CSV's order) and the CSV that grows as rows finish."""

    files: list[Path]
    videos: list[Path]
    heat_dir: Path | None
    name_of: dict[str, str]
    rows: dict[str, dict[str, Any]]
    log: CsvLog
    resumed: int | None

    def finish(self, threshold: float) -> FolderResult:
        """Rewrite the CSV whole, in listing order, atomically."""
        self.log.close()
        ordered = list(self.rows.values())
        csv_path = _write_csv(self.log.path, ordered, self.log.columns)
        return FolderResult(ordered, csv_path, self.heat_dir, threshold, self.resumed)


def _folder_plan(
    folder: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    heatmaps: bool,
    columns: Sequence[str],
    resume: bool = False,
    **extra: Any,
) -> _Plan:
    """The plan for ``folder``: its files, the heatmap folder (made when ``heatmaps``), one row per file
    (unusable files with their reason; ``extra`` columns in every row), those of an earlier CSV kept when
    ``resume``, and the CSV started with the header and the kept rows."""
    from deepfake_lib.core.images import list_image_files
    from deepfake_lib.core.video import list_video_files

    root = Path(folder)
    if not root.is_dir():
        raise PredictError(f"{root}: folder not found")
    files, skipped = list_image_files(root, exclude=[Path(out_dir)])  # never the outputs of this or a past run
    videos = list_video_files(root, exclude=[Path(out_dir)])
    if not files and not skipped and not videos:
        raise _no_images(root)
    csv_path = Path(out_dir) / CSV_FILE
    earlier = read_log(csv_path, columns) if resume else None  # a CSV of other columns fails before any write
    heat_dir = Path(out_dir) / HEATMAP_DIR if heatmaps else None
    if heat_dir is not None:
        heat_dir.mkdir(parents=True, exist_ok=True)
    name_of = dict(zip(map(str, files), heatmap_names(files, root), strict=True))
    name_of |= zip(map(str, videos), heatmap_names(videos, root), strict=True)
    rows = {str(p): _row(p) | extra for p in files}
    rows |= {str(s.path): _row(s.path, error=s.reason) | extra for s in skipped}
    rows |= {str(v): _row(v) | extra for v in videos if str(v) not in rows}
    video_set = set(map(str, videos))
    expected = {p: _heatmap_path(heat_dir, name, p in video_set) for p, name in name_of.items()}
    kept = _kept_rows(earlier or [], expected)
    for path, row in kept.items():
        rows[path].update(row)
    files = [p for p in files if str(p) not in kept]
    videos = [v for v in videos if str(v) not in kept]
    log = CsvLog(csv_path, columns, [row for path, row in rows.items() if path in kept])
    return _Plan(files, videos, heat_dir, name_of, rows, log, len(kept) if resume else None)


def check_resume(out_dir: str | os.PathLike[str], faces: bool = False) -> None:
    """Raise ``PredictError`` naming ``out_dir``'s CSV when a prediction (with ``faces`` or not) cannot resume
    from it (other columns, unreadable): the check ``resume=True`` makes, without the model or the folder."""
    read_log(Path(out_dir) / CSV_FILE, FACE_CSV_COLUMNS if faces else CSV_COLUMNS)


def _heatmap_path(heat_dir: Path | None, name: str, video: bool) -> str:
    """Where this listing puts a file's heatmap (``""`` without heatmaps): ``heatmaps/<name>`` for an image,
    ``heatmaps/<stem>/gradcam.png`` for a video."""
    if heat_dir is None:
        return ""
    return str(_video_heat_dir(heat_dir, name) / HEATMAP_FILE) if video else str(heat_dir / name)


def _video_heat_dir(heat_dir: Path, name: str) -> Path:
    """A video's folder of ``gradcam.png`` and ``timeline.png``: its heatmap name without ``_gradcam.png``."""
    return heat_dir / name.removesuffix("_gradcam.png")


def _kept_rows(earlier: list[dict[str, str]], expected: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The rows of an earlier CSV worth keeping, by this listing's path: scored (a valid probability), of a file
    still listed (the same file, however its path was spelt), whose heatmap is still there and is where this
    listing puts it (``expected``: path -> heatmap path, "" for none; a file added or removed since can shift
    the names, and a heatmap that another file will be given is scored again, never shared)."""
    by_file = {os.path.abspath(p): p for p in expected}
    kept: dict[str, dict[str, Any]] = {}
    for old in earlier:
        path = by_file.get(os.path.abspath(old["path"])) if old["path"] else None
        try:
            scored = path is not None and 0.0 <= float(old["probability"]) <= 1.0
        except ValueError:
            scored = False
        if not scored or (old["heatmap"] and not Path(old["heatmap"]).is_file()):
            continue
        if bool(old["heatmap"]) != bool(expected[path]) or (
            old["heatmap"] and os.path.abspath(old["heatmap"]) != os.path.abspath(expected[path])
        ):
            continue
        row: dict[str, Any] = {**old, "path": path}
        if row.get("n_faces", "").isdigit():
            row["n_faces"] = int(row["n_faces"])
        kept[str(path)] = row
    return kept


@contextlib.contextmanager
def _interruptible(plan: _Plan) -> Iterator[None]:
    """Ctrl-C becomes ``FolderInterrupted`` naming the CSV and its scored rows; the CSV is closed either way."""
    try:
        yield
    except KeyboardInterrupt as exc:
        if isinstance(exc, FolderInterrupted):
            raise
        raise FolderInterrupted(plan.log.path, plan.log.scored) from exc
    finally:
        plan.log.close()


def predict_folder_faces(
    predictor: BasePredictor,
    folder: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    detector: FaceDetector,
    margin: float | None = None,
    batch_size: int = 16,
    heatmaps: bool = True,
    progress: bool = True,
    video_frames: int | None = VIDEO_FRAMES,
    video_aggregate: str = "auto",
    resume: bool = False,
) -> FolderResult:
    """``predict_folder`` in face mode: each image is scored by its most suspicious face.

    The CSV gets an ``n_faces`` column; an image without a face keeps an empty probability and the error
    ``no face found (...)``. Heatmaps show every face's Grad-CAM in its crop box (``FacePrediction.overlay``).
    The CSV grows batch by batch and ``resume`` keeps an earlier one's scored rows, as in ``predict_folder``.
    """
    from tqdm.auto import tqdm

    plan = _folder_plan(folder, out_dir, heatmaps, FACE_CSV_COLUMNS, resume, n_faces="")
    files = plan.files
    with _interruptible(plan):
        _score_videos(predictor, plan, progress, True, video_frames, video_aggregate)
        with tqdm(total=len(files), desc="faces", unit="img", disable=not progress) as bar:
            for start in range(0, len(files), batch_size):
                batch = files[start : start + batch_size]
                _record_face_batch(predictor, plan, batch, detector, margin, heatmaps, batch_size)
                bar.update(len(batch))
        return plan.finish(predictor.threshold)


def _record_face_batch(
    predictor: BasePredictor,
    plan: _Plan,
    batch: list[Path],
    detector: FaceDetector,
    margin: float | None,
    heatmaps: bool,
    batch_size: int,
) -> None:
    """Detect and score the faces of one batch of images, fill in their rows and write their heatmaps, then add
    the rows to the CSV."""
    from deepfake_lib.core.runs import atomic_write

    rows = plan.rows
    loaded: list[tuple[str, Image.Image]] = []
    for path in batch:
        try:
            loaded.append((str(path), load_image(path)))
        except ImageLoadError as exc:
            rows[str(path)]["error"] = exc.reason
    found = detector.detect_batch([img for _, img in loaded])
    scored = predictor.score_faces([img for _, img in loaded], found, margin, heatmaps, batch_size)
    for (path, _), result in zip(loaded, scored, strict=True):
        row = rows[path]
        row["n_faces"] = len(result.faces)
        if not result.faces:
            row["error"] = no_face_reason(detector.min_score)
            continue
        if not _record_score(row, result.probability, result.decision):
            continue
        if plan.heat_dir is not None:
            picture = result.overlay()
            target = atomic_write(plan.heat_dir / plan.name_of[path], lambda tmp, p=picture: p.save(tmp, format="PNG"))
            row["heatmap"] = str(target)
    plan.log.append([rows[str(path)] for path in batch])


def _score_videos(
    predictor: BasePredictor,
    plan: _Plan,
    progress: bool,
    faces: bool | None = None,
    video_frames: int | None = VIDEO_FRAMES,
    aggregate: str = "auto",
) -> None:
    """Fill in the row of each video of ``plan`` still to score, and add it to the CSV: its verdict
    (``video_predict``; face tracks as ``settings_for`` decides with ``faces``, detected at the face settings'
    ``min_score``), or the reason it has none."""
    from tqdm.auto import tqdm

    videos, rows = plan.videos, plan.rows
    if not videos:
        return
    if not isinstance(predictor, Predictor):
        for path in videos:
            rows[str(path)]["error"] = "videos need a PyTorch checkpoint (--runtime torch)"
        plan.log.append([rows[str(path)] for path in videos])
        return
    from deepfake_lib.data.faces import video_detector
    from deepfake_lib.evaluation.aggregate import decisive_rule
    from deepfake_lib.predict.video import predict_video, settings_for, write_outputs

    settings = settings_for(predictor, faces, video_frames)
    decisive_rule(aggregate, predictor.model.config.frames)  # a wrong rule fails before the first video
    detector = None
    if settings.faces is not None:
        detector = video_detector(str(predictor.device), float(settings.faces["min_score"]))
    for path in tqdm(videos, desc="videos", disable=not progress):
        row = rows[str(path)]
        try:
            result = predict_video(predictor, path, settings, detector, plan.heat_dir is not None, aggregate=aggregate)
        except (VideoError, NoClipError) as exc:
            row["error"] = getattr(exc, "reason", None) or str(exc).split(": ", 1)[-1]
        else:
            if _record_score(row, result.probability, result.decision) and plan.heat_dir is not None:
                folder = _video_heat_dir(plan.heat_dir, plan.name_of[str(path)])
                heatmap_path, _ = write_outputs(result, folder)
                row["heatmap"] = str(heatmap_path or "")
        plan.log.append([row])


def _write_csv(path: Path, rows: list[dict[str, Any]], columns: Sequence[str]) -> Path:
    """Write ``rows`` as CSV with ``columns``, atomically."""
    from deepfake_lib.core.runs import atomic_write

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write(path, lambda tmp: tmp.write_text(buf.getvalue(), encoding="utf-8"))


def _no_images(root: Path) -> PredictError:
    from deepfake_lib.core.files import VIDEO_EXTENSIONS

    looked = ", ".join(sorted(IMAGE_EXTENSIONS | VIDEO_EXTENSIONS))
    return PredictError(f"{root}: no image or video files found (looked for {looked})")


def _row(path: Path, error: str = "") -> dict[str, Any]:
    return {"path": str(path), "probability": "", "decision": "", "heatmap": "", "error": error}
