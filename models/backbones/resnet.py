"""ResNet-18/50 (He et al., 2016) in torchvision's exact module and key layout.

The backbone *is* a ``torchvision.models.resnet.ResNet`` without its classifier, so an
ImageNet or Barlow Twins (Zbontar et al., 2021) ResNet-50 state dict in torchvision format
loads as it is (after dropping the classifier ``fc.*``). Stride sits in the 3x3 convolution
(ResNet v1.5, torchvision's and Mask2Former's ``STRIDE_IN_1X1: False``).
"""

from __future__ import annotations

import torch
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from anomask.models.backbones.base import Backbone

_SPECS = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
}


class ResNetBackbone(ResNet, Backbone):
    """torchvision ResNet minus ``avgpool``/``fc``; returns the outputs of ``layer1..layer4``."""

    def __init__(self, name: str) -> None:
        block, layers = _SPECS[name]
        super().__init__(block, layers)
        del self.avgpool, self.fc
        width = 64 * block.expansion
        self.channels = (width, width * 2, width * 4, width * 8)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [c2, c3, c4, c5]
