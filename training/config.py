"""Training configuration: plain frozen dataclasses, filled from a recipe file and
``--set KEY=VALUE`` overrides (no registry, no detectron2-style indirection).

One :class:`StageConfig` describes one run of the one trainer; a recipe is an ordered list
of stages (e.g. closed-set pre-training, then a fine-tune that starts from it).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any, Literal

import yaml

from anomask.errors import AnomaskError
from anomask.training.criterion import MaskLossConfig
from anomask.training.per_pixel_loss import PerPixelLossConfig

Paste = Literal["none", "eam", "uno", "anomaly_mix", "noisy"]


@dataclass(frozen=True)
class SolverConfig:
    """Mask2Former's Cityscapes solver by default (AdamW, poly 0.9, full-model grad-norm
    clipping at 0.01, backbone LR x 0.1, weight decay 0.05)."""

    iterations: int = 90000
    batch_size: int = 16
    """Global batch: split evenly over the processes of a ``torchrun`` job."""
    lr: float = 1e-4
    weight_decay: float = 0.05
    backbone_lr_multiplier: float = 0.1
    poly_power: float = 0.9
    warmup_iterations: int = 0
    clip_grad_norm: float = 0.01
    """Max L2 norm of all gradients together; 0 disables clipping."""
    amp: bool = True
    """Mixed precision (float16 autocast + grad scaling) — used only on CUDA devices."""

    def __post_init__(self) -> None:
        for name in ("iterations", "batch_size"):
            if getattr(self, name) < 1:
                raise AnomaskError(f"solver.{name}: must be at least 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "synthetic"
    """``synthetic`` (the embedded default, generated once into the user cache), a
    Cityscapes-layout folder, ``coco:ROOT`` or ``streethazards:ROOT``."""
    train_split: str = "train"
    val_split: str = "val"
    anomaly_split: str | None = "anomaly_val"
    """Held-out split with anomaly ground truth (``ROOT/<name>``, Fishyscapes layout) for
    AP/FPR95 during validation, the best checkpoint and the TPR-95 % thresholds; a dataset
    without it uses its anomaly test split (``ROOT/anomaly``; StreetHazards: test; COCO:
    open-set val) and the metadata says so. ``None``: skip."""
    crop: tuple[int, int] = (512, 1024)
    """Training crop (height, width); multiples of 32."""
    scales: tuple[float, ...] = tuple(x / 10 for x in range(5, 21))
    """Random resize factors before the crop (Mask2Former: 0.5, 0.6, ..., 2.0)."""
    negatives: str | None = None
    """Negative pool: ``synthetic`` (the synthetic default's *seen* objects),
    ``ade:IMAGES:ANNOTATIONS``, ``coco:INSTANCES_JSON:IMAGES`` or ``boxes:IMAGES:XML_DIR``."""
    paste: Paste = "none"
    """Pasting transform of the data package: ``eam`` (labelled void;
    EAM (Grcić et al., 2023), §3.4), ``uno`` (labelled K; UNO (Delić et al., 2024), §4),
    ``anomaly_mix`` (void + outlier map; Mask2Anomaly (Rai et al., 2024), §4.3), ``noisy``
    (boxes at a random area share, outlier map; noisy negatives (Bevandić et al., 2022), §3.3)
    or ``none``."""
    paste_probability: float = 1.0
    """Chance that a training image gets pasted negatives."""
    paste_count: int = 3
    """Objects per image (``eam``/``uno``)."""
    paste_share: tuple[float, float] = (0.001, 0.1)
    """Area share of a pasted box (``noisy``; noisy negatives (Bevandić et al., 2022), §4.1: 0.1 %-10 %)."""
    open_set: str | None = None
    """Open-set split of the dataset (COCO: ``5``/``10``/``20``;
    Mask2Anomaly (Rai et al., 2024), §7.1): its classes are void in training and unknown
    (254, anomaly 1) in validation."""
    num_workers: int = 0


@dataclass(frozen=True)
class ValidationConfig:
    every: int = 5000
    """Validate every N iterations (and at the end); 0: only at the end."""
    max_images: int | None = None
    scale: float = 1.0
    """Images are resized by this factor for the network; predictions come back at the
    label resolution (the heads upsample the mask logits)."""
    score: str = "eam"
    """Anomaly score (a heads name) for AP/FPR95 and the TPR 95 % threshold."""


@dataclass(frozen=True)
class CheckpointConfig:
    every: int = 5000
    keep_last: int = 3
    best_metric: str = "miou"
    """Validation metric that picks ``best/``: ``miou`` or ``ap`` (higher is better) or
    ``fpr95`` (lower is better)."""


@dataclass(frozen=True)
class StageConfig:
    name: str = "train"
    source: str = ""
    """Where the settings come from (paper section, official config)."""
    init: Literal["none", "previous"] = "none"
    """``previous``: start from the previous stage's final weights (or ``--init``)."""
    convert_negative: bool = False
    """Turn a K+1 closed-set model into K+2 (UNO negative class) before training."""
    model_preset: str = "default"
    model: dict[str, Any] = field(default_factory=dict)
    """``ModelConfig`` overrides on top of ``model_preset``."""
    loss: MaskLossConfig = field(default_factory=MaskLossConfig)
    per_pixel_loss: PerPixelLossConfig = field(default_factory=PerPixelLossConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    data: DataConfig = field(default_factory=DataConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check/convert a YAML value against a dataclass field's annotation."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, where)
            except AnomaskError as error:
                errors.append(str(error))
        raise AnomaskError(errors[0])
    if origin is Literal:
        if value not in args:
            raise AnomaskError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise AnomaskError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], where) for v in value)
        if len(value) != len(args):
            raise AnomaskError(f"{where}: expected {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, where) for v, a in zip(value, args))
    if origin is dict:
        if not isinstance(value, dict):
            raise AnomaskError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if annotation is bool:
        if not isinstance(value, bool):
            raise AnomaskError(f"{where}: expected true/false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # 1e5 iterations
        if isinstance(value, bool) or not isinstance(value, int):
            raise AnomaskError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise AnomaskError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise AnomaskError(f"{where}: expected a string, got {value!r}")
        return value
    raise AnomaskError(f"{where}: unsupported setting type {annotation!r}")


def merge(config: Any, overrides: dict[str, Any], where: str = "config") -> Any:
    """A copy of dataclass ``config`` with the nested mapping ``overrides`` applied.

    Unknown keys are errors that list the valid ones; ``dict`` fields merge key by key.
    """
    if not isinstance(overrides, dict):
        raise AnomaskError(f"{where}: expected a mapping, got {overrides!r}")
    hints = typing.get_type_hints(type(config))
    valid = {f.name for f in fields(config)}
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        path = f"{where}.{key}"
        if key not in valid:
            raise AnomaskError(f"{path}: unknown setting; valid: {', '.join(sorted(valid))}")
        current = getattr(config, key)
        if is_dataclass(current):
            changes[key] = merge(current, value, path)
        elif isinstance(current, dict):
            changes[key] = {**current, **_coerce(value, hints[key], path)}
        else:
            changes[key] = _coerce(value, hints[key], path)
    return replace(config, **changes)


def deep_update(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Nested-mapping merge (``update`` wins); the inputs are not modified."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_update(out[key], value)
        else:
            out[key] = value
    return out


def dotted(key: str, value: Any) -> dict[str, Any]:
    """``("solver.lr", 1e-5)`` -> ``{"solver": {"lr": 1e-5}}``."""
    out: dict[str, Any] = {}
    node = out
    parts = key.split(".")
    if not all(parts):
        raise AnomaskError(f"bad setting name {key!r}")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


class _Loader(yaml.SafeLoader):
    """YAML with the numbers users write: ``1e-5``, ``2E-3``, ``1_000`` (YAML 1.1, which
    PyYAML implements, reads an exponent without a dot as a string; YAML 1.2 does not)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)?(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """Settings text (a recipe file, a ``--set`` value) as Python values; see :class:`_Loader`."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def parse_overrides(settings: list[str]) -> dict[str, dict[str, Any]]:
    """``["finetune:solver.lr=1e-5", "seed=3"]`` -> ``{"finetune": {...}, "*": {...}}``
    (``--set [STAGE:]KEY=VALUE``; values are YAML: numbers, true/false, lists)."""
    out: dict[str, dict[str, Any]] = {}
    for item in settings:
        if "=" not in item:
            raise AnomaskError(f"--set {item!r}: expected [STAGE:]KEY=VALUE")
        key, text = item.split("=", 1)
        stage, _, key = key.rpartition(":")
        try:
            value = load_yaml(text)
        except yaml.YAMLError as error:
            raise AnomaskError(f"--set {item!r}: cannot parse the value ({error})") from error
        out[stage or "*"] = deep_update(out.get(stage or "*", {}), dotted(key.strip(), value))
    return out
