"""The official inference protocol of each method's code (``FusedHeads(protocol="official")``,
``anomask eval --protocol official``) — GPU part, exportable.

anomask's default protocol (``"anomask"``) is the fast deployment path: scores at mask
resolution, then upsampled; refinement as Mask2Anomaly (Rai et al., 2024), eq. 15, states it
with anomask's choices. ``"official"`` reproduces the inference of the code the published
tables come from:

- **Masks first**: the mask logits are upsampled (bilinear, ``align_corners=False``) to the
  output size, then scored, as Mask2Former's inference does before ``semantic_inference``
  (``MaskFormer.forward``, ``F.interpolate(mask_pred_results, ...)``) in all four codes.
- **Flip averaging** (``OfficialRule.flip``): Mask2Anomaly's ``anomaly_utils/anomaly_inference.py``
  (``__main__``) scores the image and its left-right flip (``np.fliplr``), refines each, flips
  the second back and averages the two. The network runs twice; the heads' caller does the
  second run (``flip_average``). EAM's / UNO's ``ood_detection_evaluation*.py``
  (``process``) and RbA's ``support.py`` (``get_RbA``) score one view.
- **Refinement** (``official_claimed``), Mask2Anomaly's ``MaskFormer.semantic_inference`` and
  ``anomaly_inference.py``: a mask passes when its top class over all C outputs is a
  refinement class with probability > 0.95; the pass-masks' ``P_i m_i`` (top probability
  times sigmoid) are appended to ``sem_seg``; only when **at least two** masks pass
  (``sem_seg[19:].shape[0] > 1``) are the pixels with ``max_i P_i m_i >= 0.5`` refined; their
  score becomes 0 in the code's units (``1 - max`` times 0), i.e. ``-OfficialRule.offset``
  in anomask's. Classes: the code keeps labels 2-10 of Cityscapes (``labels < 11 & labels >
  1``), the stuff classes except road *and sidewalk* (``official_refinement_ids``).

Every difference from the default path is listed in docs/heads.md ("Protocols").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from anomask.errors import AnomaskError
from anomask.models.metadata import ModelMetadata

PROTOCOLS = ("anomask", "official")
"""``anomask``: the fast deployment path (default). ``official``: each method's official code."""

OFFICIAL_UNREFINED_CLASSES = ("road", "sidewalk")
"""Stuff classes the official Mask2Anomaly code never refines (Cityscapes labels 0 and 1)."""


@dataclass(frozen=True)
class OfficialRule:
    """How a score's official code runs it."""

    method: str
    """The paper whose code is reproduced."""
    source: str
    """Official file and function."""
    flip: bool
    """Average the score of the image and of its left-right flip."""
    offset: float
    """Official value = anomask value + ``offset`` (a constant shift: rankings are equal); the
    official refined value 0 is ``-offset`` in anomask's units."""
    refines: bool = False
    """The official code has the refinement mask (Mask2Anomaly's only)."""


_M2A = OfficialRule(
    "Mask2Anomaly (Rai et al., 2024)",
    "anomaly_utils/anomaly_inference.py (__main__) with MaskFormer.semantic_inference: 1 - max_k sem_seg[k]",
    flip=True,
    offset=1.0,
    refines=True,
)
_EAM = OfficialRule(
    "EAM (Grcić et al., 2023)",
    "Open-set-M2F mask2former/evaluation/ood_detection_evaluation.py (DenseOODDetectionEvaluator.process)",
    flip=False,
    offset=1.0,
)
_EAM_VARIANT = OfficialRule(
    "EAM (Grcić et al., 2023)",
    "no official evaluator: EAM's protocol (masks-first, one view), as ood_detection_evaluation.py",
    flip=False,
    offset=0.0,
)
_UNO = OfficialRule(
    "UNO (Delić et al., 2024)",
    "Open-set-M2F mask2former/evaluation/ood_detection_evaluation_UNO.py (DenseOODDetectionEvaluatorUNO.process)",
    flip=False,
    offset=0.0,
)
_RBA = OfficialRule("RbA (Nayal et al., 2023)", "RbA support.py (get_RbA): -tanh(sem_seg).sum(0)", False, 0.0)

OFFICIAL_RULES: dict[str, OfficialRule] = {
    "msp": _M2A,
    "aem": _M2A,
    "eam": _EAM,
    "eam_energy": _EAM_VARIANT,
    "aem_energy": _EAM_VARIANT,
    "am": _EAM_VARIANT,
    "ahm": _EAM_VARIANT,
    "uno": _UNO,
    "uno_unc": _UNO,
    "uno_no": _UNO,
    "rba": _RBA,
}
"""The official code behind each score. ``msp`` is Mask2Anomaly's score (eq. 6-7); ``eam``'s
official value is ``1 - sum_i m_i max_k P_i(k)``; UNO's and RbA's equal anomask's."""


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise AnomaskError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    return protocol


def official_rule(score: str) -> OfficialRule:
    if score not in OFFICIAL_RULES:
        raise AnomaskError(f"score {score!r} has no official protocol; valid: {', '.join(OFFICIAL_RULES)}")
    return OFFICIAL_RULES[score]


def official_refined_value(score: str) -> float:
    """The value refined pixels take under the official protocol, in anomask's units: 0 in
    the official code's. Only Mask2Anomaly's score has an official refinement; asking it of
    another score is an error (no official code to reproduce)."""
    rule = official_rule(score)
    if not rule.refines:
        raise AnomaskError(
            f"score {score!r} has no official refinement (only Mask2Anomaly's msp refines in its official code); "
            "drop '+refined' or use the anomask protocol"
        )
    return -rule.offset


def official_refinement_ids(metadata: ModelMetadata) -> list[int]:
    """The official code's refinement classes: stuff except road and sidewalk (Cityscapes
    2-10). anomask's default (``ModelMetadata.refinement_ids``) also refines sidewalk."""
    return [
        i for i, c in enumerate(metadata.classes) if not c.is_thing and c.name.lower() not in OFFICIAL_UNREFINED_CLASSES
    ]


def official_claimed(probs: Tensor, mask_logits: Tensor, refinement_lut: Tensor, confidence: float) -> Tensor:
    """``[B, H, W]`` bool: Mask2Anomaly's official refinement region. ``probs`` ``[B, N, C]``
    (softmax over all C), ``mask_logits`` ``[B, N, H, W]`` at output resolution,
    ``refinement_lut`` bool ``[C]``. Refines only images where at least two masks pass."""
    top_prob, top_class = probs.max(-1)
    passed = refinement_lut[top_class] & (top_prob > confidence)
    weight = torch.where(passed, top_prob, torch.zeros_like(top_prob))
    prob_masks = weight[..., None, None] * mask_logits.sigmoid()
    enough = passed.sum(1) >= 2
    return (prob_masks.amax(1) >= 0.5) & enough[:, None, None]


def flip_average(anomaly: Tensor, flipped_anomaly: Tensor) -> Tensor:
    """Mean of the score of the image and the score of its left-right flip, flipped back
    (``[..., H, W]``; Mask2Anomaly's ``anomaly_inference.py``)."""
    return 0.5 * (anomaly + flipped_anomaly.flip(-1))
