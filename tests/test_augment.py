"""Training augmentation recipes: each transform of the face-swap recipe does what it says, labels never change."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from deepfake_lib.data import DeepfakeDataset, Sample, build_transform
from deepfake_lib.data.augment import AUGMENTATIONS, RandomDownscale, augmentation, check_augment
from deepfake_lib.data.transforms import transform_frames

SIZE = 64


def face_like(seed: int = 0) -> Image.Image:
    """A 64 px image with smooth colour gradients and fine texture (something blur and JPEG can take away)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    base = np.stack([200 * xx + 30, 150 * yy + 50, 120 * (1 - xx) + 60], axis=-1)
    texture = rng.normal(0, 20, (SIZE, SIZE, 3))
    return Image.fromarray(np.clip(base + texture, 0, 255).astype(np.uint8))


def as_uint8(img: Image.Image) -> torch.Tensor:
    return v2.functional.pil_to_tensor(img)


def high_frequency(x: torch.Tensor) -> float:
    """Mean absolute difference between horizontal neighbours: the fine detail of ``x [3, H, W]``."""
    x = x.float()
    return float((x[..., 1:] - x[..., :-1]).abs().mean())


def strong_steps() -> dict[str, torch.nn.Module]:
    """The transforms of the "strong" recipe by class name, each unwrapped from its ``RandomApply``."""
    steps: dict[str, torch.nn.Module] = {}
    for t in augmentation("strong", SIZE).transforms:
        inner = t.transforms if isinstance(t, v2.RandomApply) else [t]
        for s in inner:
            steps[type(s).__name__] = s
    return steps


def test_the_strong_recipe_holds_the_face_swap_augmentations() -> None:
    names = set(strong_steps())
    assert {
        "JPEG", "GaussianNoise", "GaussianBlur", "RandomDownscale", "ColorJitter", "RandomGrayscale",
        "RandomErasing", "RandomHorizontalFlip", "RandomAffine",
    } <= names  # fmt: skip
    jpeg = strong_steps()["JPEG"]
    assert list(jpeg.quality) == [60, 100]


@pytest.mark.parametrize("name", ["JPEG", "GaussianBlur", "RandomDownscale"])
def test_degradations_remove_fine_detail(name: str) -> None:
    torch.manual_seed(0)
    step = strong_steps()[name]
    x = as_uint8(face_like())
    if name == "JPEG":
        step = v2.JPEG(60)  # the recipe's strongest compression
    if name == "GaussianBlur":
        x = x.float() / 255
        step = v2.GaussianBlur(5, sigma=1.5)
    out = step(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert high_frequency(out) < 0.8 * high_frequency(x)


def test_noise_adds_noise_of_its_sigma_and_stays_in_range() -> None:
    torch.manual_seed(0)
    x = as_uint8(face_like()).float() / 255
    out = strong_steps()["GaussianNoise"](x)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert 0.02 < float((out - x).std()) < 0.035  # sigma 0.03, a little less where clipped


def test_grayscale_flip_and_erasing() -> None:
    torch.manual_seed(0)
    x = as_uint8(face_like())
    gray = v2.Grayscale(3)(x)
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    assert torch.equal(v2.RandomHorizontalFlip(p=1.0)(x), x.flip(-1))
    erasing = strong_steps()["RandomErasing"]
    erased = v2.RandomErasing(p=1.0, scale=erasing.scale, ratio=erasing.ratio, value=0.5)(x.float() / 255)
    changed = (erased != x.float() / 255).any(0)
    assert 0.02 * SIZE * SIZE * 0.5 <= int(changed.sum()) <= 0.12 * SIZE * SIZE  # one patch of the set area
    assert torch.allclose(erased[:, changed], torch.full_like(erased[:, changed], 0.5))


def test_colour_jitter_and_affine_change_the_image_but_not_its_size() -> None:
    torch.manual_seed(0)
    x = as_uint8(face_like())
    for name in ("ColorJitter", "RandomAffine"):
        out = strong_steps()[name](x)
        assert out.shape == x.shape and not torch.equal(out, x), name


def test_downscale_validates_its_range() -> None:
    with pytest.raises(ValueError, match="scale"):
        RandomDownscale((0.9, 0.5))
    out = RandomDownscale((0.5, 0.5))(torch.rand(3, 10, 12))
    assert out.shape == (3, 10, 12)


@pytest.mark.parametrize("recipe", AUGMENTATIONS)
def test_every_recipe_gives_a_normalised_image_tensor(recipe: str) -> None:
    tf = build_transform(SIZE, train=True, augment=recipe)
    outs = []
    for seed in range(6):
        torch.manual_seed(seed)
        outs.append(tf(face_like()))
    assert all(o.shape == (3, SIZE, SIZE) and o.dtype == torch.float32 for o in outs)
    eval_x = build_transform(SIZE, train=False)(face_like())
    if recipe == "none":
        assert all(torch.allclose(o, eval_x, atol=1e-6) for o in outs)
    else:
        assert any(not torch.allclose(o, eval_x, atol=1e-3) for o in outs)


def test_augment_names_and_booleans() -> None:
    assert check_augment(True) == "basic" and check_augment(False) == "none" and check_augment("strong") == "strong"
    with pytest.raises(ValueError, match="augment must be one of none, basic, strong"):
        build_transform(SIZE, train=True, augment="heavy")
    # evaluation never augments, whatever the recipe
    x = face_like()
    assert torch.equal(build_transform(SIZE, False, "strong")(x), build_transform(SIZE, False)(x))


def test_labels_survive_augmentation(tmp_path: Path) -> None:
    paths = []
    for i, label in enumerate([0, 1, 1, 0]):
        p = tmp_path / f"{i}.png"
        face_like(i).save(p)
        paths.append(Sample(p, label))
    ds = DeepfakeDataset(paths, build_transform(SIZE, train=True, augment="strong"))
    torch.manual_seed(0)
    items = [ds[i] for i in range(len(ds))]
    assert [int(it["y"]) for it in items] == [0, 1, 1, 0]
    assert all(it["x"].shape == (1, 3, SIZE, SIZE) for it in items)


def test_frames_of_a_clip_get_the_same_strong_augmentation() -> None:
    tf = build_transform(SIZE, train=True, augment="strong")
    frame = face_like()
    for seed in range(4):
        torch.manual_seed(seed)
        clip = transform_frames(tf, [frame, frame, frame])
        assert torch.equal(clip[0], clip[1]) and torch.equal(clip[1], clip[2])
