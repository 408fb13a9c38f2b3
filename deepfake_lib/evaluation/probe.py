"""Linear-probe baseline: logistic regression on frozen ImageNet features of the same backbone.

A trained detector should beat it clearly; if it does not, the fine-tuning recipe adds nothing over the
ImageNet features it started from.

python -m deepfake_lib.cli.probe --data DATA_DIR [--backbone efficientnet-b0] [--image-size 224] [--out probe.json]
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from deepfake_lib.core.device import autocast, resolve_device
from deepfake_lib.core.runs import resolve_path
from deepfake_lib.data.datasets import DeepfakeDataset, make_loader
from deepfake_lib.data.scan import Sample, scan_split
from deepfake_lib.data.transforms import build_transform
from deepfake_lib.evaluation.baselines import score_baseline
from deepfake_lib.evaluation.inference import model_device
from deepfake_lib.models.detector import EfficientNetLSTM, ModelConfig, model_info


@dataclass
class Features:
    """Pooled frozen backbone features ``x [N, C]`` with ``labels [N]`` and ``paths``; unreadable files in ``bad``."""

    x: np.ndarray
    labels: np.ndarray
    paths: list[str]
    bad: list[tuple[str, str]]


@torch.inference_mode()
def extract_features(
    model: EfficientNetLSTM, samples: list[Sample], batch_size: int = 64, progress: bool = True, desc: str = "features"
) -> Features:
    """Globally pooled backbone features (``model.features``, the LSTM's input) with the eval transform; a clip's
    features are the mean over its frames."""
    model.eval()
    device = model_device(model)
    loader = make_loader(DeepfakeDataset(samples, build_transform(model.config.image_size, train=False)), batch_size)
    xs, ys, paths, bad = [], [], [], []
    for batch in tqdm(loader, desc=desc, leave=False, disable=not progress):
        bad += batch["bad"]
        if batch["x"] is None:
            continue
        with autocast(device, True):
            feats = model.features(batch["x"].to(device)).mean(dim=1)  # [B, T, C] -> [B, C] (a clip: frame mean)
        xs.append(feats.float().cpu().numpy())
        ys.append(batch["y"].numpy())
        paths += batch["path"]
    n_feat = model.backbone._conv_head.out_channels
    x = np.concatenate(xs) if xs else np.zeros((0, n_feat), np.float32)
    y = np.concatenate(ys) if ys else np.zeros(0, np.int64)
    return Features(x, y, paths, bad)


def linear_probe(
    data_dir: str | os.PathLike[str],
    backbone: str = "efficientnet-b0",
    pretrained: bool | str = "auto",
    weights_path: str | None = None,
    image_size: int = 224,
    train_split: str = "train",
    threshold_split: str = "val",
    report_split: str = "test",
    threshold_method: str = "eer",
    batch_size: int = 64,
    device: str = "auto",
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Fit the probe on ``train_split``, choose the threshold on ``threshold_split`` (as 03 does) and report
    ``full_metrics`` on ``report_split``. The backbone is resolved exactly as for training (``pretrained="auto"``
    falls back the same way), so the probe sees the features the detector starts from."""
    torch.manual_seed(seed)
    model = EfficientNetLSTM(
        ModelConfig(
            backbone=backbone, pretrained=pretrained, weights_path=weights_path, image_size=image_size,
            trainable_blocks=0,
        )
    ).to(resolve_device(device))  # fmt: skip
    root = resolve_path(data_dir)
    feats = {
        split: extract_features(
            model, scan_split(root, split, validate=False).samples, batch_size, progress, desc=f"features {split}"
        )
        for split in dict.fromkeys([train_split, threshold_split, report_split])
    }
    scores = score_baseline(
        {split: (f.x, f.labels) for split, f in feats.items()},
        train_split, threshold_split, report_split, threshold_method, seed,
    )  # fmt: skip
    return {"model": model_info(model), **scores.record, "skipped": {split: len(f.bad) for split, f in feats.items()}}


def probe_like(model: EfficientNetLSTM, data_dir: str | os.PathLike[str], **kwargs: Any) -> dict[str, Any]:
    """``linear_probe`` on the ImageNet features a trained ``model`` started from (same backbone, same weights
    file, same image size); keyword arguments as ``linear_probe``."""
    source = model.weights_source
    local = source if source and Path(source).is_file() else None
    return linear_probe(
        data_dir, backbone=model.config.backbone, pretrained="auto", weights_path=local,
        image_size=model.config.image_size, **kwargs,
    )  # fmt: skip
