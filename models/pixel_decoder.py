"""Mask2Former's pixel decoder: a deformable-attention encoder over strides 8/16/32 plus
one FPN step to stride 4 that yields the mask features.

Layout and arithmetic follow Mask2Former's ``MSDeformAttnPixelDecoder``: 1x1 conv + GroupNorm
input projections (coarsest level first), sine position encoding plus a learnt level
embedding added to the queries, post-norm encoder layers (deformable self-attention, FFN),
then lateral 1x1 conv + GN on the stride-4 backbone map, bilinear upsampling of the
stride-8 output, 3x3 conv + GN + ReLU, and a 1x1 conv to ``mask_dim``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from anomask.models.deformable_attention import MultiScaleDeformableAttention
from anomask.models.position_encoding import sine_position_encoding

NUM_LEVELS = 3
"""The encoder runs over strides 32, 16, 8 (level 0 is the coarsest)."""
GROUPS = 32


class DeformableEncoderLayer(nn.Module):
    def __init__(self, dim: int, num_heads: int, num_points: int, dim_feedforward: int) -> None:
        super().__init__()
        self.self_attn = MultiScaleDeformableAttention(dim, num_heads, NUM_LEVELS, num_points)
        self.norm1 = nn.LayerNorm(dim)
        self.linear1 = nn.Linear(dim, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(
        self, src: torch.Tensor, pos: torch.Tensor, reference_points: torch.Tensor, shapes: list[tuple[int, int]]
    ) -> torch.Tensor:
        src = self.norm1(src + self.self_attn(src + pos, reference_points, src, shapes))
        return self.norm2(src + self.linear2(F.relu(self.linear1(src))))


class DeformableEncoder(nn.Module):
    def __init__(self, num_layers: int, dim: int, num_heads: int, num_points: int, dim_feedforward: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DeformableEncoderLayer(dim, num_heads, num_points, dim_feedforward) for _ in range(num_layers)
        )

    def forward(self, src: torch.Tensor, pos: torch.Tensor, shapes: list[tuple[int, int]]) -> torch.Tensor:
        reference_points = _reference_points(shapes, src.dtype, src.device)
        for layer in self.layers:
            src = layer(src, pos, reference_points, shapes)
        return src


def _reference_points(shapes: list[tuple[int, int]], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Pixel centres of every level, normalised to [0, 1], as ``[1, sum(HW), levels, 2]``
    (x, y); images are unpadded, so every level's valid ratio is 1."""
    points = []
    for h, w in shapes:
        ys = (torch.arange(h, dtype=dtype, device=device) + 0.5) / h
        xs = (torch.arange(w, dtype=dtype, device=device) + 0.5) / w
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack((grid_x.reshape(-1), grid_y.reshape(-1)), -1))
    return torch.cat(points, 0)[None, :, None, :].expand(1, -1, len(shapes), 2)


def _conv_gn(in_channels: int, out_channels: int, kernel_size: int, bias: bool, relu: bool = False) -> nn.Sequential:
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)
    layers: list[nn.Module] = [conv, nn.GroupNorm(GROUPS, out_channels)]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _c2_xavier_fill(conv: nn.Conv2d) -> None:
    """detectron2's ``c2_xavier_fill`` (Caffe2 XavierFill: kaiming uniform, a=1)."""
    nn.init.kaiming_uniform_(conv.weight, a=1)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


class MSDeformAttnPixelDecoder(nn.Module):
    """``forward([C2, C3, C4, C5]) -> (mask_features [B, mask_dim, H/4, W/4],
    [stride-32, stride-16, stride-8] maps with ``dim`` channels)``."""

    def __init__(
        self,
        in_channels: tuple[int, int, int, int],
        dim: int,
        mask_dim: int,
        num_heads: int,
        num_layers: int,
        dim_feedforward: int,
        num_points: int,
    ) -> None:
        super().__init__()
        self.dim = dim
        # coarsest first: C5, C4, C3
        self.input_proj = nn.ModuleList(_conv_gn(c, dim, 1, bias=True) for c in in_channels[:0:-1])
        for proj in self.input_proj:
            nn.init.xavier_uniform_(proj[0].weight)
            nn.init.zeros_(proj[0].bias)
        self.level_embed = nn.Parameter(torch.empty(NUM_LEVELS, dim))
        self.encoder = DeformableEncoder(num_layers, dim, num_heads, num_points, dim_feedforward)
        self.lateral_conv = _conv_gn(in_channels[0], dim, 1, bias=False)
        self.output_conv = _conv_gn(dim, dim, 3, bias=False, relu=True)
        self.mask_features = nn.Conv2d(dim, mask_dim, kernel_size=1)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        for p in self.encoder.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        for module in self.encoder.modules():
            if isinstance(module, MultiScaleDeformableAttention):
                module.reset_parameters()
        nn.init.normal_(self.level_embed)
        for conv in (self.lateral_conv[0], self.output_conv[0], self.mask_features):
            _c2_xavier_fill(conv)

    def forward(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        inputs = [proj(x) for proj, x in zip(self.input_proj, features[:0:-1])]
        shapes = [(x.shape[2], x.shape[3]) for x in inputs]
        src = torch.cat([x.flatten(2).transpose(1, 2) for x in inputs], 1)
        pos = torch.cat(
            [
                sine_position_encoding(x, self.dim).flatten(2).transpose(1, 2) + self.level_embed[level].view(1, 1, -1)
                for level, x in enumerate(inputs)
            ],
            1,
        )
        memory = self.encoder(src, pos, shapes)
        batch = memory.shape[0]
        outs = [
            y.transpose(1, 2).reshape(batch, self.dim, h, w)
            for y, (h, w) in zip(memory.split([h * w for h, w in shapes], dim=1), shapes)
        ]
        lateral = self.lateral_conv(features[0])
        fine = lateral + F.interpolate(outs[-1], size=lateral.shape[-2:], mode="bilinear", align_corners=False)
        fine = self.output_conv(fine)
        return self.mask_features(fine), outs
