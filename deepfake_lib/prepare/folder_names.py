"""The names of the prepared folders (each step's cache is named by its settings) and of the record in the final
data folder."""

from __future__ import annotations

import hashlib
from typing import Any

PREPARED_FILE = "prepared.json"  # written into the final data folder: how it was made


def _fmt(x: float) -> str:
    return f"{x:g}"


def faces_folder_name(margin: float, size: int | None, keep: str, min_score: float) -> str:
    return f"faces-m{_fmt(margin)}-s{size or 'native'}-{keep}-p{_fmt(min_score)}"


def clips_folder_name(settings: Any) -> str:
    faces = settings.faces
    name = f"clips-T{settings.frames}-n{settings.clips}-k{settings.stride or 'uniform'}-s{settings.size}"
    if faces:
        name += f"-faces-m{_fmt(faces['margin'])}-{faces['keep']}-p{_fmt(faces['min_score'])}"
    return name


def splits_folder_name(fractions: list[float], seed: int, grouping: str | None) -> str:
    name = "splits-" + "-".join(_fmt(round(f * 100, 2)) for f in fractions) + f"-seed{seed}"
    if grouping:
        name += "-g" + hashlib.sha1(grouping.encode()).hexdigest()[:8]
    return name
