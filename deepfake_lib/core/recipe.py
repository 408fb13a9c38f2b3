"""The recipe: one typed description of a run's model, data, training, evaluation and fine-tuning settings, with
named presets, saved as and loaded from YAML. It is the single source of every default: ``ModelConfig``,
``TrainConfig`` and ``FinetuneConfig`` take their defaults from ``DEFAULT_RECIPE``, the ``train`` command its
flags' defaults, the pipeline its ``--recipe``, the benchmarks their rows; the notebooks' parameters cells hold the
same values as literals (papermill needs literals), and a test fails when any of them disagrees.

    recipe = load_recipe("face-swap")            # a preset, or a YAML file (a partial one starts from a preset)
    recipe.notebook_parameters("02_train")       # {"IMAGE_SIZE": 128, "EPOCHS": 15, ...}
    save_recipe(recipe, "outputs/runs/x/recipe.yaml")
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from deepfake_lib.core import choices as ch

RECIPE_FILE = "recipe.yaml"  # in a run folder: the recipe the run was made with
MIN_IMAGE_SIZE = 32  # the backbone's total stride: a smaller input leaves its last feature map under one cell


@dataclass(frozen=True)
class ModelRecipe:
    """The detector: backbone, ImageNet weights (``"auto"``: offline falls back to Lite0's shipped weights), input
    size, trainable backbone blocks (-1: all) and the optional frequency stream."""

    backbone: str = "efficientnet-b0"
    pretrained: bool | str = "auto"
    weights_path: str | None = None
    image_size: int = 128
    trainable_blocks: int = -1
    frequency_branch: bool = False


@dataclass(frozen=True)
class DataRecipe:
    """What the model trains on: which fakes, how class imbalance is met, augmentation, group batches."""

    fakes: str = "labelled"
    balance: str = "oversample"
    augment: str = "basic"
    batch_groups: bool = False


@dataclass(frozen=True)
class TrainRecipe:
    """The optimisation: epochs, batch size per process, learning rates, schedule, early stopping, seed."""

    epochs: int = 15
    batch_size: int = 32
    lr: float = 3e-4
    backbone_lr: float | None = 1e-4
    weight_decay: float = 0.05
    head_warmup_epochs: int = 1
    scheduler: str = "cosine"
    warmup_epochs: float = 1.0
    ema_decay: float = 0.0
    label_smoothing: float = 0.0
    patience: int = 4
    monitor: str = "val_auc"
    seed: int = 0


@dataclass(frozen=True)
class EvaluateRecipe:
    """How 03 scores and decides: test-time augmentation, temperature calibration, the threshold rule."""

    tta: str = "hflip"
    calibrate: bool = True
    threshold_method: str = "eer"
    target_fpr: float = 0.01
    target_fake_recall: float = 0.9
    fixed_threshold: float = 0.5
    batch_size: int = 64


@dataclass(frozen=True)
class FinetuneRecipe:
    """04's hard-example fine-tuning: epochs, learning rate, batch size, replayed images per failure, patience, and
    its own weight decay and monitor (the original model counts as epoch 0 by its validation loss)."""

    epochs: int = 3
    lr: float = 1e-4
    batch_size: int = 16
    replay_ratio: float = 3.0
    patience: int = 2
    weight_decay: float = 1e-4
    monitor: str = "val_loss"


SECTIONS = {"model": ModelRecipe, "data": DataRecipe, "train": TrainRecipe, "evaluate": EvaluateRecipe,
            "finetune": FinetuneRecipe}  # fmt: skip
# Which notebook parameter holds which recipe value ("section.field"): the notebooks' parameters cells must hold
# exactly these values for the default recipe, and ``--recipe`` sets them.
NOTEBOOK_FIELDS: dict[str, dict[str, str]] = {
    "01_data_balance": {"IMAGE_SIZE": "model.image_size", "FAKES": "data.fakes", "SEED": "train.seed"},
    "02_train": {
        "IMAGE_SIZE": "model.image_size", "EPOCHS": "train.epochs", "BATCH_SIZE": "train.batch_size",
        "LR": "train.lr", "BACKBONE_LR": "train.backbone_lr", "WEIGHT_DECAY": "train.weight_decay",
        "BACKBONE": "model.backbone", "PRETRAINED": "model.pretrained", "WEIGHTS_PATH": "model.weights_path",
        "TRAINABLE_BLOCKS": "model.trainable_blocks", "HEAD_WARMUP_EPOCHS": "train.head_warmup_epochs",
        "AUGMENT": "data.augment", "SCHEDULER": "train.scheduler", "WARMUP_EPOCHS": "train.warmup_epochs",
        "EMA_DECAY": "train.ema_decay", "LABEL_SMOOTHING": "train.label_smoothing",
        "BATCH_GROUPS": "data.batch_groups", "FREQUENCY_BRANCH": "model.frequency_branch", "FAKES": "data.fakes",
        "BALANCE": "data.balance", "PATIENCE": "train.patience", "MONITOR": "train.monitor", "SEED": "train.seed",
    },
    "03_evaluate": {
        "BATCH_SIZE": "evaluate.batch_size", "TTA": "evaluate.tta", "CALIBRATE": "evaluate.calibrate",
        "THRESHOLD_METHOD": "evaluate.threshold_method", "TARGET_FPR": "evaluate.target_fpr",
        "TARGET_FAKE_RECALL": "evaluate.target_fake_recall", "FIXED_THRESHOLD": "evaluate.fixed_threshold",
        "SEED": "train.seed",
    },
    "04_finetune": {
        "EPOCHS": "finetune.epochs", "LR": "finetune.lr", "BATCH_SIZE": "finetune.batch_size",
        "REPLAY_RATIO": "finetune.replay_ratio", "PATIENCE": "finetune.patience", "SEED": "train.seed",
    },
}  # fmt: skip
_CHOICES = {"model.backbone": ch.BACKBONES, "model.pretrained": ch.AUTO_OR_BOOL, "data.fakes": ch.FAKES_MODES,
            "data.balance": ch.BALANCES, "data.augment": ch.AUGMENTATIONS, "train.scheduler": ch.SCHEDULERS,
            "train.monitor": ch.MONITORS, "finetune.monitor": ch.MONITORS, "evaluate.tta": ch.TTA_MODES,
            "evaluate.threshold_method": ch.THRESHOLD_METHODS}  # fmt: skip


# each setting's annotation ("int", "float | None", ...), by "section.field"
_KINDS = {f"{s}.{f.name}": str(f.type) for s, cls in SECTIONS.items() for f in fields(cls)}


class RecipeError(ValueError):
    """A recipe that cannot be used: the message names the file or preset and the value."""


@dataclass(frozen=True)
class Recipe:
    """A run's settings, section by section (see the section classes); ``name`` says where it came from."""

    model: ModelRecipe = field(default_factory=ModelRecipe)
    data: DataRecipe = field(default_factory=DataRecipe)
    train: TrainRecipe = field(default_factory=TrainRecipe)
    evaluate: EvaluateRecipe = field(default_factory=EvaluateRecipe)
    finetune: FinetuneRecipe = field(default_factory=FinetuneRecipe)
    name: str = "defaults"

    def __post_init__(self) -> None:
        problem = recipe_problem(self)
        if problem:
            raise RecipeError(f"recipe {self.name!r}: {problem}")

    def get(self, dotted: str) -> Any:
        """``recipe.get("train.lr")``."""
        section, name = dotted.split(".")
        return getattr(getattr(self, section), name)

    def with_values(self, values: dict[str, Any], name: str | None = None) -> Recipe:
        """A copy with ``{"section.field": value}`` changed (``RecipeError`` for an unknown key)."""
        sections = {s: {} for s in SECTIONS}
        for dotted, value in values.items():
            section, _, key = dotted.partition(".")
            if section not in SECTIONS or key not in {f.name for f in fields(SECTIONS[section])}:
                raise RecipeError(f"recipe {name or self.name!r}: unknown setting {dotted!r}")
            sections[section][key] = value
        sections = {s: {k: _coerce(_KINDS[f"{s}.{k}"], v) for k, v in part.items()} for s, part in sections.items()}
        changed = {s: replace(getattr(self, s), **v) for s, v in sections.items() if v}
        return replace(self, **changed, name=name or self.name)

    def notebook_parameters(self, notebook: str) -> dict[str, Any]:
        """The parameters of ``notebook`` (e.g. ``"02_train"``) that this recipe sets."""
        return {param: self.get(dotted) for param, dotted in NOTEBOOK_FIELDS.get(notebook, {}).items()}

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **{s: asdict(getattr(self, s)) for s in SECTIONS}}

    def differences(self, other: Recipe) -> dict[str, tuple[Any, Any]]:
        """``{"section.field": (mine, other's)}`` for every value that differs."""
        mine, theirs = flat_values(self), flat_values(other)
        return {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}


def _coerce(kind: str, value: Any) -> Any:
    """A float field's value as a float: YAML 1.1 reads ``1e-3`` as text, and ``3`` is an int."""
    if "float" in kind and not isinstance(value, bool):
        if isinstance(value, int):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return value
    return value


def _type_problem(kind: str, value: Any) -> bool:
    """True when ``value`` does not fit the annotation ``kind`` (``int``, ``float | None``, ``bool | str`` ...)."""
    allowed = {"int": (int,), "float": (float,), "bool": (bool,), "str": (str,), "None": (type(None),)}
    types = tuple(t for part in kind.split("|") for t in allowed.get(part.strip(), ()))
    if isinstance(value, bool) and bool not in types:
        return True
    return not isinstance(value, types)


def flat_values(recipe: Recipe) -> dict[str, Any]:
    """``{"section.field": value}`` of every setting."""
    return {f"{s}.{f.name}": getattr(getattr(recipe, s), f.name) for s, cls in SECTIONS.items() for f in fields(cls)}


def recipe_problem(recipe: Recipe) -> str | None:
    """What makes a recipe's values unusable (a choice outside its list, a number that is not finite or out of
    range), or None."""
    for dotted, value in flat_values(recipe).items():
        if _type_problem(_KINDS[dotted], value):
            return f"{dotted} {value!r} is not of type {_KINDS[dotted]}"
        if dotted in _CHOICES and not ch.is_choice(value, _CHOICES[dotted]):
            return f"{dotted} {value!r} is not one of {', '.join(map(repr, _CHOICES[dotted]))}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"{dotted} {value!r} is not a finite number"
    for dotted in ("train.epochs", "train.batch_size", "finetune.epochs", "finetune.batch_size",
                   "evaluate.batch_size"):  # fmt: skip
        value = recipe.get(dotted)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            return f"{dotted} must be a whole number >= 1, got {value!r}"
    if recipe.model.image_size < MIN_IMAGE_SIZE:  # an int by its type check above
        return (f"model.image_size must be a whole number >= {MIN_IMAGE_SIZE} (the backbone's stride), "
                f"got {recipe.model.image_size!r}")  # fmt: skip
    return None


DEFAULT_RECIPE = Recipe()
PRESETS: dict[str, Recipe] = {
    "defaults": DEFAULT_RECIPE,
    # The face-swap recipe: strong augmentation, warm-up then cosine, an EMA of the weights (docs/training.md).
    # Measured on two split seeds it did not beat the defaults on DFDC faces; it stays a named choice.
    "face-swap": DEFAULT_RECIPE.with_values(
        {
            "data.augment": "strong",
            "train.scheduler": "warmup_cosine",
            "train.warmup_epochs": 1.0,
            "train.ema_decay": 0.999,
        },
        name="face-swap",
    ),  # fmt: skip
    # The demo's 240 training images are learnt in a few epochs; 12 epochs keep `make demo` short.
    # (so is 04's fine-tuning, which ran on the same EPOCHS and PATIENCE before recipes were per notebook).
    "demo": DEFAULT_RECIPE.with_values(
        {"train.epochs": 12, "finetune.epochs": 12, "finetune.patience": 4}, name="demo"
    ),
}


def load_recipe(source: str | os.PathLike[str] | Recipe | None = None) -> Recipe:
    """A preset by name (``PRESETS``), a YAML file (``save_recipe``'s form; a file may give only some sections
    and fields, and ``base: <preset>`` to start from, default ``defaults``), or a ``Recipe`` as it is."""
    if source is None:
        return DEFAULT_RECIPE
    if isinstance(source, Recipe):
        return source
    if str(source) in PRESETS:
        return PRESETS[str(source)]
    path = Path(source).expanduser()
    if not path.is_file():
        raise RecipeError(
            f"recipe {str(source)!r}: neither a preset ({', '.join(PRESETS)}) nor a file (not found: {path})"
        )
    from deepfake_lib.core.strict_yaml import StrictYamlError, load_strict

    try:
        raw, _ = load_strict(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, StrictYamlError) as exc:
        raise RecipeError(f"recipe file {path}: {exc}") from None
    return recipe_from_dict(raw or {}, str(path))


def recipe_from_dict(raw: Any, where: str = "<recipe>") -> Recipe:
    """A recipe from ``to_dict``'s form (partial allowed; ``base`` names the preset it starts from)."""
    if not isinstance(raw, dict):
        raise RecipeError(f"recipe {where}: expected a mapping of sections, found {type(raw).__name__}")
    base = raw.get("base", "defaults")
    if base not in PRESETS:
        raise RecipeError(f"recipe {where}: base {base!r} is not a preset ({', '.join(PRESETS)})")
    unknown = sorted(set(raw) - {*SECTIONS, "name", "base"})
    if unknown:
        raise RecipeError(f"recipe {where}: unknown section(s) {unknown}; sections are {', '.join(SECTIONS)}")
    values = {}
    for section in SECTIONS:
        part = raw.get(section) or {}
        if not isinstance(part, dict):
            raise RecipeError(f"recipe {where}: section {section!r} must be a mapping")
        values |= {f"{section}.{k}": v for k, v in part.items()}
    try:
        return PRESETS[base].with_values(values, name=str(raw.get("name") or where))
    except (RecipeError, TypeError) as exc:
        raise RecipeError(f"recipe {where}: {str(exc).split(': ', 1)[-1]}") from None


def save_recipe(recipe: Recipe, path: str | os.PathLike[str]) -> Path:
    """Write ``recipe`` as YAML (every section and field), atomically."""
    import yaml

    from deepfake_lib.core.runs import atomic_write

    text = yaml.safe_dump(recipe.to_dict(), sort_keys=False)
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def recipe_from_parameters(per_notebook: dict[str, dict[str, Any]], base: Recipe | None = None) -> Recipe:
    """The recipe that notebooks ran with: ``base`` (default: the defaults) with each recipe parameter a notebook
    was given (``{"02_train": {"EPOCHS": 20, ...}, "04_finetune": {...}}``; the notebook's stem or file name)."""
    base = base or DEFAULT_RECIPE
    values: dict[str, Any] = {}
    for notebook, params in per_notebook.items():
        mapping = NOTEBOOK_FIELDS.get(Path(notebook).stem, {})
        values |= {mapping[name]: _coerce(_KINDS[mapping[name]], v) for name, v in params.items() if name in mapping}
    values = {k: v for k, v in values.items() if base.get(k) != v or type(base.get(k)) is not type(v)}
    return base.with_values(values, name=f"{base.name} (changed)" if values else base.name)


def notebook_recipe(notebook: str, namespace: Mapping[str, Any], base: Recipe | None = None) -> Recipe:
    """The recipe a notebook's parameters describe: ``base`` (default: the defaults) with each of ``notebook``'s
    recipe parameters (``NOTEBOOK_FIELDS``) that ``namespace`` holds; in a notebook, ``globals()`` after its
    parameters cell."""
    mapping = NOTEBOOK_FIELDS[Path(notebook).stem]
    return recipe_from_parameters({notebook: {name: namespace[name] for name in mapping if name in namespace}}, base)


def run_recipe(run_dir: str | os.PathLike[str]) -> Recipe:
    """The recipe a run folder holds (its ``recipe.yaml``), or the defaults when it holds none."""
    path = Path(run_dir) / RECIPE_FILE
    return load_recipe(path) if path.is_file() else DEFAULT_RECIPE
