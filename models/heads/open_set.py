"""Open-set semantic segmentation (Mask2Anomaly (Rai et al., 2024), §5, eq. 16) — GPU part,
exportable.

``argmax(concat(g(x), f(x_hat)))`` with a thresholded score amounts to: the closed-set class,
replaced by the unknown id 254 where the anomaly score exceeds the threshold. Pixels claimed
by the refinement mask (Mask2Anomaly, eq. 15) are never unknown.
"""

from __future__ import annotations

from torch import Tensor

from anomask.models.metadata import UNKNOWN_ID


def open_set_semantic(semantic: Tensor, score: Tensor, threshold: Tensor, claimed: Tensor | None = None) -> Tensor:
    """``semantic`` uint8 ``[B, H, W]``; ``threshold`` a 0-d tensor (changeable at run time)."""
    unknown = score > threshold
    if claimed is not None:
        unknown = unknown & ~claimed
    return semantic.masked_fill(unknown, UNKNOWN_ID)
