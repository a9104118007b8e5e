"""Swin-T/S/B (Swin, Liu et al., 2021) in the original Microsoft module and key layout.

The layout (``patch_embed``, ``layers.i.blocks.j.attn.qkv``, ``layers.i.downsample``, one
output LayerNorm ``norm0..norm3`` per stage) is the one Mask2Former's detectron2 backbone
uses, so its checkpoints map onto it by dropping the ``backbone.`` prefix. As in that
backbone, feature maps are padded to a multiple of the window size and every odd block is
shifted whatever the feature size (no window shrinking for small maps), the shift mask uses
-100 for pairs from different regions, and the input is padded to a multiple of the patch
size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import StochasticDepth

from anomask.models.backbones.base import Backbone

DROP_PATH_RATE = 0.3
"""Stochastic depth at the last block (linear from 0); Mask2Former's Swin configs use 0.3."""
SHIFT_MASK_VALUE = -100.0


@dataclass(frozen=True)
class SwinSpec:
    embed_dim: int
    depths: tuple[int, int, int, int]
    num_heads: tuple[int, int, int, int]


SWIN_SPECS = {
    "swin_t": SwinSpec(96, (2, 2, 6, 2), (3, 6, 12, 24)),
    "swin_s": SwinSpec(96, (2, 2, 18, 2), (3, 6, 12, 24)),
    "swin_b": SwinSpec(128, (2, 2, 18, 2), (4, 8, 16, 32)),
}


def _window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """``[B, H, W, C]`` (H, W multiples of ``window``) -> ``[B * nW, window * window, C]``."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def _window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    c = windows.shape[-1]
    x = windows.view(-1, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def _relative_position_index(window: int) -> torch.Tensor:
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return relative[..., 0] * (2 * window - 1) + relative[..., 1]


def _shift_mask(h: int, w: int, window: int, shift: int, device: torch.device) -> torch.Tensor:
    """Additive mask ``[nW, N, N]`` keeping shifted-window attention inside each region."""

    def regions(size: int) -> torch.Tensor:
        index = torch.arange(size, device=device)
        return (index >= size - window).long() + (index >= size - shift).long()

    region = (regions(h)[:, None] * 3 + regions(w)[None, :])[None, :, :, None]
    ids = _window_partition(region, window).squeeze(-1)
    different = ids[:, None, :] != ids[:, :, None]
    return torch.zeros(different.shape, device=device).masked_fill(different, SHIFT_MASK_VALUE)


class WindowAttention(nn.Module):
    def __init__(self, dim: int, window: int, num_heads: int) -> None:
        super().__init__()
        self.window = window
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", _relative_position_index(window), persistent=False)
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        nn.init.normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        batch_windows, n, c = x.shape
        qkv = self.qkv(x).reshape(batch_windows, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        attn = q @ k.transpose(-2, -1) + bias.view(n, n, -1).permute(2, 0, 1)[None]
        if mask is not None:
            num_windows = mask.shape[0]
            attn = attn.view(-1, num_windows, self.num_heads, n, n) + mask[None, :, None]
            attn = attn.view(-1, self.num_heads, n, n)
        out = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(batch_windows, n, c)
        return self.proj(out)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class SwinBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, window: int, shift: int, drop_path: float) -> None:
        super().__init__()
        self.window = window
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, num_heads)
        self.drop_path = StochasticDepth(drop_path, "row")
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[B, H, W, C]`` channels-last."""
        _, h, w, _ = x.shape
        pad_h, pad_w = (-h) % self.window, (-w) % self.window
        y = F.pad(self.norm1(x), (0, 0, 0, pad_w, 0, pad_h))
        hp, wp = h + pad_h, w + pad_w
        mask = None
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
            mask = _shift_mask(hp, wp, self.window, self.shift, x.device).to(x.dtype)
        y = self.attn(_window_partition(y, self.window), mask)
        y = _window_reverse(y, self.window, hp, wp)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + self.drop_path(y[:, :h, :w])
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h, w, _ = x.shape
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x))


class SwinStage(nn.Module):
    def __init__(
        self, dim: int, depth: int, num_heads: int, window: int, drop_paths: list[float], downsample: bool
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(dim, num_heads, window, 0 if i % 2 == 0 else window // 2, drop_paths[i]) for i in range(depth)
        )
        self.downsample = PatchMerging(dim) if downsample else None


class PatchEmbed(nn.Module):
    def __init__(self, dim: int, patch: int = 4) -> None:
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        images = F.pad(images, (0, (-w) % self.patch, 0, (-h) % self.patch))
        return self.norm(self.proj(images).permute(0, 2, 3, 1))


class SwinBackbone(Backbone):
    def __init__(self, name: str, window_size: int = 7) -> None:
        super().__init__()
        spec = SWIN_SPECS[name]
        dims = [spec.embed_dim * 2**i for i in range(4)]
        self.channels = tuple(dims)
        rates = torch.linspace(0, DROP_PATH_RATE, sum(spec.depths)).tolist()
        starts = [sum(spec.depths[:i]) for i in range(4)]
        self.patch_embed = PatchEmbed(spec.embed_dim)
        self.layers = nn.ModuleList(
            SwinStage(
                dims[i],
                spec.depths[i],
                spec.num_heads[i],
                window_size,
                rates[starts[i] : starts[i] + spec.depths[i]],
                downsample=i < 3,
            )
            for i in range(4)
        )
        self.norms = [nn.LayerNorm(dim) for dim in dims]
        for i, norm in enumerate(self.norms):
            self.add_module(f"norm{i}", norm)
        self.apply(_init_weights)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(images)
        features = []
        for stage, norm in zip(self.layers, self.norms):
            for block in stage.blocks:
                x = block(x)
            features.append(norm(x).permute(0, 3, 1, 2).contiguous())
            if stage.downsample is not None:
                x = stage.downsample(x)
        return features


def _init_weights(module: nn.Module) -> None:
    """Swin's init, N(0, 0.02). The original truncates at +-2 (absolute, i.e. 100 std): a
    plain normal is the same distribution in practice and ~10x faster to draw."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
