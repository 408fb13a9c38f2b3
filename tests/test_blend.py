"""Self-blended pseudo-fakes: where they differ from the real face, the mask's place, odd inputs, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from deepfake_lib.data.blend import REGIONS, TEMPLATE, as_rgb_array, self_blend, template_landmarks


def face_image(size: int = 128, seed: int = 0) -> np.ndarray:
    """A textured ``[size, size, 3]`` uint8 image (noise over a gradient), so every alteration shows."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    base = np.stack([xx, yy, (xx + yy) / 2], axis=-1) * (200 / size) + 20
    return np.clip(base + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8)


def off_centre_points(size: int = 128) -> np.ndarray:
    """Landmarks of a small face in the upper-left quarter (eye distance 16 px, eyes to mouth 16 px)."""
    return np.array([[24.0, 24.0], [40.0, 24.0], [32.0, 32.0], [25.0, 40.0], [39.0, 40.0]])


@pytest.mark.parametrize("seed", range(12))
def test_the_fake_differs_from_its_target_only_under_the_mask(seed: int) -> None:
    img = face_image(seed=seed)
    fake = self_blend(img, template_landmarks(128, 128), rng=seed)
    changed = np.any(fake.image != fake.target, axis=-1)
    assert changed.any(), "a pseudo-fake must differ from the real face somewhere"
    assert not changed[fake.mask == 0].any(), "pixels outside the mask must equal the target exactly"
    assert 0 < fake.mask.max() <= 1.0 and fake.mask.min() >= 0.0
    assert fake.mask.max() == pytest.approx(fake.ratio, abs=1e-6)
    if fake.altered == "source":  # the alteration went into the pasted region: the rest is the input itself
        np.testing.assert_array_equal(fake.target, img)
    # the mask leaves most of a face crop's border alone: the blend is local
    assert (fake.mask > 0).mean() < 0.75


def test_blend_weights_follow_the_mask() -> None:
    """Where the mask is 1 the fake is the (shifted) source, halfway it is the mean of source and target."""
    img = face_image()
    for seed in range(30):
        fake = self_blend(img, template_landmarks(128, 128), rng=seed)
        if fake.ratio == 1.0:
            break
    full = fake.mask >= 0.999
    assert full.sum() > 100
    # inside the full-weight region the target no longer shows through: the fake differs from it in most pixels
    assert np.any(fake.image[full] != fake.target[full], axis=-1).mean() > 0.5


@pytest.mark.parametrize("region", list(REGIONS))
def test_the_mask_lies_on_the_face(region: str) -> None:
    """A face in the upper-left corner gets its mask there, whatever the region, not in the image centre."""
    points = off_centre_points()
    for seed in range(5):
        fake = self_blend(face_image(), points, rng=seed, region=region)
        ys, xs = np.nonzero(fake.mask > 0)
        assert fake.region == region
        # the face spans x 24-40, y 24-40; the mask (blur included) stays within 2.5 face sizes of its centre
        assert xs.max() < 32 + 40 and ys.max() < 32 + 40 and xs.min() >= 0 and ys.min() >= 0
        w = fake.mask[ys, xs]
        centroid = np.array([np.average(xs, weights=w), np.average(ys, weights=w)])
        assert np.linalg.norm(centroid - points.mean(axis=0)) < 16, (region, centroid)


def test_the_mask_follows_a_tilted_face() -> None:
    """Landmarks of a face lying on its side (eyes to mouth pointing right): the mask is wider than tall."""
    points = np.array([[40.0, 48.0], [40.0, 80.0], [56.0, 64.0], [72.0, 50.0], [72.0, 78.0]])
    fake = self_blend(face_image(), points, rng=1, region="mouth")
    ys, xs = np.nonzero(fake.mask > 0.5)
    assert xs.mean() > 60  # the mouth region sits on the right, where the mouth is


def test_same_seed_same_fake_and_another_seed_another() -> None:
    img = face_image()
    a, b = self_blend(img, None, rng=7), self_blend(img, None, rng=7)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.mask, b.mask)
    c = self_blend(img, None, rng=8)
    assert not np.array_equal(a.image, c.image)
    gen = np.random.default_rng(3)
    np.testing.assert_array_equal(self_blend(img, rng=gen).image, self_blend(img, rng=np.random.default_rng(3)).image)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "I;16", "CMYK"])
def test_any_pil_mode_gives_an_rgb_pseudo_fake(mode: str) -> None:
    img = Image.fromarray(face_image(64)).convert("L" if mode == "I;16" else mode)
    if mode == "I;16":
        img = Image.fromarray(np.asarray(img).astype(np.uint16) * 256)
    fake = self_blend(img, rng=0)
    assert fake.image.shape == (64, 64, 3) and fake.image.dtype == np.uint8
    assert (fake.mask > 0).any()


def test_grayscale_arrays_stay_grey() -> None:
    grey = face_image(64)[..., 0]
    for arr in (grey, grey[..., None]):
        fake = self_blend(arr, rng=2)
        assert fake.image.shape == (64, 64, 3)
        np.testing.assert_array_equal(as_rgb_array(arr)[..., 0], grey)


@pytest.mark.parametrize("size", [8, 12, 20])
def test_a_tiny_face_still_gets_a_mask(size: int) -> None:
    fake = self_blend(face_image(size), template_landmarks(size, size), rng=0)
    assert fake.image.shape == (size, size, 3)
    assert (fake.mask > 0).any()
    changed = np.any(fake.image != fake.target, axis=-1)
    assert not changed[fake.mask == 0].any()


def test_a_face_smaller_than_a_pixel_in_a_large_image() -> None:
    points = np.full((5, 2), 50.0) + np.random.default_rng(0).uniform(-0.2, 0.2, (5, 2))
    fake = self_blend(face_image(), points, rng=0)
    ys, xs = np.nonzero(fake.mask > 0)
    assert len(xs) >= 1 and abs(xs.mean() - 50) < 6 and abs(ys.mean() - 50) < 6


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="five finite"):
        self_blend(face_image(32), np.zeros((4, 2)), rng=0)
    with pytest.raises(ValueError, match="five finite"):
        self_blend(face_image(32), np.full((5, 2), np.nan), rng=0)
    with pytest.raises(ValueError, match="expected an image"):
        self_blend(np.zeros((4, 4, 2), dtype=np.uint8), rng=0)
    with pytest.raises(ValueError, match="region must be one of"):
        self_blend(face_image(32), rng=0, region="ear")


def test_template_is_a_centred_upright_face() -> None:
    eyes, nose, mouth = TEMPLATE[:2].mean(0), TEMPLATE[2], TEMPLATE[3:].mean(0)
    assert abs(eyes[0] - 0.5) < 0.02 and abs(mouth[0] - 0.5) < 0.02
    assert eyes[1] < nose[1] < mouth[1]
