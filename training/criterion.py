"""The mask-classification training loss (Mask2Former (Cheng et al., 2022), §3.3;
Mask2Anomaly (Rai et al., 2024), eq. 1-2, 14).

Per decoder layer (the final prediction and every entry of ``aux_outputs``, deep
supervision): Hungarian-match queries to segments, then

* class cross-entropy over all ``C`` outputs, the no-object class weighted 0.1 — with a
  UNO model (K+2 outputs) the negative class K is a class like the others
  (UNO (Delić et al., 2024), §4);
* sigmoid BCE and dice on uncertainty-sampled points of the matched masks, each summed
  over masks and divided by the number of segments in the global batch;
* optionally the mask contrastive loss (Mask2Anomaly, eq. 13), which the official code also
  applies to every layer.

Weights: class 2.0, mask 5.0, dice 5.0, contrastive 1.0 (the official ``OOD_WEIGHT``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from anomask.training.contrastive import ContrastiveOptions, mask_contrastive_loss
from anomask.training.distributed import all_reduce_sum, world_size
from anomask.training.matcher import CostWeights, hungarian_match, matching_cost
from anomask.training.point_sampling import PointConfig, point_sample, uncertain_points
from anomask.training.seeding import derived_generator
from anomask.training.targets import ImageTargets

MATCH_STREAM = 0
LOSS_STREAM = 1


@dataclass(frozen=True)
class MaskLossConfig:
    class_weight: float = 2.0
    mask_weight: float = 5.0
    dice_weight: float = 5.0
    no_object_weight: float = 0.1
    num_points: int = 12544
    oversample: float = 3.0
    importance: float = 0.75
    deep_supervision: bool = True
    contrastive_weight: float = 0.0
    """0 disables the mask contrastive loss (closed-set, EAM, UNO); 1.0 for Mask2Anomaly."""
    contrastive_margin: float = 0.75
    """Mask2Anomaly (Rai et al., 2024), §7.3; the official code's default is 1.0."""
    contrastive_form: Literal["anomask", "official"] = "anomask"
    """``anomask`` (eq. 13 on ``1 - max``) or ``official`` (on ``-max``, as the code);
    ``training.contrastive``."""
    contrastive_align_corners: bool = False
    """The official code resizes the score with ``align_corners=True``."""
    contrastive_void_as_inlier: bool = False
    """The official code counts void pixels as inliers."""

    @property
    def contrastive(self) -> ContrastiveOptions:
        return ContrastiveOptions(
            self.contrastive_form,
            self.contrastive_margin,
            self.contrastive_align_corners,
            self.contrastive_void_as_inlier,
        )

    @property
    def points(self) -> PointConfig:
        return PointConfig(self.num_points, self.oversample, self.importance)

    @property
    def cost_weights(self) -> CostWeights:
        return CostWeights(self.class_weight, self.mask_weight, self.dice_weight)


def sigmoid_bce_per_mask(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean BCE over points, one value per mask: ``[M, P] -> [M]``."""
    return F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(1)


def dice_per_mask(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``1 - (2|p t| + 1) / (|p| + |t| + 1)`` per mask: ``[M, P] -> [M]``."""
    probs = logits.sigmoid()
    return 1.0 - (2.0 * (probs * labels).sum(1) + 1.0) / (probs.sum(1) + labels.sum(1) + 1.0)


class MaskCriterion(nn.Module):
    """Matcher + losses; returns a dict of already-weighted loss terms (sum = total)."""

    def __init__(self, num_classes: int, num_outputs: int, config: MaskLossConfig) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_outputs = num_outputs
        self.config = config
        class_weights = torch.ones(num_outputs)
        class_weights[-1] = config.no_object_weight
        self.register_buffer("class_weights", class_weights, persistent=False)

    def forward(self, outputs: dict, targets: Sequence[ImageTargets], seeds: Sequence[int]) -> dict[str, torch.Tensor]:
        """``seeds``: one integer per image; all random points derive from it."""
        device = outputs["pred_logits"].device
        local = sum(len(t.labels) for t in targets)
        total = all_reduce_sum(torch.tensor(float(local), device=device))
        num_masks = max(float(total) / world_size(), 1.0)
        layers = [outputs]
        if self.config.deep_supervision:
            layers += list(outputs.get("aux_outputs", []))
        losses: dict[str, torch.Tensor] = {}
        for index, layer in enumerate(layers):
            suffix = "" if index == 0 else f"_aux{index - 1}"
            for name, value in self._layer_losses(layer, targets, seeds, index, num_masks).items():
                losses[name + suffix] = value
        return losses

    def _layer_losses(
        self, layer: dict, targets: Sequence[ImageTargets], seeds: Sequence[int], layer_index: int, num_masks: float
    ) -> dict[str, torch.Tensor]:
        class_logits = layer["pred_logits"]
        mask_logits = layer["pred_masks"]
        device = mask_logits.device
        config = self.config
        target_classes = torch.full(class_logits.shape[:2], self.num_outputs - 1, dtype=torch.int64, device=device)
        # Zero-valued terms tied to the graph: an image batch without segments still gives
        # every mask parameter a gradient, as DDP requires.
        bce = 0.0 * mask_logits.float().sum()
        dice = bce.clone()
        for image, (target, seed) in enumerate(zip(targets, seeds)):
            if len(target.labels) == 0:
                continue
            labels = target.labels.to(device)
            gt_masks = target.masks.to(device)
            match_gen = derived_generator(seed, layer_index, MATCH_STREAM, device=device)
            cost = matching_cost(
                class_logits[image],
                mask_logits[image],
                labels,
                gt_masks,
                config.cost_weights,
                config.num_points,
                match_gen,
            )
            queries, segments = hungarian_match(cost)
            queries, segments = queries.to(device), segments.to(device)
            target_classes[image, queries] = labels[segments]
            pred = mask_logits[image, queries][:, None].float()
            loss_gen = derived_generator(seed, layer_index, LOSS_STREAM, device=device)
            coords = uncertain_points(pred, config.points, loss_gen)
            point_logits = point_sample(pred, coords)[:, 0]
            with torch.no_grad():
                point_labels = point_sample(gt_masks[segments][:, None].float(), coords)[:, 0]
            bce = bce + sigmoid_bce_per_mask(point_logits, point_labels).sum()
            dice = dice + dice_per_mask(point_logits, point_labels).sum()
        ce = F.cross_entropy(class_logits.float().transpose(1, 2), target_classes, self.class_weights.to(device))
        losses = {
            "loss_ce": config.class_weight * ce,
            "loss_mask": config.mask_weight * bce / num_masks,
            "loss_dice": config.dice_weight * dice / num_masks,
        }
        if config.contrastive_weight > 0:
            contrastive = mask_contrastive_loss(
                class_logits, mask_logits, targets, self.num_classes, config.contrastive
            )
            losses["loss_contrastive"] = config.contrastive_weight * contrastive
        return losses
