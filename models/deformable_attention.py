"""Multi-scale deformable attention (Deformable DETR (Zhu et al., 2021)) in pure PyTorch.

Sampling uses ``grid_sample`` (bilinear, zero padding, ``align_corners=False``), the same
arithmetic as the authors' CUDA kernel's PyTorch reference, with no custom op, so the
module runs on any device and exports to ONNX. The only loop is over the (fixed) levels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class MultiScaleDeformableAttention(nn.Module):
    """Each query attends to ``num_points`` sampled locations per head and level around its
    reference point; offsets and weights are predicted from the query."""

    def __init__(self, dim: int, num_heads: int, num_levels: int, num_points: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.num_levels = num_levels
        self.num_points = num_points
        self.sampling_offsets = nn.Linear(dim, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(dim, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Deformable DETR's init: head h starts sampling along direction 2*pi*h/heads, point
        p at distance p+1 (in feature cells), with uniform attention weights."""
        nn.init.zeros_(self.sampling_offsets.weight)
        angles = torch.arange(self.num_heads, dtype=torch.float32) * (2.0 * math.pi / self.num_heads)
        grid = torch.stack([angles.cos(), angles.sin()], -1)
        grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(self.num_heads, 1, 1, 2)
        grid = grid.repeat(1, self.num_levels, self.num_points, 1)
        grid = grid * torch.arange(1, self.num_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.flatten())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for linear in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)

    def forward(
        self,
        query: torch.Tensor,
        reference_points: torch.Tensor,
        value: torch.Tensor,
        spatial_shapes: list[tuple[int, int]],
    ) -> torch.Tensor:
        """``query`` ``[B, Q, C]``; ``reference_points`` ``[B or 1, Q, L, 2]`` as normalised
        (x, y) in [0, 1]; ``value`` ``[B, sum(H*W), C]`` flattened levels in
        ``spatial_shapes`` order. Returns ``[B, Q, C]``."""
        batch, num_queries, dim = query.shape
        heads, levels, points = self.num_heads, self.num_levels, self.num_points
        head_dim = dim // heads
        value = self.value_proj(value).view(batch, -1, heads, head_dim)
        offsets = self.sampling_offsets(query).view(batch, num_queries, heads, levels, points, 2)
        weights = self.attention_weights(query).view(batch, num_queries, heads, levels * points)
        weights = weights.softmax(-1).view(batch, num_queries, heads, levels, points)
        normalizer = torch.tensor([[w, h] for h, w in spatial_shapes], dtype=query.dtype, device=query.device)
        locations = reference_points[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None, :]
        grids = 2 * locations - 1

        values = value.split([h * w for h, w in spatial_shapes], dim=1)
        # [B, Q, heads, L, P] -> [B * heads, 1, Q, L, P]
        weights = weights.transpose(1, 2).reshape(batch * heads, 1, num_queries, levels, points)
        out = torch.zeros((), dtype=query.dtype, device=query.device)
        for level, (h, w) in enumerate(spatial_shapes):
            # [B, HW, heads, d] -> [B * heads, d, H, W]
            value_l = values[level].permute(0, 2, 3, 1).reshape(batch * heads, head_dim, h, w)
            # [B, Q, heads, P, 2] -> [B * heads, Q, P, 2]
            grid_l = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
            sampled = F.grid_sample(value_l, grid_l, mode="bilinear", padding_mode="zeros", align_corners=False)
            # weighted sum over this level's points, accumulated level by level (no stacked copy)
            out = out + (sampled * weights[..., level, :]).sum(-1)
        out = out.view(batch, heads * head_dim, num_queries).transpose(1, 2)
        return self.output_proj(out)
