"""The refinement mask of Mask2Anomaly (Rai et al., 2024), §4.4, eq. 15 — GPU part, exportable.

A pixel is *claimed* when a confident mask of a refinement class covers it:
``C_i = 1`` when mask i's top class (softmax over all C outputs) is in the refinement set and
its probability exceeds ``confidence`` (0.95); ``M_i = sigmoid(mask logit) > 0.5``;
claimed = ``max_i C_i M_i``. ``R_M = 1 - claimed`` then multiplies the score.

Paper vs. code: the paper's formula writes ``R_M = C . M`` with C selecting "things or road",
its text (and the official code, ``semantic_inference``) zero the pixels of the unwanted
*stuff* masks instead; we follow the text and code. The code binarises ``P_i * m_i >= 0.5``
rather than ``m_i > 0.5``; we follow the paper (the two differ only for m_i in
(0.5, 0.53) since P_i > 0.95). The class set comes from ``ModelMetadata.refinement_ids()``
(default: stuff except road; the official Cityscapes code also spares sidewalk — set
``refinement_classes`` to reproduce it).

Refined value: the code multiplies ``1 - max_k S_k`` by zero. That is not the score's floor:
``S_k = sum_i m_i P_i(k)`` is a sum over masks and can exceed 1, so ``1 - max`` can be
negative and some unrefined pixels rank below the refined ones. anomask gives claimed
pixels the score's lower bound instead (``AnomalyScore.floor``), which ranks them below
every unclaimed pixel as the paper intends. The code also refines only when at least two
masks pass (``sem_seg[19:].shape[0] > 1`` in ``anomaly_inference.py``); anomask refines with
one. ``FusedHeads(protocol="official")`` reproduces the code (``official.official_claimed``);
docs/heads.md lists both and which one reproduces the published tables.
"""

from __future__ import annotations

import torch
from torch import Tensor

from anomask.models.heads.scores import AnomalyScore


def refinement_class_filter(probs: Tensor, refinement_lut: Tensor, confidence: float) -> Tensor:
    """``[B, N]`` bool: the mask's top class (over all C) is a refinement class with
    probability above ``confidence``. ``refinement_lut`` is a bool ``[C]`` lookup."""
    top_prob, top_class = probs.max(-1)
    return refinement_lut[top_class] & (top_prob > confidence)


def claim_logit(mask_logits: Tensor, class_filter: Tensor) -> Tensor:
    """``[B, H, W]`` largest mask logit among the filtered masks (the dtype's lowest value
    where none); a pixel is claimed where it is > 0, i.e. some ``sigmoid(logit) > 0.5``."""
    lowest = torch.finfo(mask_logits.dtype).min
    return mask_logits.masked_fill(~class_filter[..., None, None], lowest).amax(1)


def claimed_pixels(mask_logits: Tensor, class_filter: Tensor) -> Tensor:
    """``[B, H, W]`` bool: some filtered mask has ``sigmoid(logit) > 0.5``."""
    return claim_logit(mask_logits, class_filter) > 0


def refine(score: Tensor, claimed: Tensor, spec: AnomalyScore, num_masks: int, num_classes: int) -> Tensor:
    """Eq. 15 with a floor instead of zero (see the module docstring)."""
    if spec.floor is not None:
        floor = torch.full_like(score, spec.floor(num_masks, num_classes))
    else:
        floor = score.amin(dim=(-2, -1), keepdim=True).expand_as(score)
    return torch.where(claimed, floor, score)
