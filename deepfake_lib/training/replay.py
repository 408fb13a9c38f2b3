"""The fine-tuning set: the failures plus a replay sample of images the model already classifies correctly."""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch import nn

from deepfake_lib import CLASS_NAMES
from deepfake_lib.core.runs import resolve_path
from deepfake_lib.data.scan import Sample, scan_split
from deepfake_lib.evaluation.evaluate import predict_samples
from deepfake_lib.training.failures import FailureSet, check_failures_source

if TYPE_CHECKING:
    from deepfake_lib.training.finetuning import FinetuneConfig


@dataclass
class FinetuneSet:
    failures: list[Sample]
    replay: list[Sample]
    replay_split: str
    wanted_replay: int = 0

    @property
    def samples(self) -> list[Sample]:
        return self.failures + self.replay

    def summary(self) -> dict[str, Any]:
        def counts(samples: list[Sample]) -> dict[str, int]:
            return {name: sum(s.label == i for s in samples) for i, name in enumerate(CLASS_NAMES)}

        return {
            "failures": counts(self.failures),
            "replay": counts(self.replay),
            "n_failures": len(self.failures),
            "n_replay": len(self.replay),
            "wanted_replay": self.wanted_replay,
            "replay_split": self.replay_split,
        }


def select_replay(
    model: nn.Module,
    pool: Sequence[Sample],
    n: int,
    threshold: float,
    exclude: set[str] | None = None,
    seed: int = 0,
    **predict_kwargs: Any,
) -> list[Sample]:
    """A random sample of ``n`` images from ``pool`` that ``model`` classifies correctly at ``threshold``.

    Half REAL and half FAKE where possible (the other class fills up a shortfall). Candidates are checked
    in small random chunks, so only about ``2 n`` images are predicted, not the whole pool.
    """
    exclude = exclude or set()
    rng = random.Random(seed)
    queues: dict[int, list[Sample]] = {}
    for label in range(len(CLASS_NAMES)):
        queues[label] = [s for s in pool if s.label == label and str(s.path) not in exclude]
        rng.shuffle(queues[label])
    chosen: dict[int, list[Sample]] = {label: [] for label in queues}

    def gather(label: int, want: int) -> None:
        while len(chosen[label]) < want and queues[label]:
            k = max(2 * (want - len(chosen[label])), 16)
            chunk, queues[label] = queues[label][:k], queues[label][k:]
            preds = predict_samples(model, chunk, progress=False, **predict_kwargs)
            ok = {
                path for path, y, p in zip(preds.paths, preds.labels, preds.probs, strict=True) if (p >= threshold) == y
            }
            chosen[label] += [s for s in chunk if str(s.path) in ok][: want - len(chosen[label])]

    half = n // 2
    gather(1, half)
    gather(0, n - len(chosen[1]))
    gather(1, n - len(chosen[0]))
    return chosen[0] + chosen[1]


def build_finetune_set(
    model: nn.Module,
    failures: FailureSet,
    data_dir: str | os.PathLike[str],
    config: FinetuneConfig,
    threshold: float | None = None,
    batch_size: int = 64,
    tta: str = "none",
) -> FinetuneSet:
    """The failures plus ``round(replay_ratio * n_failures)`` correctly classified ``replay_split`` images.

    ``tta``: the test-time augmentation the replay candidates are scored with; pass the checkpoint's (``tta``),
    which 03 mined the failures and chose the threshold with.

    Raises ``StaleFailuresError`` when the failures were mined from another model (``check_failures_source``).
    """
    check_failures_source(failures, model)
    fail = failures.samples
    n_replay = round(config.replay_ratio * len(fail))
    replay: list[Sample] = []
    if n_replay and fail:
        pool = scan_split(resolve_path(data_dir), config.replay_split, validate=False).samples
        thr = failures.threshold if threshold is None else threshold
        exclude = {str(s.path) for s in fail}
        replay = select_replay(
            model, pool, n_replay, thr, exclude, config.seed, batch_size=batch_size,
            num_workers=config.num_workers, amp=config.amp, tta=tta,
        )  # fmt: skip
    return FinetuneSet(fail, replay, config.replay_split, n_replay)
