"""Image transforms: training augmentation and the evaluation resize/crop, ImageNet normalisation, clips of frames."""

from __future__ import annotations

import io
import random
from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image
from torchvision import transforms as T

from deepfake_lib.core.images import limit_aspect
from deepfake_lib.data.augment import augmentation, check_augment

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# --------------------------------------------------------------------------- transforms
class RandomJPEG:
    """Re-encode a PIL image as JPEG at a random quality with probability ``p`` (compression augmentation)."""

    def __init__(self, quality: tuple[int, int] = (50, 95), p: float = 0.5) -> None:
        self.quality, self.p = quality, p

    def __call__(self, img: Image.Image) -> Image.Image:
        if torch.rand(()) >= self.p:
            return img
        q = int(torch.randint(self.quality[0], self.quality[1] + 1, ()))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=q)
        buf.seek(0)
        with Image.open(buf) as out:
            return out.convert("RGB")

    def __repr__(self) -> str:
        return f"RandomJPEG(quality={self.quality}, p={self.p})"


class LimitAspect:
    """Centre-crop the long side to at most ``max_aspect`` times the short side (PIL -> PIL; ``images.limit_aspect``)."""

    def __init__(self, max_aspect: float = 4.0) -> None:
        self.max_aspect = max_aspect

    def __call__(self, img: Image.Image) -> Image.Image:
        return limit_aspect(img, self.max_aspect)

    def __repr__(self) -> str:
        return f"LimitAspect(max_aspect={self.max_aspect})"


def build_transform(image_size: int, train: bool, augment: bool | str = True) -> T.Compose:
    """PIL RGB image -> normalized tensor ``[3, image_size, image_size]``.

    Eval: resize the short side to ``image_size`` and centre-crop (an image already at that size is left
    untouched: resampling blurs the very artefacts a detector looks for); extreme aspect ratios are first
    cropped to at most 4:1. Train (``train=True``) then applies the augmentation recipe ``augment``
    (``augment.AUGMENTATIONS``: "none", "basic" (= True: light crop, flip, colour jitter, JPEG) or "strong"
    (the face-swap recipe: JPEG 60-100, noise, blur, down-scaling, colour, grayscale, shift-scale-rotate,
    random erasing)).
    """
    base = [LimitAspect(), T.Resize(image_size, antialias=True), T.CenterCrop(image_size)]
    normalize = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    recipe = check_augment(augment) if train else "none"
    steps = [T.ToTensor()] if recipe == "none" else [augmentation(recipe, image_size)]
    compose = T.Compose([*base, *steps, normalize])
    compose.recipe, compose.image_size = recipe, image_size  # what ``device_decode`` rebuilds on the device
    return compose


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """Undo ImageNet normalization: ``[..., 3, H, W]`` -> values in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(3, 1, 1)
    return (x * std + mean).clamp(0, 1)


def transform_frames(transform: Any, frames: Sequence[Image.Image]) -> torch.Tensor:
    """``transform`` each frame with the same random draws (RNG state replayed): ``[T, 3, H, W]``."""
    if len(frames) == 1:
        return transform(frames[0]).unsqueeze(0)
    torch_state, py_state = torch.get_rng_state(), random.getstate()
    out = []
    for img in frames:
        torch.set_rng_state(torch_state)
        random.setstate(py_state)
        out.append(transform(img))
    return torch.stack(out)
