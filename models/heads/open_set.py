"""Open-set semantic segmentation (Mask2Anomaly (Rai et al., 2024), §5, eq. 16) — GPU part,
exportable.

``argmax(concat(g(x), f(x_hat)))`` with a thresholded score amounts to: the closed-set class,
replaced by the unknown id 254 where the anomaly score exceeds the threshold. Pixels claimed
by the refinement mask (Mask2Anomaly, eq. 15) are never unknown.
"""

from __future__ import annotations

import torch
from torch import Tensor

from anomask.models.metadata import UNKNOWN_ID


def open_set_semantic(semantic: Tensor, score: Tensor, threshold: Tensor, claimed: Tensor | None = None) -> Tensor:
    """``semantic`` uint8 ``[B, H, W]``; ``threshold`` a 0-d tensor (changeable at run time).

    The fill runs in float32 (exact for ids up to 255) and the uint8 cast comes last: TensorRT
    takes uint8 tensors only into and out of a Cast (``export/op_support.py``)."""
    unknown = score > threshold
    if claimed is not None:
        unknown = unknown & ~claimed
    return semantic.to(torch.float32).masked_fill(unknown, UNKNOWN_ID).to(torch.uint8)
