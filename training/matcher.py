"""Hungarian matching of predicted masks to ground-truth segments, as in
DETR (Carion et al., 2020) and Mask2Former (Cheng et al., 2022), §3.3.

The cost of assigning query ``i`` to segment ``j`` is
``w_class * (-p_i(label_j)) + w_mask * BCE(m_i, t_j) + w_dice * dice(m_i, t_j)``, with the
mask terms on the same uniform random points for every pair. scipy's
``linear_sum_assignment`` then picks the one-to-one assignment of least total cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from anomask.errors import AnomaskError
from anomask.training.point_sampling import point_sample, uniform_points


@dataclass(frozen=True)
class CostWeights:
    cls: float = 2.0
    mask: float = 5.0
    dice: float = 5.0


def pairwise_sigmoid_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean BCE over points for every (prediction, target) pair: ``[Q, P] x [T, P] -> [Q, T]``.

    ``BCE(x, t) = t * softplus(-x) + (1 - t) * softplus(x)``, expanded into two matmuls.
    """
    positive = F.softplus(-logits)
    negative = F.softplus(logits)
    return (positive @ targets.T + negative @ (1.0 - targets).T) / logits.shape[1]


def pairwise_dice(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Dice loss ``1 - (2|p t| + 1) / (|p| + |t| + 1)`` for every pair: ``[Q, T]``."""
    probs = logits.sigmoid()
    numerator = 2.0 * probs @ targets.T
    denominator = probs.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1.0 - (numerator + 1.0) / (denominator + 1.0)


@torch.no_grad()
def matching_cost(
    class_logits: torch.Tensor,
    mask_logits: torch.Tensor,
    labels: torch.Tensor,
    target_masks: torch.Tensor,
    weights: CostWeights,
    num_points: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Cost matrix ``[Q, T]`` for one image.

    ``class_logits [Q, C]``, ``mask_logits [Q, h, w]``, ``labels [T]``,
    ``target_masks [T, H, W]`` (any resolution: read at normalised points).
    """
    probs = class_logits.float().softmax(-1)
    cost_class = -probs[:, labels]
    coords = uniform_points(1, num_points, generator).to(mask_logits.device)
    pred = point_sample(mask_logits[None].float(), coords)[0]
    tgt = point_sample(target_masks[None].float(), coords)[0]
    cost_mask = pairwise_sigmoid_bce(pred, tgt)
    cost_dice = pairwise_dice(pred, tgt)
    return weights.cls * cost_class + weights.mask * cost_mask + weights.dice * cost_dice


@torch.no_grad()
def hungarian_match(cost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(query_ids, target_ids)`` of the least-cost one-to-one assignment."""
    matrix = cost.detach().float().cpu().numpy()
    if not np.isfinite(matrix).all():
        raise AnomaskError("matching cost is not finite: the model produced NaN/inf logits (diverged training?)")
    rows, cols = linear_sum_assignment(matrix)
    return torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)
