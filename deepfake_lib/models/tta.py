"""Test-time augmentation: score several views of each input and average their logits.

"none" scores the input alone; "hflip" adds its mirror image (faces are left-right symmetric, forgery traces
are not tied to a side); "more" adds, to both, a 90% centre zoom enlarged back to full size (4 views).
Averaging logits (not probabilities) keeps the result a logit, so calibration and thresholds apply as before.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepfake_lib.core.choices import TTA_MODES


def check_tta(mode: str) -> str:
    if mode not in TTA_MODES:
        raise ValueError(f"TTA must be one of {', '.join(TTA_MODES)}, got {mode!r}")
    return mode


def _zoom(x: torch.Tensor, fraction: float = 0.9) -> torch.Tensor:
    """The centre ``fraction`` of each frame of ``x [N, 3, H, W]``, resized back to ``H x W``."""
    h, w = x.shape[-2:]
    ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = x[..., top : top + ch, left : left + cw]
    return F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False, antialias=False)


def tta_views(x: torch.Tensor, mode: str) -> list[torch.Tensor]:
    """The views of ``x [B, T, 3, H, W]`` for ``mode``, each of the same shape (the first is ``x`` itself)."""
    check_tta(mode)
    views = [x]
    if mode in ("hflip", "more"):
        views.append(x.flip(-1))
    if mode == "more":
        zoomed = _zoom(x.flatten(0, 1)).view_as(x)
        views += [zoomed, zoomed.flip(-1)]
    return views


class TTAModel(nn.Module):
    """``model`` (``[B, T, 3, H, W]`` -> ``[B]`` logits) scoring the mean logit of the views of ``mode``."""

    def __init__(self, model: nn.Module, mode: str) -> None:
        super().__init__()
        self.model = model
        self.mode = check_tta(mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        views = tta_views(x, self.mode)
        if len(views) == 1:
            return self.model(x)
        if hasattr(self.model, "raw_logits"):  # average, then calibrate: as rescaling averaged raw logits does
            raw = self.model.raw_logits(torch.cat(views)).view(len(views), x.shape[0]).mean(0)
            return raw / self.model.temperature
        logits = self.model(torch.cat(views))  # one batch of B x views
        return logits.view(len(views), x.shape[0]).mean(0)


def with_tta(model: nn.Module, mode: str = "none") -> nn.Module:
    """``model`` itself for "none", else ``TTAModel(model, mode)`` in ``model``'s train/eval mode, so code that
    saves and restores the wrapper's mode (``inference.predict_loader``) leaves ``model`` as it found it."""
    if check_tta(mode) == "none":
        return model
    return TTAModel(model, mode).train(model.training)
