"""Grad-CAM heatmaps for the FAKE logit (via pytorch-grad-cam) and colour overlays saved as PNG.

``gradcam`` explains a batch at the model's input size; ``to_image_size`` maps a heatmap back onto the
original image (the eval transform's centre crop); ``overlay`` draws it in JET colours: red/yellow = high
FAKE evidence, blue = low.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.image import show_cam_on_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from deepfake_lib.core.runs import atomic_write
from deepfake_lib.evaluation.inference import model_device


class FrameAdapter(nn.Module):
    """Presents a sequence model (``[B, T, 3, H, W]`` -> ``[B]`` logits) to pytorch-grad-cam as a
    classifier ``[B, 3, H, W]`` -> ``[B, 1]`` (each image is a sequence of length T = 1)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.unsqueeze(1)).unsqueeze(1)


def default_target_layer(model: nn.Module) -> nn.Module:
    """The last convolution of the EfficientNet backbone (``backbone._conv_head``, feature map ``[N, C, h, w]``)."""
    return model.backbone._conv_head


def _as_grad_leaf(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
    # Cut the graph at the target layer: backward then only runs from the logit down to this feature map,
    # whether or not the layer (or anything before it) is trainable.
    return output.detach().requires_grad_(True)


@contextlib.contextmanager
def _explain_mode(model: nn.Module, device: torch.device) -> Iterator[None]:
    """Eval mode, autograd on (even inside ``inference_mode``/``no_grad``), no parameter gradients, and
    cudnn off on CUDA (cudnn's RNN backward refuses to run in eval mode); everything restored on exit."""
    was_training = model.training
    params = list(model.parameters())
    saved = [(p, p.requires_grad, p.grad) for p in params]
    cudnn_off = torch.backends.cudnn.flags(enabled=False) if device.type == "cuda" else contextlib.nullcontext()
    try:
        for p in params:
            p.requires_grad_(False)
        with torch.inference_mode(False), torch.enable_grad(), cudnn_off:
            yield
    finally:
        for p, requires_grad, grad in saved:
            p.requires_grad_(requires_grad)
            p.grad = grad
        model.train(was_training)


def gradcam(
    model: nn.Module, x: torch.Tensor, target_layer: nn.Module | None = None, batch_size: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM of the FAKE logit for a batch of normalized images.

    ``x``: ``[B, 3, H, W]`` or ``[B, 1, 3, H, W]``. Returns ``(heatmaps [B, H, W] float32 in [0, 1],
    logits [B] float64)``; the logits come from the same (fp32, eval-mode) forward pass. Each heatmap is
    scaled to its own maximum (all zeros when nothing pushes the logit towards FAKE). ``target_layer``
    defaults to ``model.backbone._conv_head``, whose map is ``H / 32`` cells wide (7 x 7 at 224 px; below
    64 px it is 1 x 1 and the heatmap, min-max scaled, is all zeros). Chunks of ``batch_size`` bound memory.
    """
    if x.dim() == 5:
        if x.shape[1] != 1:
            raise ValueError(f"gradcam explains single images (T = 1), got input of shape {tuple(x.shape)}")
        x = x[:, 0]
    if x.dim() != 4:
        raise ValueError(f"expected input [B, 3, H, W] or [B, 1, 3, H, W], got shape {tuple(x.shape)}")
    layer = target_layer if target_layer is not None else default_target_layer(model)
    device = model_device(model)
    if len(x) == 0:
        return np.zeros((0, *x.shape[-2:]), dtype=np.float32), np.zeros(0, dtype=np.float64)
    heatmaps, logits = [], []
    with _explain_mode(model, device):
        handle = layer.register_forward_hook(_as_grad_leaf)  # registered first: Grad-CAM's hooks see the leaf
        cam = GradCAM(FrameAdapter(model), [layer])
        try:
            for chunk in x.split(batch_size):
                # clone(): an inference-mode tensor cannot take part in autograd
                chunk = chunk.to(device=device, dtype=torch.float32).clone()
                heatmaps.append(cam(chunk, targets=[ClassifierOutputTarget(0)] * len(chunk)))
                logits.append(cam.outputs.detach()[:, 0].double().cpu().numpy())
                cam.outputs = None
        finally:
            # not `with GradCAM(...)`: its __exit__ swallows IndexError
            cam.activations_and_grads.release()
            handle.remove()
    return np.clip(np.concatenate(heatmaps).astype(np.float32), 0.0, 1.0), np.concatenate(logits)


# --------------------------------------------------------------------------- back onto the image
def crop_box(width: int, height: int) -> tuple[int, int, int]:
    """``(left, top, side)`` of the region the eval transform keeps (resize short side + centre crop)."""
    side = min(width, height)
    return int(round((width - side) / 2)), int(round((height - side) / 2)), side


def to_image_size(heatmap: np.ndarray, width: int, height: int) -> np.ndarray:
    """Map a model-input heatmap ``[h, w]`` onto the original image: ``[height, width]`` float32 in [0, 1].

    The centre square the model saw gets the (resized) heatmap; the cropped-away margins get 0.
    """
    left, top, side = crop_box(width, height)
    out = np.zeros((height, width), dtype=np.float32)
    out[top : top + side, left : left + side] = cv2.resize(
        np.asarray(heatmap, dtype=np.float32), (side, side), interpolation=cv2.INTER_LINEAR
    )
    return np.clip(out, 0.0, 1.0)


def overlay(image: Image.Image, heatmap: np.ndarray, alpha: float = 0.5, max_side: int | None = 1024) -> Image.Image:
    """The heatmap ``[H, W]`` (the image's size) blended over ``image`` in JET colours (red/yellow = high,
    blue = low). Margins the model did not see (outside ``crop_box``) are shown greyed out, without colour.
    Images larger than ``max_side`` are shrunk first."""
    rgb = image.convert("RGB")
    if heatmap.shape != (rgb.height, rgb.width):
        raise ValueError(f"heatmap shape {heatmap.shape} does not match the image size {rgb.height}x{rgb.width}")
    box = crop_box(rgb.width, rgb.height)
    if max_side and max(rgb.size) > max_side:
        scale = max_side / max(rgb.size)
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        rgb = rgb.resize(size, Image.Resampling.BILINEAR)
        heatmap = cv2.resize(heatmap.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
        box = tuple(round(v * scale) for v in box)
    img = np.asarray(rgb, dtype=np.float32) / 255.0
    blended = show_cam_on_image(img, np.clip(heatmap, 0, 1), use_rgb=True, image_weight=1.0 - alpha)
    left, top, side = box
    seen = np.zeros(img.shape[:2], dtype=bool)
    seen[top : top + side, left : left + side] = True
    grey = (img.mean(axis=2, keepdims=True).repeat(3, axis=2) * 0.6 * 255).astype(np.uint8)
    return Image.fromarray(np.where(seen[..., None], blended, grey))


def save_overlay(image: Image.Image, heatmap: np.ndarray, path: str | os.PathLike[str], alpha: float = 0.5) -> Path:
    """Write ``overlay(image, heatmap)`` as a PNG (atomically) and return the path."""
    picture = overlay(image, heatmap, alpha)
    return atomic_write(path, lambda tmp: picture.save(tmp, format="PNG"))
