"""What every mask-classification head reads: class posteriors, mask assignments and the
closed-set ensemble of EAM (Grcić et al., 2023), eq. 2-3 (GPU part, exportable).

Notation (EAM, §3.1): ``m_i = sigmoid(mask logits of mask i)`` and
``P_i = softmax(class logits of mask i)`` over **all** C outputs (K known, the negative class
at index K for K+2 models, no-object last), as in Mask2Former, EAM's and UNO's code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


def upsample_mask_logits(mask_logits: Tensor, output_size: tuple[int, int] | None) -> Tensor:
    """Bilinear upsampling of mask *logits* (before the sigmoid), like Mask2Former's
    inference (``align_corners=False``). ``None`` keeps the mask resolution."""
    if output_size is None or tuple(mask_logits.shape[-2:]) == tuple(output_size):
        return mask_logits
    return F.interpolate(mask_logits, size=tuple(output_size), mode="bilinear", align_corners=False)


def resize_fields(fields: Tensor, output_size: tuple[int, int], discrete: bool = False) -> Tensor:
    """``[B, J, h, w]`` per-pixel fields to ``output_size``: bilinear (``align_corners=False``)
    for continuous fields, nearest for index maps (passed as float, exact below 2**24)."""
    if discrete:
        return F.interpolate(fields, size=tuple(output_size), mode="nearest")
    # Channels-last output makes a later per-pixel reduction over the fields (argmax over
    # classes) contiguous, 4x faster on the CPU; a no-op in an exported graph.
    fields = fields.contiguous(memory_format=torch.channels_last)
    return F.interpolate(fields, size=tuple(output_size), mode="bilinear", align_corners=False)


def mask_ensemble(per_mask: Tensor, masks: Tensor) -> Tensor:
    """``sum_i m_i[r, c] * w_i[j]``: ``per_mask [B, N, J]`` x ``masks [B, N, H, W]`` ->
    ``[B, J, H, W]``, one batched matmul over the mask axis (EAM (Grcić et al., 2023),
    eq. 2)."""
    batch, num_masks, height, width = masks.shape
    flat = torch.matmul(per_mask.transpose(1, 2), masks.reshape(batch, num_masks, height * width))
    return flat.reshape(batch, per_mask.shape[-1], height, width)


@dataclass
class MaskEvidence:
    """Per-pixel and per-mask quantities the scores are built from (all GPU tensors)."""

    logits: Tensor
    """``[B, N, C]`` raw class logits."""
    probs: Tensor
    """``[B, N, C]`` softmax over all C outputs."""
    masks: Tensor
    """``[B, N, H, W]`` mask assignments ``m_i = sigmoid(mask logit)``."""
    class_scores: Tensor
    """``[B, K, H, W]`` closed-set scores ``sum_i m_i P_i(k)`` over the K known classes
    (EAM (Grcić et al., 2023), eq. 2; negative and no-object columns dropped after the
    softmax)."""
    ensemble: Tensor | None
    """``[B, H, W]`` ``sum_i m_i a_i`` for a per-mask score ``a_i`` (EAM, UNO), else None."""
    max_mask_logit: Tensor
    """``[B, H, W]`` ``max_i`` mask logit; ``sigmoid`` of it is ``max_i m_i``."""
    preferred_mask: Tensor
    """``[B, H, W]`` int64 ``argmax_i m_i`` over all N masks (EAM (Grcić et al., 2023), eq. 5)."""
    num_classes: int


def gather_evidence(
    pred_logits: Tensor, mask_logits: Tensor, num_classes: int, per_mask: Tensor | None = None
) -> MaskEvidence:
    """One pass over the mask stack: sigmoid, one matmul for the K class scores plus the
    optional per-mask score column, and the max over masks."""
    probs = pred_logits.softmax(-1)
    masks = mask_logits.sigmoid()
    columns = probs[..., :num_classes]
    if per_mask is not None:
        columns = torch.cat([columns, per_mask.unsqueeze(-1)], dim=-1)
    summed = mask_ensemble(columns, masks)
    max_mask_logit, preferred_mask = mask_logits.max(1)
    return MaskEvidence(
        logits=pred_logits,
        probs=probs,
        masks=masks,
        class_scores=summed[:, :num_classes],
        ensemble=summed[:, num_classes] if per_mask is not None else None,
        max_mask_logit=max_mask_logit,
        preferred_mask=preferred_mask,
        num_classes=num_classes,
    )


def closed_set_semantic(class_scores: Tensor) -> Tensor:
    """``argmax_k sum_i m_i P_i(k)`` over the K known classes (EAM (Grcić et al., 2023), eq. 3),
    uint8."""
    return class_scores.argmax(1).to(torch.uint8)
