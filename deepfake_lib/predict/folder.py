"""A folder of images and videos -> predictions.csv and heatmaps, whole images or per face."""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from deepfake_lib.core.files import IMAGE_EXTENSIONS
from deepfake_lib.core.images import ImageLoadError, load_image
from deepfake_lib.core.video import VideoError
from deepfake_lib.data.faces import no_face_reason
from deepfake_lib.predict.predictors import BasePredictor, Predictor
from deepfake_lib.predict.results import (
    CSV_COLUMNS,
    CSV_FILE,
    FACE_CSV_COLUMNS,
    HEATMAP_DIR,
    PredictError,
)
from deepfake_lib.predict.video import VIDEO_FRAMES, NoClipError

if TYPE_CHECKING:
    from deepfake_lib.data.faces import FaceDetector


# --------------------------------------------------------------------------- folders
@dataclass
class FolderResult:
    """What ``predict_folder`` did: one CSV row per file found (scored or not)."""

    rows: list[dict[str, Any]]
    csv_path: Path
    heatmap_dir: Path | None
    threshold: float

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
        return {
            "scored": self.scored,
            "fake": self.fake,
            "real": self.scored - self.fake,
            "bad": self.bad,
            "threshold": round(self.threshold, 6),
            "csv": str(self.csv_path),
            "heatmaps": None if self.heatmap_dir is None else str(self.heatmap_dir),
        }


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
) -> FolderResult:
    """Score every image under ``folder`` (recursive) in batches, and every video (``video_predict`` on
    ``video_frames`` frames, decided by ``video_aggregate``; with a PyTorch model).

    Writes ``out_dir/predictions.csv`` (columns ``path, probability, decision, heatmap, error``: one row
    per file, unusable ones with the reason) and ``out_dir/heatmaps/<stem>_gradcam.png`` per scored image
    (for a video: ``heatmaps/<stem>/gradcam.png`` of its most suspicious frame and ``timeline.png``). Raises ``PredictError`` when the
    folder holds no image or video file at all.
    """
    files, heat_dir, name_of, rows = _folder_plan(folder, out_dir, heatmaps)
    if heat_dir is not None:
        from deepfake_lib.explain.heatmaps import save_overlay, to_image_size

    _score_videos(predictor, Path(folder), rows, heat_dir, progress, None, video_frames, video_aggregate)

    for scores in predictor.iter_files(files, batch_size, num_workers, heatmaps, progress, desc="scoring"):
        for path, reason in scores.bad:
            rows[path]["error"] = reason
        for i, path in enumerate(scores.paths):
            p = float(scores.probs[i])
            rows[path].update(probability=f"{p:.6f}", decision=predictor.decide(p))
            if scores.heatmaps is None:
                continue
            try:  # decode again: the overlay is drawn on the full-size image
                image = load_image(path)
            except ImageLoadError as exc:
                rows[path]["error"] = f"heatmap not written: {exc.reason}"
                continue
            target = heat_dir / name_of[path]
            save_overlay(image, to_image_size(scores.heatmaps[i], image.width, image.height), target)
            rows[path]["heatmap"] = str(target)
    ordered = list(rows.values())
    csv_path = _write_csv(Path(out_dir) / CSV_FILE, ordered, CSV_COLUMNS)
    return FolderResult(ordered, csv_path, heat_dir, predictor.threshold)


def _folder_plan(
    folder: str | os.PathLike[str], out_dir: str | os.PathLike[str], heatmaps: bool, **extra: Any
) -> tuple[list[Path], Path | None, dict[str, str], dict[str, dict[str, Any]]]:
    """The image files of ``folder``, the heatmap folder (made when ``heatmaps``), each file's heatmap name and
    one CSV row per file (unusable files with their reason; ``extra`` columns in every row)."""
    from deepfake_lib.core.images import list_image_files

    root = Path(folder)
    if not root.is_dir():
        raise PredictError(f"{root}: folder not found")
    from deepfake_lib.core.video import list_video_files

    files, skipped = list_image_files(root)
    if not files and not skipped and not list_video_files(root):
        raise _no_images(root)
    heat_dir = Path(out_dir) / HEATMAP_DIR if heatmaps else None
    if heat_dir is not None:
        heat_dir.mkdir(parents=True, exist_ok=True)
    name_of = dict(zip(map(str, files), heatmap_names(files, root), strict=True))
    rows = {str(p): _row(p) | extra for p in files}
    rows |= {str(s.path): _row(s.path, error=s.reason) | extra for s in skipped}
    return files, heat_dir, name_of, rows


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
) -> FolderResult:
    """``predict_folder`` in face mode: each image is scored by its most suspicious face.

    The CSV gets an ``n_faces`` column; an image without a face keeps an empty probability and the error
    ``no face found (...)``. Heatmaps show every face's Grad-CAM in its crop box (``FacePrediction.overlay``).
    """
    from tqdm.auto import tqdm

    from deepfake_lib.core.runs import atomic_write

    files, heat_dir, name_of, rows = _folder_plan(folder, out_dir, heatmaps, n_faces="")
    _score_videos(predictor, Path(folder), rows, heat_dir, progress, True, video_frames, video_aggregate)
    reason = no_face_reason(detector.min_score)
    with tqdm(total=len(files), desc="faces", unit="img", disable=not progress) as bar:
        for start in range(0, len(files), batch_size):
            loaded: list[tuple[str, Image.Image]] = []
            for path in files[start : start + batch_size]:
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
                    row["error"] = reason
                    continue
                row.update(probability=f"{result.probability:.6f}", decision=result.decision)
                if heat_dir is not None:
                    picture = result.overlay()
                    target = atomic_write(heat_dir / name_of[path], lambda tmp, p=picture: p.save(tmp, format="PNG"))
                    row["heatmap"] = str(target)
            bar.update(min(batch_size, len(files) - start))
    ordered = list(rows.values())
    csv_path = _write_csv(Path(out_dir) / CSV_FILE, ordered, FACE_CSV_COLUMNS)
    return FolderResult(ordered, csv_path, heat_dir, predictor.threshold)


def _score_videos(
    predictor: BasePredictor,
    root: Path,
    rows: dict[str, dict[str, Any]],
    heat_dir: Path | None,
    progress: bool,
    faces: bool | None = None,
    video_frames: int | None = VIDEO_FRAMES,
    aggregate: str = "auto",
) -> None:
    """Add one row per video under ``root``: its verdict (``video_predict``; face tracks as ``settings_for``
    decides with ``faces``, detected at the face settings' ``min_score``), or the reason it has none."""
    from tqdm.auto import tqdm

    from deepfake_lib.core.video import list_video_files

    videos = list_video_files(root)
    if not videos:
        return
    if not isinstance(predictor, Predictor):
        for path in videos:
            rows.setdefault(str(path), _row(path))["error"] = "videos need a PyTorch checkpoint (--runtime torch)"
        return
    from deepfake_lib.data.faces import video_detector
    from deepfake_lib.evaluation.aggregate import decisive_rule
    from deepfake_lib.predict.video import predict_video, settings_for, write_outputs

    settings = settings_for(predictor, faces, video_frames)
    decisive_rule(aggregate, predictor.model.config.frames)  # a wrong rule fails before the first video
    detector = None
    if settings.faces is not None:
        detector = video_detector(str(predictor.device), float(settings.faces["min_score"]))
    names = heatmap_names(videos, root)
    for path, name in tqdm(list(zip(videos, names, strict=True)), desc="videos", disable=not progress):
        row = rows.setdefault(str(path), _row(path))
        try:
            result = predict_video(predictor, path, settings, detector, heat_dir is not None, aggregate=aggregate)
        except (VideoError, NoClipError) as exc:
            row["error"] = getattr(exc, "reason", None) or str(exc).split(": ", 1)[-1]
            continue
        row.update(probability=f"{result.probability:.6f}", decision=result.decision)
        if heat_dir is not None:
            folder = heat_dir / name.removesuffix("_gradcam.png")
            heatmap_path, _ = write_outputs(result, folder)
            row["heatmap"] = str(heatmap_path or "")


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
