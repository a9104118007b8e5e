"""Backbones with one API: ``backbone(images) -> [C2, C3, C4, C5]`` at strides 4/8/16/32,
``backbone.channels`` per stage."""

from __future__ import annotations

from anomask.errors import AnomaskError
from anomask.models.backbones.base import FEATURE_STRIDES, Backbone
from anomask.models.backbones.efficientnet import EfficientNetLiteBackbone
from anomask.models.backbones.resnet import ResNetBackbone
from anomask.models.backbones.swin import SWIN_SPECS, SwinBackbone

BACKBONES = ("resnet18", "resnet50", "efficientnet_lite0", *SWIN_SPECS)


def build_backbone(name: str, window_size: int = 7) -> Backbone:
    """``window_size`` applies to Swin only (7 for the ImageNet-224 weights, 12 for 384)."""
    if name.startswith("resnet") and name in BACKBONES:
        return ResNetBackbone(name)
    if name == "efficientnet_lite0":
        return EfficientNetLiteBackbone()
    if name in SWIN_SPECS:
        return SwinBackbone(name, window_size)
    raise AnomaskError(f"unknown backbone {name!r}; valid: {', '.join(BACKBONES)}")


__all__ = [
    "BACKBONES",
    "FEATURE_STRIDES",
    "Backbone",
    "EfficientNetLiteBackbone",
    "ResNetBackbone",
    "SwinBackbone",
    "build_backbone",
]
