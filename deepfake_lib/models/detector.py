"""EfficientNetLSTM: EfficientNet backbone -> global pooling -> (bi)LSTM over frames -> MLP head -> 1 logit.

Also: offline-friendly ImageNet weights, freezing of early blocks, and the checkpoint contract
(plain dict of tensors and values, ``torch.load(..., weights_only=True)``, atomic writes).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import nn

from deepfake_lib.core.recipe import DEFAULT_RECIPE
from deepfake_lib.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from deepfake_lib.models.backbones import (
    BACKBONES,
    FALLBACK_BACKBONE,
    PretrainedWeightsUnavailable,
    build_backbone,
    is_lite,
    lite_weights_package,
    load_imagenet_weights,
)
from deepfake_lib.models.frequency import FrequencyBranch

# EfficientNet-Lite was trained on inputs scaled to [-1, 1] (mean 127, std 128 in TF), not ImageNet mean/std.
LITE_INPUT_MEAN, LITE_INPUT_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


_RECIPE = DEFAULT_RECIPE.model  # the defaults live in the recipe


@dataclass
class ModelConfig:
    """Architecture and initialisation options; stored in every checkpoint.

    ``backbone``: ``efficientnet-b0`` .. ``b7`` (efficientnet-pytorch) or ``efficientnet-lite0`` .. ``lite4``
    (efficientnet-lite-pytorch; ReLU6, no squeeze-excitation, inputs rescaled inside the model).
    ``pretrained``: True (ImageNet weights, error if unavailable), False (random init) or "auto": ImageNet
    weights when available; else, loudly, ``FALLBACK_BACKBONE`` with the ImageNet weights its pip package
    ships; random initialisation (with a warning) only when no pretrained backbone is installed at all.
    ``trainable_blocks``: how many of the last MBConv blocks (plus the conv head) train; -1 = the whole
    backbone, 0 = backbone frozen. A random initialisation trains the whole backbone (frozen random features
    are useless). ``bn_momentum``: BatchNorm running-stat momentum of the trainable backbone layers (PyTorch's
    0.1, not efficientnet-pytorch's 0.01, so the statistics follow a small new dataset within a few epochs).
    ``frames``: the clip length T the model was trained on (1: images only); video scoring cuts clips of it.
    ``frequency_branch``: add the frequency stream (``frequency.FrequencyBranch``, a small CNN over each frame's
    log-DCT), whose ``frequency_features`` are joined to the backbone's per-frame features before the LSTM.
    """

    backbone: str = _RECIPE.backbone
    pretrained: bool | str = _RECIPE.pretrained
    weights_path: str | None = _RECIPE.weights_path
    image_size: int = _RECIPE.image_size
    trainable_blocks: int = _RECIPE.trainable_blocks
    lstm_hidden: int = 256
    lstm_layers: int = 1
    bidirectional: bool = True
    head_hidden: int = 128
    dropout: float = 0.3
    bn_momentum: float = 0.1
    channels_last: bool = True
    frames: int = 1
    frequency_branch: bool = _RECIPE.frequency_branch
    frequency_features: int = 128

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}")
        if self.pretrained not in (True, False, "auto"):
            raise ValueError(f"pretrained must be True, False or 'auto', got {self.pretrained!r}")
        if int(self.frames) < 1:
            raise ValueError(f"frames must be >= 1, got {self.frames!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def resolve_pretrained(cfg: ModelConfig) -> tuple[str, dict | None, str | None]:
    """Which backbone to build and with which ImageNet weights: ``(backbone, state_dict or None, source)``.

    Follows ``cfg.pretrained`` (see ``ModelConfig``); every fallback of ``"auto"`` warns, naming what was
    unavailable and what is used instead.
    """
    if not cfg.pretrained:
        return cfg.backbone, None, None
    try:
        state, source = load_imagenet_weights(cfg.backbone, cfg.weights_path)
        return cfg.backbone, state, source
    except PretrainedWeightsUnavailable as exc:
        if cfg.pretrained is True or cfg.weights_path is not None:  # a file the user named must work
            raise
        reason = exc
    if cfg.backbone != FALLBACK_BACKBONE:
        try:
            state, source = load_imagenet_weights(FALLBACK_BACKBONE)
        except PretrainedWeightsUnavailable:
            pass
        else:
            warnings.warn(
                f"pretrained='auto': ImageNet weights for {cfg.backbone} unavailable, so the backbone is "
                f"{FALLBACK_BACKBONE} with its ImageNet weights from {source}. Pass PRETRAINED=True to make this "
                f"an error, or provide the {cfg.backbone} weights. ({reason})",
                stacklevel=3,
            )
            return FALLBACK_BACKBONE, state, source
    warnings.warn(
        f"pretrained='auto': no ImageNet weights available (nor the {lite_weights_package(FALLBACK_BACKBONE)} "
        f"package), training the whole backbone from random initialisation (expect much lower accuracy). {reason}",
        stacklevel=3,
    )
    return cfg.backbone, None, None


class EfficientNetLSTM(nn.Module):
    """Input ``[B, T, 3, H, W]`` ImageNet-normalized frames; output ``[B]`` FAKE logits.

    An image is a sequence of length T = 1. ``features()`` gives the per-frame embedding ``[B, T, C]``.
    """

    def __init__(self, config: ModelConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        cfg = config or ModelConfig(**overrides)
        self.config = cfg
        self.requested_backbone = cfg.backbone
        self.head_only = False  # True: the whole backbone runs frozen (no gradients, BatchNorm in eval) for now
        backbone, state, self.weights_source = resolve_pretrained(cfg)
        cfg.backbone = backbone
        self.pretrained_loaded = state is not None
        if cfg.pretrained and state is None:
            cfg.trainable_blocks = -1
        self.backbone = build_backbone(cfg.backbone, cfg.image_size)
        if state is not None:
            self.backbone.load_state_dict(state, strict=True)
        self.backbone._fc = nn.Identity()  # the ImageNet classifier is not used
        for m in self.backbone.modules():  # native SiLU: faster than the Python swish, traceable, same values
            if type(getattr(m, "_swish", None)).__name__ in ("Swish", "MemoryEfficientSwish"):
                m._swish = nn.SiLU()
        for m in self.backbone.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = cfg.bn_momentum
        self.backbone._dropout = nn.Identity()
        # ImageNet-normalized input -> what the backbone was trained on (identity for the B family)
        scale, shift = input_affine(cfg.backbone)
        self.register_buffer("input_scale", scale, persistent=False)
        self.register_buffer("input_shift", shift, persistent=False)
        # temperature scaling (03 fits it, the checkpoint's "temperature" key stores it): logits / T
        self.register_buffer("temperature", torch.ones(()), persistent=False)
        n_feat = self.backbone._conv_head.out_channels
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.frequency = (
            FrequencyBranch(cfg.image_size, cfg.frequency_features, IMAGENET_MEAN, IMAGENET_STD)
            if cfg.frequency_branch
            else None
        )
        self.lstm = nn.LSTM(
            n_feat + (cfg.frequency_features if cfg.frequency_branch else 0),
            cfg.lstm_hidden,
            num_layers=cfg.lstm_layers,
            batch_first=True,
            bidirectional=cfg.bidirectional,
            dropout=cfg.dropout if cfg.lstm_layers > 1 else 0.0,
        )
        n_seq = cfg.lstm_hidden * (2 if cfg.bidirectional else 1)
        self.head = nn.Sequential(
            nn.Dropout(cfg.dropout),
            nn.Linear(n_seq, cfg.head_hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.head_hidden, 1),
        )
        self.set_trainable_blocks(cfg.trainable_blocks)
        if cfg.channels_last:
            self.backbone.to(memory_format=torch.channels_last)

    # ------------------------------------------------------------------ freezing
    @property
    def n_blocks(self) -> int:
        return len(self.backbone._blocks)

    def set_trainable_blocks(self, n: int) -> None:
        """Train the last ``n`` MBConv blocks and the conv head (-1: whole backbone, 0: none)."""
        n_blocks = self.n_blocks
        if n < -1 or n > n_blocks:
            raise ValueError(f"trainable_blocks must be in -1..{n_blocks}, got {n}")
        self.config.trainable_blocks = n
        self.frozen_blocks = 0 if n == -1 else n_blocks - n
        frozen_stem = n != -1
        for p in self.backbone.parameters():
            p.requires_grad = True
        if frozen_stem:
            for m in (self.backbone._conv_stem, self.backbone._bn0, *self.backbone._blocks[: self.frozen_blocks]):
                for p in m.parameters():
                    p.requires_grad = False
        if n == 0:
            for m in (self.backbone._conv_head, self.backbone._bn1):
                for p in m.parameters():
                    p.requires_grad = False
        self.train(self.training)

    def frozen_modules(self) -> list[nn.Module]:
        """Backbone modules whose parameters are frozen (kept in eval mode so BatchNorm stats stay fixed)."""
        bb = self.backbone
        if self.head_only:
            return [bb]
        if self.config.trainable_blocks == -1:
            return []
        mods: list[nn.Module] = [bb._conv_stem, bb._bn0, *bb._blocks[: self.frozen_blocks]]
        if self.config.trainable_blocks == 0:
            mods += [bb._conv_head, bb._bn1]
        return mods

    def train(self, mode: bool = True) -> EfficientNetLSTM:
        super().train(mode)
        if mode:
            for m in self.frozen_modules():
                m.eval()
        return self

    # ------------------------------------------------------------------ forward
    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, 3, H, W]`` -> feature map ``[N, C, h, w]`` of the conv head.

        The frozen stem and blocks run without autograd, so training does no backward work there.
        """
        bb = self.backbone
        if is_lite(self.config.backbone):
            x = x * self.input_scale + self.input_shift
        if self.config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        n_blocks = self.n_blocks
        rate = bb._global_params.drop_connect_rate or 0.0
        frozen = self.frozen_blocks if self.config.trainable_blocks != -1 else -1
        if self.head_only:
            frozen = n_blocks
        with torch.set_grad_enabled(torch.is_grad_enabled() and frozen == -1):
            x = bb._swish(bb._bn0(bb._conv_stem(x)))
        for idx, block in enumerate(bb._blocks):
            with torch.set_grad_enabled(torch.is_grad_enabled() and idx >= frozen):
                x = block(x, drop_connect_rate=rate * idx / n_blocks if rate else None)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.head_only):
            return bb._swish(bb._bn1(bb._conv_head(x)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, 3, H, W]`` -> per-frame features ``[B, T, C]``: the pooled backbone features, followed (with the
        frequency branch) by the frequency stream's ``frequency_features``."""
        if x.dim() != 5:
            raise ValueError(f"expected input [B, T, 3, H, W], got shape {tuple(x.shape)}")
        b, t = x.shape[:2]
        frames = x.flatten(0, 1)
        feats = self.pool(self.frame_features(frames)).flatten(1)
        if self.frequency is not None:
            feats = torch.cat([feats.float(), self.frequency(frames)], dim=1)
        return feats.view(b, t, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, 3, H, W]`` -> FAKE logits ``[B]``, divided by the calibration temperature (1 until calibrated)."""
        return self.raw_logits(x) / self.temperature

    def raw_logits(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, 3, H, W]`` -> FAKE logits ``[B]`` before the calibration temperature."""
        seq = self.features(x)
        _, (h_n, _) = self.lstm(seq.float())
        last = torch.cat([h_n[-2], h_n[-1]], dim=1) if self.config.bidirectional else h_n[-1]
        return self.head(last).squeeze(-1)

    def set_temperature(self, temperature: float) -> None:
        """Divide every logit by ``temperature`` (> 0) from now on; 1 undoes calibration."""
        if not (temperature > 0 and torch.isfinite(torch.tensor(float(temperature)))):
            raise ValueError(f"temperature must be a positive number, got {temperature}")
        self.temperature.fill_(float(temperature))


def input_affine(backbone: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale, shift)``, each ``[1, 3, 1, 1]``: ImageNet-normalized input * scale + shift = the backbone's input."""
    mean_in, std_in = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    mean_out, std_out = (
        (torch.tensor(LITE_INPUT_MEAN), torch.tensor(LITE_INPUT_STD)) if is_lite(backbone) else (mean_in, std_in)
    )
    scale = std_in / std_out
    shift = (mean_in - mean_out) / std_out
    return scale.view(1, 3, 1, 1), shift.view(1, 3, 1, 1)


def build_model(**kwargs: Any) -> EfficientNetLSTM:
    """``EfficientNetLSTM(ModelConfig(**kwargs))``."""
    return EfficientNetLSTM(ModelConfig(**kwargs))


def count_parameters(model: nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable}


def model_info(model: EfficientNetLSTM) -> dict[str, Any]:
    """What a run report says about the model: backbone (requested and used), ImageNet weights, sizes."""
    return {
        "backbone": model.config.backbone,
        "requested_backbone": model.requested_backbone,
        "pretrained": model.config.pretrained,
        "pretrained_loaded": model.pretrained_loaded,
        "weights_source": model.weights_source,
        "image_size": model.config.image_size,
        "trainable_blocks": model.config.trainable_blocks,
        "parameters": count_parameters(model),
    }
