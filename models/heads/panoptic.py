"""Mask2Former panoptic inference for the known classes, split in two.

GPU part (``panoptic_fields``, exportable, fixed shapes): per-mask top class / score / keep
flag / area and per-pixel winning mask, so the graph never returns the ``[B, N, H, W]``
stack. CPU part (``known_panoptic``, numpy): Mask2Former's per-segment rules on those
intermediates, vectorised with ``bincount`` and a lookup table (a loop over at most N masks,
never over pixels).

Mask2Former's rules (``panoptic_inference``): keep masks whose top class (softmax over all
C outputs) is not no-object and whose probability exceeds ``object_mask_threshold`` (0.8);
each pixel goes to ``argmax_i score_i * m_i`` over the kept masks; a segment is that mask's
pixels with ``m_i >= 0.5``; drop it when (pixels where it wins) / (pixels with
``m_i >= 0.5``) < ``overlap_threshold`` (0.8); stuff segments of one class merge. For K+2
models a mask whose top class is the negative class is not a known segment either.

Output: ``PanopticLabels``, a (class map, instance map) pair -- classes 0..K-1, 254 unknown
(open-set methods), 255 void; instances counted from 1 per class (in mask order) on things,
0 on stuff and void. ``PanopticLabels.encode`` derives the published int32 image from it:
``class*1000 + instance`` for things, ``class`` for stuff, ``IGNORE_ID`` (255) for void. That
image is ambiguous only when class 0 is a thing (COCO person: its instance i reads as class
i, instance 255 as void); the pair never is, so evaluation reads the pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from torch import Tensor

from anomask.models.metadata import IGNORE_ID

INSTANCE_DIVISOR = 1000
VOID = IGNORE_ID


class PanopticLabels(NamedTuple):
    """A panoptic segmentation as two int32 maps of the same shape (one image or a batch)."""

    classes: np.ndarray
    """0..K-1 known, 254 unknown, 255 void."""
    instances: np.ndarray
    """1.. per class on thing and unknown segments, 0 on stuff and void."""

    def encode(self) -> np.ndarray:
        """The published int32 panoptic image: ``class*1000 + instance`` where there is an
        instance, else ``class`` (ambiguous only when class 0 is a thing)."""
        return np.where(self.instances > 0, self.classes * INSTANCE_DIVISOR + self.instances, self.classes).astype(
            np.int32
        )


@dataclass
class PanopticFields:
    """GPU part of the known panoptic at the working resolution (continuous fields, so they
    can be upsampled before binarising)."""

    mask_id: Tensor
    """``[B, H, W]`` int64 ``argmax_i score_i * m_i`` over the kept masks."""
    best: Tensor
    """``[B, H, W]`` that maximum (-1 where no mask is kept); ``1 - best`` is the
    background map B of Mask2Anomaly (Rai et al., 2024), eq. 17."""
    winner_logit: Tensor
    """``[B, H, W]`` mask logit of the winner; ``>= 0`` means ``m >= 0.5`` (segment pixel)."""
    mask_class: Tensor
    """``[B, N]`` int64 top class over all C outputs."""
    mask_score: Tensor
    """``[B, N]`` its probability."""
    mask_keep: Tensor
    """``[B, N]`` bool: top class is known (< K) and score > object_mask_threshold."""
    mask_area: Tensor
    """``[B, N]`` pixels with ``m_i >= 0.5`` (Mask2Former's original area)."""


def panoptic_fields(
    probs: Tensor, mask_logits: Tensor, masks: Tensor, num_classes: int, object_mask_threshold: float
) -> PanopticFields:
    """GPU part. ``probs [B, N, C]``, ``mask_logits`` and ``masks = sigmoid(mask_logits)``
    ``[B, N, H, W]``."""
    mask_score, mask_class = probs.max(-1)
    keep = (mask_class < num_classes) & (mask_score > object_mask_threshold)
    # Dropped masks get weight 0 and offset -1 so a kept mask always wins where one exists.
    weight = (mask_score * keep)[..., None, None]
    offset = (keep.to(masks.dtype) - 1.0)[..., None, None]
    best, mask_id = (masks * weight + offset).max(1)
    return PanopticFields(
        mask_id=mask_id,
        best=best,
        winner_logit=mask_logits.gather(1, mask_id.unsqueeze(1)).squeeze(1),
        mask_class=mask_class,
        mask_score=mask_score,
        mask_keep=keep,
        mask_area=(mask_logits >= 0).flatten(2).sum(-1),
    )


def known_panoptic(
    mask_id: np.ndarray,
    mask_fg: np.ndarray,
    mask_class: np.ndarray,
    mask_keep: np.ndarray,
    mask_area: np.ndarray,
    thing_ids: set[int] | list[int],
    overlap_threshold: float = 0.8,
) -> np.ndarray:
    """CPU part for one image: ``[H, W]`` int32 panoptic image of the known classes."""
    return known_panoptic_labels(
        mask_id, mask_fg, mask_class, mask_keep, mask_area, thing_ids, overlap_threshold
    ).encode()


def known_panoptic_labels(
    mask_id: np.ndarray,
    mask_fg: np.ndarray,
    mask_class: np.ndarray,
    mask_keep: np.ndarray,
    mask_area: np.ndarray,
    thing_ids: set[int] | list[int],
    overlap_threshold: float = 0.8,
) -> PanopticLabels:
    """CPU part for one image: ``[H, W]`` class and instance maps of the known classes."""
    num_masks = mask_class.shape[0]
    ids = mask_id.astype(np.intp)
    win_area = np.bincount(ids.ravel(), minlength=num_masks)[:num_masks]
    segment_area = np.bincount(ids[mask_fg], minlength=num_masks)[:num_masks]
    original_area = mask_area.astype(np.int64)
    ratio = win_area / np.maximum(original_area, 1)
    accepted = mask_keep & (win_area > 0) & (original_area > 0) & (segment_area > 0) & (ratio >= overlap_threshold)
    things = set(int(t) for t in thing_ids)
    class_lut = np.full(num_masks, VOID, dtype=np.int32)
    instance_lut = np.zeros(num_masks, dtype=np.int32)
    counts: dict[int, int] = {}
    for index in np.flatnonzero(accepted):
        cls = int(mask_class[index])
        class_lut[index] = cls  # stuff: instance 0, so masks of one stuff class merge
        if cls in things:
            counts[cls] = counts.get(cls, 0) + 1
            instance_lut[index] = counts[cls]
    classes, instances = class_lut[ids], instance_lut[ids]
    classes[~mask_fg] = VOID
    instances[~mask_fg] = 0
    return PanopticLabels(classes, instances)
