"""Mask contrastive loss (Mask2Anomaly (Rai et al., 2024), §4.3, eq. 12-14).

Sign convention — paper and official code disagree with the paper's own intent, so we
follow the intent:

* Paper eq. 12 defines ``l_N = -max_k(softmax(C)^T sigmoid(M))`` in [-1, 0] and says it
  "should be -1" on inliers and 0 on outliers; eq. 13 then minimises ``l_N^2`` on inliers
  (optimum at ``l_N = 0``, the outlier target) and ``max(0, m - l_N)^2`` on outliers, a
  hinge that can never be satisfied since ``m - l_N >= m > 0``.
* The official code (``SetCriterion.loss_ood``, ``ood_loss == "margin"``) implements eq. 13
  literally with ``score = -max``: both terms push every pixel's max class score towards 0;
  the separation it gets comes only from the outlier gradient being the larger one while
  the mask/class losses hold inliers up.

anomask uses the anomaly score ``s = 1 + l_N = 1 - max_k S_k`` (the MSP score of
Mask2Anomaly, eq. 6-7), which is 0 on an ideal inlier and 1 on an ideal outlier, and applies
eq. 13 to it: ``0.5 * s^2`` on inliers and ``0.5 * max(0, m - s)^2`` on outliers. Both terms
now vanish exactly at the targets the paper states (inliers scored 0, outliers at least
``m`` above them), so it is a true margin loss; with ``m = 0.75`` an outlier pixel stops
being pushed once its best known-class score is below 0.25. The test
``test_contrastive_steps_widen_the_gap`` shows a few steps widen the outlier-inlier gap.

Reduction follows the official code: the mean over inlier pixels plus the mean over
outlier pixels, halved (the two sets are balanced although outliers are rare).

``ContrastiveOptions`` (``loss.contrastive_*`` settings) chooses between anomask's defaults and
the official code (``mask2former/modeling/criterion.py``, ``SetCriterion.loss_ood``,
``ood_loss == "margin"``, with the ``ood_mask`` of ``MaskFormerSemanticDatasetMapper.__call__``);
``ContrastiveOptions.official()`` sets all four to the code's:

- ``form``: ``anomask`` applies eq. 13 to ``s = 1 - max_k S_k`` (inliers to 0, outliers to
  at least m); ``official`` applies it to ``l_N = -max_k S_k`` as written (both terms push
  ``max_k S_k`` towards 0).
- ``margin``: 0.75 (paper, §7.3) vs the code's 1.0 (``MODEL.MASK_FORMER.MARGIN``'s default,
  which ``anomaly_ft.yaml`` does not override).
- ``align_corners`` of the score's resize to the label size: False (as every resize in
  anomask) vs the code's True.
- ``void_as_inlier``: False, ignore pixels (255) count in neither set, vs the code's True
  (``ood_mask = sem_seg == 254``: void and padding are inliers).

The published tables come from the official code; docs/training.md says why the defaults
differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from anomask.errors import AnomaskError
from anomask.training.targets import ImageTargets, outlier_target

CONTRASTIVE_FORMS = ("anomask", "official")


@dataclass(frozen=True)
class ContrastiveOptions:
    """The mask contrastive loss's choices (module docstring table)."""

    form: Literal["anomask", "official"] = "anomask"
    margin: float = 0.75
    align_corners: bool = False
    void_as_inlier: bool = False

    def __post_init__(self) -> None:
        if self.form not in CONTRASTIVE_FORMS:
            raise AnomaskError(f"contrastive form must be one of {', '.join(CONTRASTIVE_FORMS)}, got {self.form!r}")
        if self.margin <= 0:
            raise AnomaskError(f"contrastive margin must be positive, got {self.margin}")

    @classmethod
    def official(cls) -> ContrastiveOptions:
        """The official Mask2Anomaly code's loss (``SetCriterion.loss_ood``)."""
        return cls(form="official", margin=1.0, align_corners=True, void_as_inlier=True)


def known_class_scores(class_logits: torch.Tensor, mask_logits: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per-pixel known-class scores ``S = softmax(C)[:K]^T sigmoid(M)``
    (Mask2Anomaly (Rai et al., 2024), eq. 3): ``[B, N, C], [B, N, h, w] -> [B, K, h, w]``.
    The softmax runs over all outputs (K known, the UNO negative if any, no-object); only
    the K known columns are kept."""
    probs = class_logits.float().softmax(-1)[..., :num_classes]
    return torch.einsum("bnk,bnhw->bkhw", probs, mask_logits.float().sigmoid())


def msp_anomaly(class_logits: torch.Tensor, mask_logits: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``1 - max_k S_k`` per pixel, ``[B, h, w]`` at mask resolution."""
    return 1.0 - known_class_scores(class_logits, mask_logits, num_classes).amax(1)


def mask_contrastive_loss(
    class_logits: torch.Tensor,
    mask_logits: torch.Tensor,
    targets: Sequence[ImageTargets],
    num_classes: int,
    options: ContrastiveOptions = ContrastiveOptions(),
) -> torch.Tensor:
    """Eq. 13 on ``s = 1 - max_k S_k`` (``form="anomask"``) or on ``l_N = s - 1`` as the
    official code writes it (``form="official"``); see the module docstring."""
    ood = torch.stack([outlier_target(t, num_classes) for t in targets]).to(mask_logits.device)
    score = msp_anomaly(class_logits, mask_logits, num_classes)
    if options.form == "official":
        score = score - 1.0  # l_N = -max_k S_k
    score = F.interpolate(score[:, None], size=ood.shape[-2:], mode="bilinear", align_corners=options.align_corners)
    score = score[:, 0]
    inlier = score[(ood != 1) if options.void_as_inlier else (ood == 0)]
    outlier = score[ood == 1]
    loss = score.new_zeros(())
    if inlier.numel():
        loss = loss + inlier.pow(2).mean()
    if outlier.numel():
        loss = loss + (options.margin - outlier).clamp(min=0.0).pow(2).mean()
    return 0.5 * loss
