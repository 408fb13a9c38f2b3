"""The checkpoint format: tensors and plain values only (loadable with weights_only=True), saving, loading, checking."""

from __future__ import annotations

import hashlib
import math
import os
import pickle
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from deepfake_lib import CLASS_NAMES, __version__
from deepfake_lib.core.files import weights_file_problem
from deepfake_lib.core.runs import atomic_write
from deepfake_lib.models.detector import EfficientNetLSTM, ModelConfig
from deepfake_lib.models.tta import TTA_MODES, check_tta

CHECKPOINT_FORMAT = "deepfake-workbench/efficientnet-lstm"


CHECKPOINT_VERSION = 1


# Checkpoint keys besides the model that describe its input (e.g. the face-crop settings of the training
# data); every checkpoint derived from another carries them over.
CARRIED_KEYS = ("faces", "fakes", "clips")  # kept by fine-tuning: how the training data was cropped, faked, cut


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: the message names the file and the reason."""


# --------------------------------------------------------------------------- checkpoints
def weights_id(state_dict: dict[str, torch.Tensor]) -> str:
    """A fingerprint of the weights (16 hex digits of a SHA-256 over names, dtypes, shapes and bytes): the same
    weights always give the same id, so artefacts made from a checkpoint can say which one."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()[:16]


def checkpoint_weights_id(ckpt: dict[str, Any]) -> str:
    """The checkpoint's stored ``weights_id`` (computed from its state dict for files written before ids)."""
    return str(ckpt.get("weights_id") or weights_id(ckpt["state_dict"]))


def model_checkpoint(
    model: EfficientNetLSTM,
    threshold: float = 0.5,
    metrics: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The checkpoint dict: tensors and plain Python values only."""
    config = asdict(model.config)
    config["pretrained_loaded"] = model.pretrained_loaded
    config["weights_source"] = model.weights_source
    config["requested_backbone"] = model.requested_backbone
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "library_version": __version__,
        "config": config,
        "state_dict": state,
        "weights_id": weights_id(state),
        "class_names": list(CLASS_NAMES),
        "threshold": float(threshold),
        "temperature": float(model.temperature),
        "metrics": dict(metrics or {}),
        **extra,
    }


def save_checkpoint(ckpt: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a checkpoint dict atomically (temp file + rename)."""
    return atomic_write(path, lambda tmp: torch.save(ckpt, tmp))


def save_model(model: EfficientNetLSTM, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """``save_checkpoint(model_checkpoint(model, **kwargs), path)``."""
    return save_checkpoint(model_checkpoint(model, **kwargs), path)


def checkpoint_tta(ckpt: dict[str, Any], path: str | os.PathLike[str] = "<checkpoint>") -> str:
    """The test-time augmentation a checkpoint scores with (``"none"`` when it stores none): its threshold and
    temperature were chosen on scores made this way, so every scorer of the checkpoint uses it."""
    tta = ckpt.get("tta") or "none"
    try:
        return check_tta(tta)
    except ValueError:
        raise CheckpointError(
            f"{path}: unknown test-time augmentation tta={tta!r} (expected one of {', '.join(TTA_MODES)})"
        ) from None


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and validate a checkpoint with ``weights_only=True`` (no code in a file is ever run)."""
    p = Path(path)
    problem = weights_file_problem(p, "checkpoint")
    if problem:
        raise CheckpointError(f"{p}: {problem}")
    if p.suffix.lower() == ".onnx":
        raise CheckpointError(
            f"{p}: an ONNX model, not a workbench checkpoint (.pth); score it with predict --runtime onnx"
        )
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        globals_ = [ln.strip() for ln in str(exc).splitlines() if "GLOBAL" in ln]
        if not globals_:  # the weights-only unpickler choked on bytes that are no pickle at all
            raise CheckpointError(f"{p}: corrupt or truncated checkpoint (not a readable torch file)") from None
        raise CheckpointError(
            f"{p}: refused: the file holds Python objects other than tensors and plain values, "
            f"which could run code when loaded ({globals_[0]}). Only load checkpoints written by this workbench."
        ) from None
    except Exception as exc:  # garbage fails the unpickler in many ways: EOFError, IndexError, BadZipFile...
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{p}: corrupt or truncated checkpoint ({msg})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        keys = sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(
            f"{p}: not a deepfake-workbench EfficientNetLSTM checkpoint (format={ckpt.get('format') if isinstance(ckpt, dict) else None!r}, "
            f"contents: {keys})"
        )
    if ckpt.get("format_version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(f"{p}: checkpoint format v{ckpt['format_version']} is newer than this library supports")
    checkpoint_tta(ckpt, p)  # a wrong value fails here, naming the file, not later in a scorer
    problem = checkpoint_value_problem(ckpt)
    if problem:
        fix = (
            "retrain, or use another checkpoint"
            if problem.startswith(("weights", "state_dict", "config"))
            else ("evaluate the model again (notebook 03) to store a new threshold and temperature")
        )
        raise CheckpointError(f"{p}: {problem}; {fix}")
    return ckpt


def _number(value: Any) -> float | None:
    """``value`` as a float when it is a real number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def checkpoint_value_problem(ckpt: dict[str, Any]) -> str | None:
    """What makes a loaded checkpoint's values meaningless, or None: thresholds outside [0, 1] (every image would
    get one decision), a temperature that is not a finite number > 0, weights that are not finite (every score
    NaN), a state dict or config that is not a mapping."""
    if not isinstance(ckpt.get("config"), dict) or not isinstance(ckpt.get("state_dict"), dict):
        return "config and state_dict must be mappings"
    thresholds = {"threshold": ckpt.get("threshold", 0.5), "video_threshold": ckpt.get("video_threshold", 0.5)}
    levels = ckpt.get("video_thresholds") or {}
    thresholds |= {f"video_thresholds[{k!r}]": v for k, v in (levels.items() if isinstance(levels, dict) else [])}
    for name, value in thresholds.items():
        number = _number(value)
        if number is None or not 0.0 <= number <= 1.0:
            return f"stored {name} {value!r} is not a probability in [0, 1]"
    temperature = _number(ckpt.get("temperature", 1.0))
    if temperature is None or not (math.isfinite(temperature) and temperature > 0):
        return f"stored temperature {ckpt.get('temperature')!r} is not a finite number > 0"
    for name, tensor in ckpt["state_dict"].items():
        if not isinstance(tensor, torch.Tensor):
            return f"state_dict entry {name!r} is not a tensor"
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return f"weights {name!r} hold NaN or infinite values"
    return None


def model_from_checkpoint(
    ckpt: dict[str, Any], path: str | os.PathLike[str] = "<checkpoint>", image_size: int | None = None
) -> EfficientNetLSTM:
    """Rebuild the model from a loaded checkpoint dict (no weight download: ``pretrained=False``)."""
    cfg = dict(ckpt["config"])
    if image_size is not None and cfg.get("image_size") != image_size:
        raise CheckpointError(
            f"{path}: trained at image size {cfg.get('image_size')}, but {image_size} was requested; "
            f"use IMAGE_SIZE={cfg.get('image_size')} or retrain"
        )
    cfg.update(pretrained=False, weights_path=None)
    try:
        model = EfficientNetLSTM(ModelConfig.from_dict(cfg))
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except (RuntimeError, ValueError, TypeError, KeyError) as exc:
        msg = str(exc).strip().splitlines()[0]
        raise CheckpointError(
            f"{path}: weights do not fit the EfficientNetLSTM architecture in its config ({msg})"
        ) from None
    model.pretrained_loaded = bool(ckpt["config"].get("pretrained_loaded", False))
    model.weights_source = ckpt["config"].get("weights_source")
    model.requested_backbone = ckpt["config"].get("requested_backbone", model.config.backbone)
    try:
        model.set_temperature(float(ckpt.get("temperature", 1.0)))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: unusable calibration temperature ({exc})") from None
    return model


def load_model(
    path: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    image_size: int | None = None,
) -> tuple[EfficientNetLSTM, dict[str, Any]]:
    """Load a checkpoint file -> (model in eval mode on ``device``, checkpoint dict)."""
    ckpt = load_checkpoint(path)
    model = model_from_checkpoint(ckpt, path, image_size=image_size)
    return model.to(device).eval(), ckpt
