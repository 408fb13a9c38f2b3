"""Raw images and videos -> a training-ready ``<split>/{real,fake}`` folder: clips cut from videos, optional face
crops, then leak-free splits (all clips of one video, all faces of one photo, on one side).

Each step writes a new folder under ``prepared_root`` (the source stays untouched) and is cached there, so a
re-run reuses it. Notebook 01 calls ``prepare_data``; so does the command line:

python -m deepfake_lib.cli.prepare DATA_DIR [--faces] [--frames 8] [--fractions 0.7 0.15 0.15] [--group-regex R]
                                        [--out ROOT]
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfake_lib import CLASS_NAMES
from deepfake_lib.core.files import folder_problem
from deepfake_lib.core.runs import METRICS_FILE, project_root, read_json, resolve_path, write_json
from deepfake_lib.prepare.folder_names import (
    PREPARED_FILE,
    clips_folder_name,
    faces_folder_name,
    splits_folder_name,
)


class PrepareError(ValueError):
    """Data that cannot be prepared as asked; the message says what to change."""


@dataclass
class PreparedData:
    """Where the prepared data is and what was done to get there."""

    source_dir: Path
    data_dir: Path
    steps: list[str] = field(default_factory=list)
    clips: dict[str, Any] | None = None
    faces: dict[str, Any] | None = None
    splits: dict[str, Any] | None = None
    protocol: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "source_dir": str(self.source_dir),
            "data_dir": str(self.data_dir),
            "steps": list(self.steps),
            "clips": self.clips,
            "faces": self.faces,
            "splits": self.splits,
            "protocol": self.protocol,
        }


def data_source(data_dir: str | os.PathLike[str]) -> Any:
    """What ``DATA_DIR`` names: a dataset (``datasets.spec.DatasetSpec``) for ``NAME:ROOT?options``, else the folder
    (resolved against the project). ``DatasetSpecError`` for a dataset string that cannot be used."""
    from deepfake_lib.prepare.datasets.spec import is_dataset_spec, parse_dataset

    return parse_dataset(str(data_dir)) if is_dataset_spec(str(data_dir)) else resolve_path(data_dir)


def _from_dataset(spec: Any, prepared_root: Any, face: dict[str, Any], seed: int, fractions: Any, device: str,
                  progress: bool) -> PreparedData:  # fmt: skip
    """``prepare_data`` for a dataset: the protocol step (``protocol.prepare_protocol``)."""
    from deepfake_lib.prepare.protocol import prepare_protocol

    result = prepare_protocol(spec, prepared_root, face["margin"], face["size"], face["keep"], face["min_score"],
                              seed, tuple(fractions), device, progress)  # fmt: skip
    return PreparedData(source_dir=Path(str(spec)), data_dir=result.data_dir, steps=["protocol"],
                        faces=result.faces, protocol=result.summary())  # fmt: skip


def default_prepared_root(data_dir: str | os.PathLike[str]) -> Path:
    """``outputs/prepared/<folder name>-<hash of its absolute path>`` (two folders of one name never collide)."""
    src = Path(data_dir).expanduser().resolve()
    digest = hashlib.sha1(str(src).encode()).hexdigest()[:8]
    return project_root() / "outputs" / "prepared" / f"{src.name}-{digest}"


def face_crop_size(face_size: int | None, image_size: int) -> int | None:
    """The notebooks' ``FACE_SIZE``: None -> ``image_size`` (crops at the model's input size, resampled only
    once), 0 -> None (the crop's native resolution), else the number itself."""
    if face_size is None:
        return image_size
    return int(face_size) or None


def _item_groups(
    origins: dict[str, str],
    source_dir: Path,
    group_regex: str | None = None,
    group_csv: str | None = None,
    group_column: str | None = None,
    path_column: str = "path",
) -> dict[str, str]:
    """Prepared item (crop or clip, relative to its folder) -> group, from the item's original file (``origins``,
    relative to ``source_dir``): the regex over that file's name, or its row in the group CSV (keyed by the
    original files), so the user's grouping survives the preparation; an original without a group is its own
    group (all faces of one photo, all clips of one video stay together)."""
    from deepfake_lib.prepare.grouping import groups_from_csv

    pattern = re.compile(group_regex) if group_regex else None
    by_csv = groups_from_csv(group_csv, path_column, group_column, source_dir) if group_csv else {}
    groups = {}
    for crop, source in origins.items():
        group = by_csv.get(source) or by_csv.get(Path(source).name) or source
        if pattern is not None and (m := pattern.search(Path(source).name)):
            group = (m.group(1) if m.groups() else m.group(0)) or source
        groups[crop] = group
    return groups


def _crop_sources(manifest: Path) -> dict[str, str]:
    """Face crop -> its source file (both relative to their folders), from a faces manifest."""
    import pandas as pd

    rows = pd.read_csv(manifest, dtype=str)
    return dict(zip(rows["crop"], rows["source"], strict=True))


@dataclass
class _Preparation:
    """A ``prepare_data`` call in progress: the folder the next step reads, and each prepared item's origin."""

    source: Path
    root: Path  # where the steps write their folders
    result: PreparedData
    current: Path  # the output of the last step so far (``source`` before any)
    origins: dict[str, str] | None = None  # prepared item -> its original file, for grouping


def _checked_source(data_dir: str | os.PathLike[str], make_splits: bool | str) -> tuple[Path, bool]:
    """The resolved data folder and whether it is flat; ``PrepareError`` when it cannot be prepared as asked."""
    from deepfake_lib.prepare import splits as sp

    source = resolve_path(data_dir)
    problem = folder_problem(source)
    if problem:
        raise PrepareError(f"data folder {source}: {problem}")
    if make_splits not in (True, False, "auto"):
        raise PrepareError(f"MAKE_SPLITS must be True, False or 'auto', got {make_splits!r}")
    flat = sp.is_flat_layout(source)
    if make_splits is True and not flat:
        raise PrepareError(
            f"{source} is not a flat {{real,fake}} folder, so it cannot be split (it may already have splits); "
            "set MAKE_SPLITS = 'auto' or False to use its splits"
        )
    if flat and make_splits is False:
        raise PrepareError(
            f"{source} holds real/ and fake/ directly, with no train/val/test splits: set MAKE_SPLITS = 'auto' "
            "to split it (stratified, optionally grouped with GROUP_REGEX or GROUP_CSV)"
        )
    if not flat and not has_split_folders(source):
        raise PrepareError(
            f"nothing to prepare in {source}: it holds neither real/ and fake/ (a flat folder to split) nor split "
            f"folders such as train/real and train/fake ({sp._layout_problem(source)})"
        )
    return source, flat


def check_source(data_dir: str | os.PathLike[str], make_splits: bool | str = "auto", need_fakes: bool = True) -> Path:
    """Check, without reading any image, that ``data_dir`` can be prepared as asked (``_checked_source``) and that
    its split folders hold a ``real`` folder and, when ``need_fakes``, a ``fake`` one; ``PrepareError`` naming the
    folder and what it holds otherwise. Returns the resolved folder."""
    from deepfake_lib.data.scan import find_class_dirs

    source, flat = _checked_source(data_dir, make_splits)
    if flat:
        return source
    needed = CLASS_NAMES if need_fakes else CLASS_NAMES[:1]
    for split in sorted(d for d in source.iterdir() if d.is_dir() and d.name.lower() not in CLASS_NAMES):
        found = find_class_dirs(split)
        if not found:
            continue  # not a split folder (notes, a cache): 01 lists what it uses
        missing = [name for i, name in enumerate(CLASS_NAMES) if name in needed and i not in found]
        if missing:
            hint = " (FAKES = 'self-blended' trains without fakes)" if "fake" in missing else ""
            raise PrepareError(f"{split}: no {' or '.join(missing)} folder{hint}")
    return source


def _cut_clips(prep: _Preparation, settings: Any, device: str, progress: bool) -> None:
    """Videos -> clip folders (``settings``: a ``ClipSettings``); every clip's origin is its video."""
    from deepfake_lib.core.images import list_samples
    from deepfake_lib.prepare.clips import clip_origins, prepare_clips

    out = prep.root / clips_folder_name(settings)
    clip_result = prepare_clips(prep.current, out, settings, device=device, progress=progress)
    left_out = [{"path": p, "reason": r} for p, r in [*clip_result.no_clip, *clip_result.unreadable]]
    prep.result.clips = {**clip_result.summary(), "settings": settings.to_dict(), "left_out": left_out}
    prep.result.steps.append("clips")
    items, _ = list_samples(clip_result.out_dir)
    origins = {p.relative_to(clip_result.out_dir).as_posix(): p.relative_to(clip_result.out_dir).as_posix()
               for p in items}  # fmt: skip
    origins.update(clip_origins(clip_result.manifest))
    prep.origins, prep.current = origins, clip_result.out_dir


def _crop_faces(
    prep: _Preparation, margin: float, size: int | None, keep: str, min_score: float, device: str, progress: bool
) -> None:
    """Images (and clips) -> face crops; a crop's origin is its photo's (a clip's: its video)."""
    from deepfake_lib.prepare.faces import prepare_faces

    out = prep.root / faces_folder_name(margin, size, keep, min_score)
    face_result = prepare_faces(
        prep.current, out, margin=margin, size=size, keep=keep, min_score=min_score, device=device,
        progress=progress,
    )  # fmt: skip
    left_out = [{"path": p, "reason": r} for p, r in [*face_result.no_face, *face_result.unreadable]]
    prep.result.faces = {
        **face_result.summary(),
        "margin": margin, "size": size, "keep": keep, "min_score": min_score, "left_out": left_out,
    }  # fmt: skip
    prep.result.steps.append("faces")
    crops = _crop_sources(face_result.manifest)
    # clips passed through the face step keep their video as origin; a crop's origin is its photo's
    origins = prep.origins or {}
    prep.origins = {**origins, **{c: origins.get(src, src) for c, src in crops.items()}}
    prep.current = face_result.out_dir


def _split(
    prep: _Preparation, fractions: tuple[float, ...] | list[float], seed: int, group_regex: str | None,
    group_csv: str | None, group_column: str | None, progress: bool,
) -> None:  # fmt: skip
    """The flat folder -> train/val/test, grouped by the user's grouping or, after clips or faces, by origin."""
    from deepfake_lib.prepare import splits as sp

    groups = _item_groups(prep.origins, prep.source, group_regex, group_csv, group_column) if prep.origins else None
    grouping = group_regex or (f"{group_csv}:{group_column}" if group_csv else None)
    if groups is not None:
        grouping = f"{'+'.join(prep.result.steps)}-by-source:{grouping or ''}"
    out = prep.root / splits_folder_name(list(fractions), seed, grouping)
    grouping_args = (
        {"groups": groups}
        if groups is not None
        else {"group_regex": group_regex, "group_csv": group_csv, "group_column": group_column}
    )
    split_result = sp.make_splits(
        prep.current, out, fractions=tuple(fractions), seed=seed, progress=progress, **grouping_args
    )
    prep.result.splits = split_result.summary()
    prep.result.steps.append("splits")
    prep.current = split_result.out_dir


def prepare_data(
    data_dir: str | os.PathLike[str],
    prepared_root: str | os.PathLike[str] | None = None,
    faces: bool = False,
    face_margin: float = 1.3,
    face_size: int | None = 224,
    face_keep: str = "largest",
    face_min_score: float = 0.9,
    make_splits: bool | str = "auto",
    split_fractions: tuple[float, ...] | list[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    group_regex: str | None = None,
    group_csv: str | None = None,
    group_column: str | None = None,
    frames: int = 8,
    clips_per_video: int = 2,
    frame_stride: int | None = None,
    image_size: int = 224,
    device: str = "cpu",
    progress: bool = True,
) -> PreparedData:
    """Make ``data_dir`` ready for training and return where the result is.

    Videos (any under ``data_dir``) first become clip folders of ``frames`` frames (``deepfake_lib.data.clips``: at
    most ``clips_per_video`` per face track, sampled uniformly or every ``frame_stride``-th frame; face tracks
    with ``faces``, else whole frames at ``image_size``); images pass through.
    ``faces``: crop faces with MTCNN (``deepfake_lib.data.faces``; same layout, files without a face are listed,
    not dropped silently). ``make_splits``: "auto" splits a flat ``{real,fake}`` folder into train/val/test
    (``deepfake_lib.prepare.splits``) and leaves an already split one alone; True requires a flat folder; False
    never splits. With neither step ``data_dir`` itself is returned. With face crops and no grouping of
    the user's, all crops of one source image form a group.

    A dataset (``NAME:ROOT?options``, ``datasets.spec``) goes through the protocol step instead: its own splits,
    frames per video, faces with the ``face_*`` settings (unless its ``faces=false``).
    """
    from deepfake_lib.data.clips import ClipSettings, has_videos

    spec = data_source(data_dir) if not isinstance(data_dir, Path) else data_dir
    if not isinstance(spec, Path):
        face = {"margin": face_margin, "size": face_size, "keep": face_keep, "min_score": face_min_score}
        return _from_dataset(spec, prepared_root, face, seed, split_fractions, device, progress)

    group_csv = str(resolve_path(group_csv)) if group_csv else None  # relative to the project, like DATA_DIR
    source, flat = _checked_source(data_dir, make_splits)
    root = resolve_path(Path(prepared_root).expanduser() if prepared_root else default_prepared_root(source))
    prep = _Preparation(source, root, PreparedData(source_dir=source, data_dir=source), current=source)
    if has_videos(source):
        face_settings = {"margin": face_margin, "keep": face_keep, "min_score": face_min_score} if faces else None
        clip_settings = ClipSettings(
            frames=frames, clips=clips_per_video, stride=frame_stride,
            size=(face_size or image_size) if faces else image_size, faces=face_settings,
        )  # fmt: skip
        _cut_clips(prep, clip_settings, device, progress)
    if faces:
        _crop_faces(prep, face_margin, face_size, face_keep, face_min_score, device, progress)
    if flat and make_splits in (True, "auto"):
        _split(prep, split_fractions, seed, group_regex, group_csv, group_column, progress)
    result = prep.result
    result.data_dir = prep.current
    if result.steps:
        write_json(prep.current / PREPARED_FILE, result.summary())
    return result


def has_split_folders(data_dir: Path) -> bool:
    """True when some sub-folder of ``data_dir`` (a split: train, val, test...) holds a real or fake folder."""
    try:
        splits = [d for d in data_dir.iterdir() if d.is_dir() and d.name.lower() not in CLASS_NAMES]
        return any(c.is_dir() and c.name.lower() in CLASS_NAMES for d in splits for c in d.iterdir())
    except OSError:
        return False


def preparation_of(data_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """What ``prepare_data`` recorded in the folder (``prepared.json``), or None for raw data."""
    return read_json(resolve_path(data_dir) / PREPARED_FILE, default=None)


def checkpoint_info(data_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Extra checkpoint keys describing the training data's preparation, so prediction can repeat it:
    ``{"faces": {"margin", "size", "keep", "min_score"}}`` when the model was trained on face crops, and
    ``{"clips": {"frames", "clips", "stride", "size", "faces"}}`` when videos were cut into clips."""
    prep = preparation_of(data_dir) or {}
    info: dict[str, Any] = {}
    if face := prep.get("faces"):
        info["faces"] = {k: face.get(k) for k in ("margin", "size", "keep", "min_score")}
    if clips := prep.get("clips"):
        info["clips"] = {k: v for k, v in clips["settings"].items() if k != "format"}
    return info


def data_dir_for_run(data_dir: str | os.PathLike[str], run_dir: str | os.PathLike[str]) -> Path:
    """The folder notebooks 02-05 read: what 01 prepared from ``data_dir`` for this run (recorded in the
    run's metrics.json), else ``data_dir`` itself."""
    src = data_source(data_dir)
    record = (read_json(resolve_path(run_dir) / METRICS_FILE, default={}) or {}).get("data", {})
    if record.get("source_dir") and record.get("data_dir"):
        recorded = record["source_dir"]
        if (str(recorded) == str(src)) if not isinstance(src, Path) else Path(recorded) == src:
            return Path(record["data_dir"])
    if not isinstance(src, Path):
        raise PrepareError(f"{src}: a dataset is read through notebook 01 (the protocol step), which has not "
                           f"prepared it for the run {resolve_path(run_dir)}: run 01 first")  # fmt: skip
    return src
