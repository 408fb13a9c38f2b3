"""Grad-CAM: shapes and ranges, agreement with a by-hand computation, and heatmaps that follow the evidence."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from deepfake_lib.explain.heatmaps import crop_box, gradcam, overlay, save_overlay, to_image_size
from deepfake_lib.predict.predictors import Predictor
from deepfake_lib.predict.results import sigmoid
from tests.conftest import tiny_model


def manual_gradcam(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Grad-CAM by hand at ``backbone._conv_head``: ReLU(sum_k mean(dlogit/dA_k) * A_k), scaled to [0, 1]
    before and after the bilinear upsampling (as pytorch-grad-cam does)."""
    model.eval()
    store = {}

    def hook(module, inputs, output):
        store["a"] = output.detach().requires_grad_(True)
        return store["a"]

    handle = model.backbone._conv_head.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            logits = model(x)
            (grad,) = torch.autograd.grad(logits.sum(), store["a"])
    finally:
        handle.remove()
    cam = torch.relu((grad.mean((2, 3), keepdim=True) * store["a"].detach()).sum(1)).numpy()
    out = []
    for c in cam:
        for _ in range(2):
            c = c - c.min()
            c = c / (c.max() + 1e-7)
            c = cv2.resize(c.astype(np.float32), tuple(x.shape[-2:][::-1]))
        out.append(c)
    return np.stack(out)


@pytest.mark.parametrize("trainable_blocks", [5, 0, -1])
def test_gradcam_shape_range_logits_and_state(trainable_blocks: int) -> None:
    model = tiny_model(image_size=64, trainable_blocks=trainable_blocks)
    flags = [p.requires_grad for p in model.parameters()]
    x = torch.randn(3, 1, 3, 64, 64)
    with torch.inference_mode():  # callers may be inside inference mode; Grad-CAM still gets its gradients
        maps, logits = gradcam(model, x, batch_size=2)
    assert maps.shape == (3, 64, 64) and maps.dtype == np.float32
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    assert maps.max() > 0.5  # (an image without any FAKE evidence would get an all-zero map)
    model.eval()
    with torch.no_grad():
        np.testing.assert_allclose(logits, model(x).double().numpy(), rtol=1e-4, atol=1e-5)
    assert np.all((sigmoid(logits) > 0) & (sigmoid(logits) < 1))
    assert model.training is False and [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())


def test_gradcam_restores_training_mode_and_accepts_4d_input() -> None:
    model = tiny_model(image_size=64).train()
    maps, logits = gradcam(model, torch.randn(2, 3, 64, 64))
    assert model.training and maps.shape == (2, 64, 64) and logits.shape == (2,)
    with pytest.raises(ValueError, match="T = 1"):
        gradcam(model, torch.randn(1, 2, 3, 64, 64))


@pytest.mark.parametrize(
    ("backbone", "trainable_blocks"),
    [("efficientnet-b0", 5), ("efficientnet-b0", 0), ("efficientnet-lite0", 3)],
)
def test_gradcam_matches_by_hand_computation_with_and_without_channels_last(
    backbone: str, trainable_blocks: int
) -> None:
    torch.manual_seed(1)
    x = torch.randn(2, 1, 3, 96, 96)  # 3x3 feature map
    results = []
    for channels_last in (True, False):
        model = tiny_model(
            image_size=96, trainable_blocks=trainable_blocks, channels_last=channels_last, backbone=backbone
        )
        maps, _ = gradcam(model, x)
        np.testing.assert_allclose(maps, manual_gradcam(model, x), atol=1e-4)
        results.append(maps)
    np.testing.assert_allclose(results[0], results[1], atol=1e-4)


class ColourDetector(nn.Module):
    """``[B, T, 3, H, W]`` -> ``[B]``: the logit is the mean red-patch response; a green channel is computed
    at the same layer but does not reach the logit (a distractor for the heatmap)."""

    def __init__(self, channels_last: bool) -> None:
        super().__init__()
        self.backbone = nn.Module()
        self.backbone._conv_head = nn.Conv2d(3, 2, kernel_size=3, padding=1)
        self.head = nn.Linear(2, 1)
        self.channels_last = channels_last
        with torch.no_grad():
            w = torch.zeros(2, 3, 3, 3)
            w[0, :, 1, 1] = torch.tensor([1.0, -1.0, -1.0])  # red
            w[1, :, 1, 1] = torch.tensor([-1.0, 1.0, -1.0])  # green
            self.backbone._conv_head.weight.copy_(w)
            self.backbone._conv_head.bias.zero_()
            self.head.weight.copy_(torch.tensor([[32.0, 0.0]]))
            self.head.bias.fill_(-1.0)
        if channels_last:
            self.backbone.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        frames = x.flatten(0, 1)
        if self.channels_last:
            frames = frames.contiguous(memory_format=torch.channels_last)
        feats = torch.relu(self.backbone._conv_head(frames)).mean((2, 3))
        return self.head(feats).view(b, t).mean(1)


def patch_image(red: tuple[int, int], green: tuple[int, int], size: int = 64, side: int = 16) -> torch.Tensor:
    """A grey ``[3, size, size]`` image with a red and a green square at the given (row, col) corners."""
    img = torch.full((3, size, size), 0.5)
    for (r, c), colour in ((red, (1.0, 0.0, 0.0)), (green, (0.0, 1.0, 0.0))):
        img[:, r : r + side, c : c + side] = torch.tensor(colour).view(3, 1, 1)
    return img


def mass_in(heatmap: np.ndarray, corner: tuple[int, int], side: int = 16, pad: int = 2) -> float:
    r, c = corner
    return float(heatmap[max(0, r - pad) : r + side + pad, max(0, c - pad) : c + side + pad].sum() / heatmap.sum())


@pytest.mark.parametrize("channels_last", [False, True])
def test_heatmap_moves_with_the_evidence(channels_last: bool) -> None:
    # Asymmetric corners: a flipped or transposed heatmap would land on the wrong square.
    top_right, bottom_left = (4, 44), (44, 4)
    x = torch.stack([patch_image(red=top_right, green=bottom_left), patch_image(red=bottom_left, green=top_right)])
    model = ColourDetector(channels_last)
    maps, logits = gradcam(model, x.unsqueeze(1))
    assert maps.shape == (2, 64, 64) and maps.min() >= 0 and maps.max() <= 1
    assert np.all(logits > 0)  # the red square makes both images FAKE
    for heatmap, red, green in ((maps[0], top_right, bottom_left), (maps[1], bottom_left, top_right)):
        assert mass_in(heatmap, red) > 0.9
        assert mass_in(heatmap, green) < 0.02
        peak = np.unravel_index(heatmap.argmax(), heatmap.shape)
        assert red[0] <= peak[0] < red[0] + 16 and red[1] <= peak[1] < red[1] + 16
    # no red square: nothing pushes towards FAKE -> an all-zero heatmap rather than noise
    plain, _ = gradcam(model, patch_image(red=(0, 0), green=top_right, side=0).view(1, 1, 3, 64, 64))
    assert plain.max() == 0.0


def test_to_image_size_maps_onto_the_centre_crop() -> None:
    heat = np.zeros((8, 8), dtype=np.float32)
    heat[:, :4] = 1.0  # left half hot
    out = to_image_size(heat, width=80, height=50)
    left, top, side = crop_box(80, 50)
    assert (left, top, side) == (15, 0, 50)
    assert out.shape == (50, 80) and out.min() >= 0 and out.max() <= 1
    assert out[:, :left].max() == 0 and out[:, left + side :].max() == 0  # cropped-away margins
    assert out[:, left : left + 20].mean() > 0.9 and out[:, left + 30 : left + side].mean() < 0.1


def test_overlay_colours_and_png(tmp_path) -> None:
    image = Image.new("RGB", (80, 50), (128, 128, 128))
    heat = np.zeros((50, 80), dtype=np.float32)
    heat[:, 15:40] = 1.0
    picture = np.asarray(overlay(image, heat))
    assert picture.shape == (50, 80, 3)
    hot, cold, margin = picture[25, 25].astype(int), picture[25, 60].astype(int), picture[25, 5].astype(int)
    assert hot[0] > hot[2] + 50  # red = high
    assert cold[2] > cold[0] + 50  # blue = low
    assert margin[0] == margin[1] == margin[2]  # grey, unseen
    path = save_overlay(image, heat, tmp_path / "sub" / "gradcam.png")
    with Image.open(path) as saved:
        assert saved.format == "PNG" and saved.size == (80, 50)
    with pytest.raises(ValueError, match="does not match"):
        overlay(image, heat[:10])


def test_predictor_heatmap_has_the_image_size() -> None:
    predictor = Predictor(tiny_model(image_size=64), image_size=64, threshold=0.5)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for h, w in ((50, 90), (64, 64))]
    preds = predictor.predict(images)
    for img, pred in zip(images, preds, strict=True):
        assert pred.heatmap.shape == (img.height, img.width)
        assert pred.heatmap.min() >= 0 and pred.heatmap.max() <= 1
        assert 0 < pred.probability < 1 and pred.decision == ("FAKE" if pred.probability >= 0.5 else "REAL")
        assert pred.overlay().size == img.size
    no_maps = predictor.predict(images, heatmaps=False)
    assert [p.heatmap for p in no_maps] == [None, None]
    np.testing.assert_allclose([p.probability for p in no_maps], [p.probability for p in preds], atol=1e-5)
