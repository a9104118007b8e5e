"""Point-sampled mask supervision (Mask2Former (Cheng et al., 2022), §3.3,
after PointRend (Kirillov et al., 2020)).

Mask losses and matching costs are computed on a few thousand points per mask instead of
on every pixel: uniform random points for matching, and uncertainty-biased points for the
loss (``oversample`` x more uniform candidates, keep the ``importance`` share with the
logits nearest 0, fill the rest uniformly). Coordinates are normalised to [0, 1] so the
prediction (1/4 resolution) and the target (full resolution) are read at the same place.

Every draw takes an explicit ``torch.Generator``: the trainer seeds one per image and
iteration, so the points do not depend on how a batch is split across processes or on
what ran before a resume.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class PointConfig:
    num_points: int = 12544
    """112 x 112 points per mask, Mask2Former's default."""
    oversample: float = 3.0
    importance: float = 0.75


def point_sample(values: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinearly read ``values [R, C, H, W]`` at ``coords [R, P, 2]`` ((x, y) in [0, 1]).

    Returns ``[R, C, P]``. ``align_corners=False``: coordinate 0 is the outer edge of the
    first pixel, so masks of different resolutions line up.
    """
    grid = coords.unsqueeze(2) * 2.0 - 1.0
    return F.grid_sample(values, grid.to(values.dtype), mode="bilinear", align_corners=False).squeeze(3)


def uniform_points(count: int, num_points: int, generator: torch.Generator) -> torch.Tensor:
    """``[count, num_points, 2]`` uniform coordinates on the generator's device."""
    return torch.rand(count, num_points, 2, generator=generator, device=generator.device)


def uncertain_points(logits: torch.Tensor, config: PointConfig, generator: torch.Generator) -> torch.Tensor:
    """Uncertainty-biased coordinates for mask logits ``[R, 1, H, W]`` -> ``[R, P, 2]``.

    Uncertainty is ``-|logit|`` (Mask2Former's ``calculate_uncertainty``): points where the
    mask is undecided get most of the budget.
    """
    count = logits.shape[0]
    num_candidates = int(config.num_points * config.oversample)
    num_uncertain = int(config.importance * config.num_points)
    num_random = config.num_points - num_uncertain
    candidates = uniform_points(count, num_candidates, generator).to(logits.device)
    uncertainty = -point_sample(logits.detach(), candidates)[:, 0].abs()
    top = uncertainty.topk(num_uncertain, dim=1).indices
    chosen = torch.gather(candidates, 1, top.unsqueeze(-1).expand(-1, -1, 2))
    if num_random == 0:
        return chosen
    extra = uniform_points(count, num_random, generator).to(logits.device)
    return torch.cat([chosen, extra], dim=1)
