"""Batched prediction over a DataLoader of ``collate_skip_bad`` batches."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from deepfake_lib.core.device import autocast


@dataclass
class Predictions:
    """Per-image FAKE probabilities with labels and paths, plus files that failed to load."""

    probs: np.ndarray  # [N] float in [0, 1]
    labels: np.ndarray  # [N] int (REAL = 0, FAKE = 1)
    paths: list[str]
    logits: np.ndarray  # [N]
    bad: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s parameters."""
    return next(model.parameters()).device


@torch.inference_mode()
def predict_loader(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    device: torch.device,
    amp: bool = True,
    desc: str = "predict",
    progress: bool = True,
) -> Predictions:
    """Run ``model`` in eval mode over ``loader``; returns ``Predictions`` in loader order."""
    was_training = model.training
    model.eval()
    logits, labels, paths, bad = [], [], [], []
    for batch in tqdm(loader, desc=desc, leave=False, disable=not progress):
        bad += batch["bad"]
        if batch["x"] is None:
            continue
        with autocast(device, amp):
            out = model(batch["x"].to(device, non_blocking=True))
        logits.append(out.float().cpu())
        labels.append(batch["y"])
        paths += batch["path"]
    model.train(was_training)
    lg = torch.cat(logits).numpy() if logits else np.zeros(0, dtype=np.float32)
    lb = torch.cat(labels).numpy() if labels else np.zeros(0, dtype=np.int64)
    return Predictions(probs=1.0 / (1.0 + np.exp(-lg.astype(np.float64))), labels=lb, paths=paths, logits=lg, bad=bad)
