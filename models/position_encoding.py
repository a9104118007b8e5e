"""Sine position encoding of DETR (Carion et al., 2020) and Mask2Former (normalised, scale 2*pi,
temperature 1e4)."""

from __future__ import annotations

import math

import torch


def sine_position_encoding(feature: torch.Tensor, num_channels: int, temperature: float = 10000.0) -> torch.Tensor:
    """``[B, num_channels, H, W]`` encoding of a ``[B, C, H, W]`` map (no padding mask).

    Half the channels encode y, half x; position ``i`` of ``n`` maps to ``(i + 1) / n * 2pi``
    and channel pairs alternate sin/cos at frequencies ``temperature ** (2 * (k // 2) / d)``.
    Built from ``arange`` on the map's shape, so it traces and exports without loops.
    """
    batch, _, height, width = feature.shape
    half = num_channels // 2
    scale, eps = 2 * math.pi, 1e-6
    dtype, device = feature.dtype, feature.device
    y = torch.arange(1, height + 1, dtype=dtype, device=device) / (height + eps) * scale
    x = torch.arange(1, width + 1, dtype=dtype, device=device) / (width + eps) * scale
    steps = torch.arange(half, dtype=torch.int64, device=device).to(dtype)
    frequencies = temperature ** (2 * torch.div(steps, 2, rounding_mode="floor") / half)

    def encode(positions: torch.Tensor) -> torch.Tensor:
        angles = positions[:, None] / frequencies
        return torch.stack((angles[:, 0::2].sin(), angles[:, 1::2].cos()), dim=2).flatten(1)

    pos_y = encode(y)[:, None, :].expand(height, width, half)
    pos_x = encode(x)[None, :, :].expand(height, width, half)
    pos = torch.cat((pos_y, pos_x), dim=2).permute(2, 0, 1)
    return pos[None].expand(batch, -1, -1, -1)
