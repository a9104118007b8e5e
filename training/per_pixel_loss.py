"""Loss of the per-pixel two-head baseline of noisy negatives (Bevandić et al., 2022):
§3.2, eq. 1, with the loss weights of §4.4.

``L_cls``: K-way cross-entropy of the semantic head on inlier pixels only (``o = 0``;
outlier and ignore pixels are excluded, so negatives never train the classifier).
``L_od``: binary cross-entropy of the outlier head against ``o`` (0 inlier, 1 outlier,
255 ignore). The paper trains with ``0.6 L_cls + 0.6 * 0.2 L_od + 0.4 L_aux``; the
auxiliary term belongs to its DenseNet ladder decoder, which anomask's shared pixel
decoder has no counterpart for, so it is dropped and the two remaining weights kept.
Both terms are means over their valid pixels (the paper writes sums; a mean keeps the
learning rate independent of the crop size). Predictions at 1/4 resolution are upsampled
bilinearly to the label resolution first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from anomask.models.metadata import IGNORE_ID
from anomask.training.targets import ImageTargets, outlier_target


@dataclass(frozen=True)
class PerPixelLossConfig:
    class_weight: float = 0.6
    outlier_weight: float = 0.6 * 0.2


def _upsample(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(logits.float(), size=size, mode="bilinear", align_corners=False)


def two_head_loss(
    semantic_logits: torch.Tensor,
    outlier_logits: torch.Tensor,
    targets: Sequence[ImageTargets],
    num_classes: int,
    config: PerPixelLossConfig,
) -> dict[str, torch.Tensor]:
    """``semantic_logits [B, K, h, w]``, ``outlier_logits [B, 1, h, w]`` -> weighted terms."""
    device = semantic_logits.device
    outlier = torch.stack([outlier_target(t, num_classes) for t in targets]).to(device).long()
    semantic = torch.stack([t.semantic for t in targets]).to(device).clone()
    semantic[(outlier != 0) | (semantic >= num_classes)] = IGNORE_ID
    size = semantic.shape[-2:]
    cls_logits = _upsample(semantic_logits, size)
    od_logits = _upsample(outlier_logits, size)[:, 0]
    # A batch without a single valid pixel gives 0 with a gradient path (DDP needs one).
    cls = (
        F.cross_entropy(cls_logits, semantic, ignore_index=IGNORE_ID)
        if (semantic != IGNORE_ID).any()
        else 0.0 * cls_logits.sum()
    )
    valid = outlier != IGNORE_ID
    od = (
        F.binary_cross_entropy_with_logits(od_logits[valid], outlier[valid].float())
        if valid.any()
        else 0.0 * od_logits.sum()
    )
    return {"loss_cls": config.class_weight * cls, "loss_outlier": config.outlier_weight * od}


class PerPixelCriterion(nn.Module):
    """Same call signature as ``MaskCriterion`` so the trainer treats both alike."""

    def __init__(self, num_classes: int, config: PerPixelLossConfig) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.config = config

    def forward(self, outputs: dict, targets: Sequence[ImageTargets], seeds: Sequence[int]) -> dict[str, torch.Tensor]:
        del seeds  # no random sampling in the per-pixel loss
        return two_head_loss(outputs["sem_logits"], outputs["outlier_logits"], targets, self.num_classes, self.config)
