"""Training augmentation recipes on ``torchvision.transforms.v2``: "basic" and the face-swap recipe "strong".

Every recipe maps a PIL RGB image, already resized and centre-cropped to ``image_size``, to a float tensor
``[3, image_size, image_size]`` in [0, 1] (``transforms.build_transform`` normalises it). Augmentation never
changes the label: each transform here only degrades, recolours or moves the face a little.

"strong" follows what the strongest DFDC and FaceForensics++ detectors trained with (the DFDC winners'
albumentations recipe): JPEG re-compression at quality 60-100, Gaussian noise and blur, isotropic
down-scaling, colour jitter, grayscale, a small shift-scale-rotate and random erasing of a patch of the face,
so the detector cannot lean on one region (eyes, mouth) or on the compression of one source.
"""

from __future__ import annotations

import torch
from torchvision.transforms import InterpolationMode, v2
from torchvision.transforms.v2 import functional as F

from deepfake_lib.core.choices import AUGMENTATIONS


class RandomDownscale(torch.nn.Module):
    """Isotropic down-scaling: shrink a ``[..., H, W]`` image by a factor drawn from ``scale`` and enlarge it back
    (antialiased bilinear down, plain bilinear up), the loss of detail of a low-resolution source or a re-upload."""

    def __init__(self, scale: tuple[float, float] = (0.5, 0.9)) -> None:
        super().__init__()
        if not 0.0 < scale[0] <= scale[1] <= 1.0:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {scale}")
        self.scale = scale

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2:]
        s = float(torch.empty(()).uniform_(*self.scale))
        small = (max(1, round(h * s)), max(1, round(w * s)))
        down = F.resize(img, list(small), interpolation=InterpolationMode.BILINEAR, antialias=True)
        return F.resize(down, [h, w], interpolation=InterpolationMode.BILINEAR, antialias=False)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


def check_augment(augment: str | bool) -> str:
    """The recipe name for ``augment`` (True = "basic", False = "none"); raises ``ValueError`` for others."""
    name = {True: "basic", False: "none"}.get(augment, augment) if isinstance(augment, bool) else augment
    if name not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {', '.join(AUGMENTATIONS)}, got {augment!r}")
    return name


def recipe_steps(name: str, image_size: int) -> list[torch.nn.Module]:
    """The steps of recipe ``name`` after ``PILToTensor``: uint8 ``[3, S, S]`` in, float ``[3, S, S]`` in [0, 1] out."""
    name = check_augment(name)
    to_float = v2.ToDtype(torch.float32, scale=True)
    if name == "none":
        return [to_float]
    if name == "basic":  # the workbench's first recipe: light crop, flip, colour and JPEG
        return [
            v2.RandomApply(
                [v2.RandomResizedCrop(image_size, scale=(0.6, 1.0), ratio=(0.9, 1.1), antialias=True)], p=0.3
            ),
            v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.ColorJitter(0.2, 0.2, 0.2, 0.02)], p=0.3),
            v2.RandomApply([v2.JPEG((60, 95))], p=0.3),
            to_float,
        ]
    return [  # uint8 first: JPEG and the colour transforms work on the image's own 8-bit values
        v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.RandomAffine(degrees=10, translate=(0.05, 0.05), scale=(0.9, 1.1))], p=0.5),
        v2.RandomApply([RandomDownscale((0.5, 0.9))], p=0.2),
        v2.RandomApply([v2.JPEG((60, 100))], p=0.5),
        v2.RandomApply([v2.ColorJitter(0.25, 0.25, 0.25, 0.05)], p=0.5),
        v2.RandomGrayscale(p=0.1),
        to_float,
        v2.RandomApply([v2.GaussianBlur(5, sigma=(0.2, 1.5))], p=0.1),
        v2.RandomApply([v2.GaussianNoise(mean=0.0, sigma=0.03, clip=True)], p=0.1),
        v2.RandomErasing(p=0.3, scale=(0.02, 0.12), ratio=(0.5, 2.0), value=0.5),
    ]


def augmentation(name: str, image_size: int) -> v2.Compose:
    """The recipe ``name``: PIL image ``image_size`` square -> float tensor ``[3, image_size, image_size]`` in [0, 1]."""
    return v2.Compose([v2.PILToTensor(), *recipe_steps(name, image_size)])


def _jpeg_step(step: torch.nn.Module) -> tuple[float, tuple[int, int]] | None:
    """``(probability, (low, high))`` when ``step`` is the recipe's JPEG re-compression, else None."""
    if isinstance(step, v2.RandomApply) and len(step.transforms) == 1 and isinstance(step.transforms[0], v2.JPEG):
        low, high = step.transforms[0].quality
        return float(step.p), (int(low), int(high))
    return None


def device_augmentation(name: str, image_size: int) -> tuple[v2.Compose | None, tuple[float, tuple[int, int]] | None]:
    """Recipe ``name`` split for decoding on the device: ``(steps, jpeg)``.

    ``steps``: every step but the JPEG re-compression, uint8 ``[3, S, S]`` (on any device) -> float in [0, 1];
    None for "none" (only the conversion). ``jpeg``: ``(probability, (low, high) quality)`` of the re-compression,
    which has no device encoder and runs first, in the loader workers; None when the recipe has none."""
    steps = recipe_steps(name, image_size)
    jpegs = [j for j in map(_jpeg_step, steps) if j is not None]
    rest = [s for s in steps if _jpeg_step(s) is None]
    return (None if check_augment(name) == "none" else v2.Compose(rest)), (jpegs[0] if jpegs else None)
