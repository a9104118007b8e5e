"""Eager-mode input checks shared by every head (the exported graph cannot raise).

Shape checks run always (shapes are static when exporting); the NaN check reads data and is
skipped while ``torch.export`` / dynamo traces the module.
"""

from __future__ import annotations

import torch
from torch import Tensor

from anomask.errors import AnomaskError
from anomask.models.metadata import IGNORE_ID, UNKNOWN_ID, ModelMetadata

MAX_MASKS = 255
"""Mask indices travel as uint8 images (``mask_id``, ``preferred_mask``)."""


def check_metadata(metadata: ModelMetadata) -> None:
    if metadata.num_classes >= UNKNOWN_ID:
        raise AnomaskError(
            f"{metadata.num_classes} known classes do not fit a uint8 class map whose ids "
            f"{UNKNOWN_ID} (unknown) and {IGNORE_ID} (ignore) are reserved"
        )


def check_no_nan(name: str, tensor: Tensor) -> None:
    if not torch.compiler.is_compiling() and bool(torch.isnan(tensor).any()):
        raise AnomaskError(f"{name} contains NaN values; the network output is invalid")


def check_mask_outputs(pred_logits: Tensor, pred_masks: Tensor, metadata: ModelMetadata) -> None:
    """``pred_logits [B, N, C]`` with ``C == metadata.architecture.num_outputs`` and
    ``pred_masks [B, N, h, w]`` mask logits, no NaN."""
    if pred_logits.dim() != 3:
        raise AnomaskError(f"pred_logits must have shape [B, N, C], got {list(pred_logits.shape)}")
    if pred_masks.dim() != 4:
        raise AnomaskError(f"pred_masks must have shape [B, N, h, w], got {list(pred_masks.shape)}")
    if pred_logits.shape[:2] != pred_masks.shape[:2]:
        raise AnomaskError(
            f"pred_logits {list(pred_logits.shape)} and pred_masks {list(pred_masks.shape)} "
            "disagree on batch size or number of masks"
        )
    expected = metadata.architecture.num_outputs
    if pred_logits.shape[-1] != expected:
        negative = " + negative" if metadata.architecture.negative_class else ""
        raise AnomaskError(
            f"pred_logits has {pred_logits.shape[-1]} classes but the model metadata expects "
            f"num_outputs={expected} ({metadata.num_classes} known{negative} + no-object)"
        )
    if pred_logits.shape[1] > MAX_MASKS:
        raise AnomaskError(f"{pred_logits.shape[1]} masks: the heads support at most {MAX_MASKS}")
    check_no_nan("pred_logits", pred_logits)
    check_no_nan("pred_masks", pred_masks)


def check_threshold(threshold: Tensor) -> None:
    if not isinstance(threshold, Tensor) or threshold.dim() != 0:
        raise AnomaskError("threshold must be a 0-d float tensor, e.g. torch.tensor(0.5)")
    check_no_nan("threshold", threshold)
