"""Mask2Former's transformer decoder with masked or global masked attention.

Learnable query features and query positions; ``dec_layers`` layers cycle over the pixel
decoder's three scales (stride 32, 16, 8, 32, ...), each running masked cross-attention ->
self-attention -> FFN (post-norm, no dropout). Class logits (``num_outputs``) and mask
logits (3-layer MLP embedding dotted with the stride-4 mask features) are predicted from
the layer-normed queries before the first layer and after every layer; each prediction's
masks, bilinearly resized to the next layer's scale and thresholded at sigmoid 0.5, are the
next layer's attention masks. A query whose mask is empty at that scale attends everywhere
(Mask2Former's rule for fully masked rows).

Global masked attention (Mask2Anomaly (Rai et al., 2024), §4.2, eq. 10-11) adds a second
cross attention restricted to the *background* of each query's mask (sigmoid < 0.5) and sums
the two updates before the residual and norm. Where paper and official code differ we
follow:

- **the official code** in giving the background attention its own projection weights (a
  second attention module, ``multihead_attn_background`` in the Mask2Anomaly repository);
  eq. 10 writes one Q, K, V for both terms, but the released checkpoints have two modules
  and import only this way;
- **the code** for rows with nothing to attend to: foreground and background masks are
  each unmasked on their own when fully masked (as Mask2Former does for masked attention);
- **the paper** for the threshold: the background is the exact complement of the
  foreground (eq. 11, ``M < 0.5``); the code's ``M <= 0.5`` differs only at exactly 0.5.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from anomask.models.attention import MultiHeadAttention
from anomask.models.position_encoding import sine_position_encoding

NUM_LEVELS = 3
MASK_THRESHOLD = 0.5

Prediction = tuple[torch.Tensor, torch.Tensor]
"""(class logits ``[B, N, num_outputs]``, mask logits ``[B, N, H/4, W/4]``)."""


class DecoderLayer(nn.Module):
    """Masked (or global masked) cross-attention -> self-attention -> FFN, post-norm."""

    def __init__(self, dim: int, num_heads: int, dim_feedforward: int, global_masked_attention: bool) -> None:
        super().__init__()
        self.cross_attn = MultiHeadAttention(dim, num_heads)
        self.cross_attn_bg = MultiHeadAttention(dim, num_heads) if global_masked_attention else None
        self.norm1 = nn.LayerNorm(dim)
        self.self_attn = MultiHeadAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.linear1 = nn.Linear(dim, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, dim)
        self.norm3 = nn.LayerNorm(dim)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(
        self,
        tgt: torch.Tensor,
        query_pos: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        foreground: torch.Tensor,
        background: torch.Tensor | None,
    ) -> torch.Tensor:
        query, key = tgt + query_pos, memory + memory_pos
        update = self.cross_attn(query, key, memory, foreground)
        if self.cross_attn_bg is not None:
            update = update + self.cross_attn_bg(query, key, memory, background)
        tgt = self.norm1(tgt + update)
        query = tgt + query_pos
        tgt = self.norm2(tgt + self.self_attn(query, query, tgt))
        return self.norm3(tgt + self.linear2(F.relu(self.linear1(tgt))))


class MLP(nn.Module):
    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


def attention_masks(
    mask_logits: torch.Tensor, size: tuple[int, int], with_background: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Boolean "may attend" masks ``[B, 1, N, h*w]`` from mask logits at ``size``.

    Foreground: sigmoid >= 0.5 (Mask2Anomaly (Rai et al., 2024), eq. 9); background: its
    complement (eq. 11). A row with no allowed key is opened to every key (Mask2Former);
    done with ``any`` rather than indexing so it exports."""
    probs = F.interpolate(mask_logits.detach(), size=size, mode="bilinear", align_corners=False).sigmoid().flatten(2)
    inside = probs >= MASK_THRESHOLD
    foreground = (inside | ~inside.any(-1, keepdim=True))[:, None]
    if not with_background:
        return foreground, None
    outside = ~inside
    return foreground, (outside | ~outside.any(-1, keepdim=True))[:, None]


class MaskedTransformerDecoder(nn.Module):
    def __init__(
        self,
        dim: int,
        mask_dim: int,
        num_queries: int,
        num_heads: int,
        dim_feedforward: int,
        num_layers: int,
        num_outputs: int,
        global_masked_attention: bool,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.global_masked_attention = global_masked_attention
        self.query_feat = nn.Embedding(num_queries, dim)
        self.query_embed = nn.Embedding(num_queries, dim)
        self.level_embed = nn.Embedding(NUM_LEVELS, dim)
        self.layers = nn.ModuleList(
            DecoderLayer(dim, num_heads, dim_feedforward, global_masked_attention) for _ in range(num_layers)
        )
        self.decoder_norm = nn.LayerNorm(dim)
        self.class_embed = nn.Linear(dim, num_outputs)
        self.mask_embed = MLP(dim, dim, mask_dim, 3)

    def forward(self, multi_scale: list[torch.Tensor], mask_features: torch.Tensor) -> list[Prediction]:
        """``multi_scale``: the pixel decoder's stride-32/16/8 maps; returns ``dec_layers + 1``
        predictions, the first made from the learnt queries alone, the last the final one."""
        sizes = [(x.shape[2], x.shape[3]) for x in multi_scale]
        memories = [
            x.flatten(2).transpose(1, 2) + self.level_embed.weight[level][None, None, :]
            for level, x in enumerate(multi_scale)
        ]
        positions = [sine_position_encoding(x, self.dim).flatten(2).transpose(1, 2) for x in multi_scale]
        batch = mask_features.shape[0]
        query_pos = self.query_embed.weight[None].expand(batch, -1, -1)
        tgt = self.query_feat.weight[None].expand(batch, -1, -1)

        predictions = [self._predict(tgt, mask_features)]
        for i, layer in enumerate(self.layers):
            level = i % NUM_LEVELS
            masks = attention_masks(predictions[-1][1], sizes[level], self.global_masked_attention)
            tgt = layer(tgt, query_pos, memories[level], positions[level], *masks)
            predictions.append(self._predict(tgt, mask_features))
        return predictions

    def _predict(self, tgt: torch.Tensor, mask_features: torch.Tensor) -> Prediction:
        normed = self.decoder_norm(tgt)
        mask_embed = self.mask_embed(normed)
        return self.class_embed(normed), torch.einsum("bqc,bchw->bqhw", mask_embed, mask_features)
