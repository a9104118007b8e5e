"""Heads of the per-pixel two-head model of noisy negatives (Bevandić et al., 2022) — GPU part,
exportable.

Its outputs are ``{"sem_logits": [B, K, h, w], "outlier_logits": [B, 1, h, w]}``: a K-way
per-pixel classifier (no no-object class) and a binary outlier head. The paper's eq. 2 fuses
them: ``P(outlier) = sigmoid(outlier logit) * (1 - max_c softmax(sem_logits)_c)`` (OP x MSM),
the max running over the K known classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anomask.errors import AnomaskError
from anomask.models.heads.checks import check_metadata, check_no_nan, check_threshold
from anomask.models.heads.open_set import open_set_semantic
from anomask.models.metadata import ModelMetadata


def op_msm(sem_logits: Tensor, outlier_logits: Tensor) -> Tensor:
    """Noisy negatives (Bevandić et al., 2022), eq. 2, ``[B, H, W]``; higher = more anomalous."""
    max_softmax = sem_logits.softmax(1).amax(1)
    return torch.sigmoid(outlier_logits[:, 0]) * (1.0 - max_softmax)


def check_per_pixel_outputs(sem_logits: Tensor, outlier_logits: Tensor, metadata: ModelMetadata) -> None:
    if sem_logits.dim() != 4 or outlier_logits.dim() != 4:
        raise AnomaskError(
            f"sem_logits and outlier_logits must be [B, K, h, w] and [B, 1, h, w], got "
            f"{list(sem_logits.shape)} and {list(outlier_logits.shape)}"
        )
    if sem_logits.shape[1] != metadata.num_classes:
        raise AnomaskError(
            f"sem_logits has {sem_logits.shape[1]} classes but the model metadata has K={metadata.num_classes}"
        )
    if (
        outlier_logits.shape[1] != 1
        or outlier_logits.shape[0] != sem_logits.shape[0]
        or outlier_logits.shape[-2:] != sem_logits.shape[-2:]
    ):
        raise AnomaskError(
            f"outlier_logits {list(outlier_logits.shape)} must be [B, 1, h, w] matching sem_logits "
            f"{list(sem_logits.shape)}"
        )
    check_no_nan("sem_logits", sem_logits)
    check_no_nan("outlier_logits", outlier_logits)


class PerPixelHeads(nn.Module):
    """``semantic`` (uint8), ``anomaly`` (OP x MSM, float32) and ``open_set`` (uint8) for the
    per-pixel model; logits are upsampled bilinearly to ``output_size`` first."""

    def __init__(self, metadata: ModelMetadata, output_size: tuple[int, int] | None = None) -> None:
        super().__init__()
        check_metadata(metadata)
        self.metadata = metadata
        self.output_size = None if output_size is None else (int(output_size[0]), int(output_size[1]))

    def forward(self, sem_logits: Tensor, outlier_logits: Tensor, threshold: Tensor) -> dict[str, Tensor]:
        check_per_pixel_outputs(sem_logits, outlier_logits, self.metadata)
        check_threshold(threshold)
        if self.output_size is not None:
            both = torch.cat([sem_logits, outlier_logits], dim=1)
            both = F.interpolate(both, size=self.output_size, mode="bilinear", align_corners=False)
            sem_logits, outlier_logits = both[:, :-1], both[:, -1:]
        semantic = sem_logits.argmax(1).to(torch.uint8)
        anomaly = op_msm(sem_logits, outlier_logits).to(torch.float32)
        return {
            "semantic": semantic,
            "anomaly": anomaly,
            "open_set": open_set_semantic(semantic, anomaly, threshold.to(torch.float32)),
        }
