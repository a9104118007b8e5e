"""Dense anomaly scores by name, higher = more anomalous (GPU part, exportable).

Every score is a per-pixel function of the mask-classification outputs. Classes: K known
(indices 0..K-1), the negative-objectness class at index K for K+2 models
(UNO (Delić et al., 2024), §4), no-object last. Every softmax runs over **all** C outputs;
each max below says which classes it covers.

Sign convention and EAM (Grcić et al., 2023), eq. 7: with ``a(x) = -max`` the EAM score is
``sum_i m_i (-max_k P_i(k)) <= -max_k sum_i m_i P_i(k)`` = AEM (``msp``), because a max of a
sum of non-negative terms is at most the sum of the maxima. Our scores keep the paper's
signs, so ``eam <= msp`` holds pixel-wise as written (tested on random inputs).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from anomask.errors import AnomaskError
from anomask.models.heads.checks import check_mask_outputs, check_metadata
from anomask.models.heads.evidence import MaskEvidence, gather_evidence
from anomask.models.metadata import ModelMetadata


def known_max_prob(probs: Tensor, num_classes: int) -> Tensor:
    """``max_{k<K} P_i(k)``: best known class of each mask, ``[B, N]``."""
    return probs[..., :num_classes].amax(-1)


def _mask_uncertainty(logits: Tensor, num_classes: int) -> Tensor:
    """EAM's / UNO's per-mask ``-max_{k<K} P_i(k)`` (EAM (Grcić et al., 2023), eq. 7;
    UNO (Delić et al., 2024), eq. 2)."""
    return -known_max_prob(logits.softmax(-1), num_classes)


def _mask_energy(logits: Tensor, num_classes: int) -> Tensor:
    """Energy of the K known raw class logits, ``-logsumexp_{k<K} l_i(k)``
    (EAM (Grcić et al., 2023), Table 5).

    The paper names the variant only "energy score (log-sum-exp)"; the energy score
    (Liu et al., 2020; EAM's ref. [42]) is defined on logits, so we apply it to the mask's
    known-class logits (no-object and negative logits excluded)."""
    return -torch.logsumexp(logits[..., :num_classes], dim=-1)


def _negative_objectness(logits: Tensor, num_classes: int) -> Tensor:
    """UNO's ``P_i(K+1)`` (UNO (Delić et al., 2024), eq. 3): the negative class sits at
    index K here."""
    return logits.softmax(-1)[..., num_classes]


def _mask_uno(logits: Tensor, num_classes: int) -> Tensor:
    """UNO per mask (UNO (Delić et al., 2024), eq. 1): uncertainty + negative objectness,
    softmax over all K+2."""
    return _mask_uncertainty(logits, num_classes) + _negative_objectness(logits, num_classes)


def _ensemble(evidence: MaskEvidence) -> Tensor:
    assert evidence.ensemble is not None
    return evidence.ensemble


def _aem(evidence: MaskEvidence) -> Tensor:
    return -evidence.class_scores.amax(1)


def _aem_energy(evidence: MaskEvidence) -> Tensor:
    return -torch.logsumexp(evidence.class_scores, dim=1)


def _rba(evidence: MaskEvidence) -> Tensor:
    # RbA's paper calls s_k "class logits"; its official code (support.py get_RbA on the
    # model's semantic_inference) builds them as sum_i m_i softmax(l_i)[k] with the no-object
    # column dropped after the softmax, i.e. Mask2Former's per-pixel class scores. We follow
    # the code (the published numbers come from it); for K+2 models the negative column is
    # dropped too, so "rejected by all" means by all K known classes.
    return -torch.tanh(evidence.class_scores).sum(1)


def _am(evidence: MaskEvidence) -> Tensor:
    return -torch.sigmoid(evidence.max_mask_logit)


def _ahm(evidence: MaskEvidence) -> Tensor:
    best = known_max_prob(evidence.probs, evidence.num_classes)
    batch = best.shape[0]
    flat = evidence.preferred_mask.reshape(batch, -1)
    return -best.gather(1, flat).reshape(evidence.preferred_mask.shape)


@dataclass(frozen=True)
class AnomalyScore:
    name: str
    equation: str
    pixel: Callable[[MaskEvidence], Tensor]
    per_mask: Callable[[Tensor, int], Tensor] | None = None
    """``a_i`` for ensemble scores ``sum_i m_i a_i``; None for the others."""
    needs_negative: bool = False
    floor: Callable[[int, int], float] | None = None
    """Lower bound of the score given (N masks, K classes): the value refined pixels take
    (Mask2Anomaly (Rai et al., 2024), eq. 15, zeroes ``1 - max``, which is not its lower
    bound: a sum over masks can exceed 1; ``refinement`` module). None: unbounded, refined
    pixels take the image's minimum instead."""


def _ensemble_score(
    name: str,
    equation: str,
    per_mask: Callable[[Tensor, int], Tensor],
    floor: Callable[[int, int], float],
    needs_negative: bool = False,
) -> AnomalyScore:
    return AnomalyScore(name, equation, _ensemble, per_mask, needs_negative, floor)


_AEM = AnomalyScore(
    "msp",
    "-max_{k<K} sum_i m_i P_i(k)  (AEM: EAM (Grcić et al., 2023), eq. 6; Mask2Anomaly, eq. 7, minus 1)",
    _aem,
    floor=lambda n, k: -float(n),
)

ANOMALY_SCORES: dict[str, AnomalyScore] = {
    "msp": _AEM,
    "aem": _AEM,
    "aem_energy": AnomalyScore(
        "aem_energy",
        "-logsumexp_{k<K} sum_i m_i P_i(k)  (EAM (Grcić et al., 2023), Table 5)",
        _aem_energy,
        floor=lambda n, k: -(n + math.log(k)),
    ),
    "eam": _ensemble_score(
        "eam",
        "sum_i m_i (-max_{k<K} P_i(k))  (EAM (Grcić et al., 2023), eq. 7)",
        _mask_uncertainty,
        lambda n, k: -float(n),
    ),
    "eam_energy": AnomalyScore(
        "eam_energy",
        "sum_i m_i (-logsumexp_{k<K} l_i(k))  (EAM (Grcić et al., 2023), Table 5)",
        _ensemble,
        _mask_energy,
    ),
    "uno": _ensemble_score(
        "uno",
        "sum_i m_i (-max_{k<K} P_i(k) + P_i(K))  (UNO (Delić et al., 2024), eq. 1-3, 8)",
        _mask_uno,
        lambda n, k: -float(n),
        needs_negative=True,
    ),
    "uno_unc": _ensemble_score(
        "uno_unc",
        "sum_i m_i (-max_{k<K} P_i(k))  (UNO (Delić et al., 2024), eq. 2, 8)",
        _mask_uncertainty,
        lambda n, k: -float(n),
        needs_negative=True,
    ),
    "uno_no": _ensemble_score(
        "uno_no",
        "sum_i m_i P_i(K)  (UNO (Delić et al., 2024), eq. 3, 8)",
        _negative_objectness,
        lambda n, k: 0.0,
        needs_negative=True,
    ),
    "rba": AnomalyScore(
        "rba", "-sum_{k<K} tanh(sum_i m_i P_i(k))  (RbA (Nayal et al., 2023))", _rba, floor=lambda n, k: -float(k)
    ),
    "am": AnomalyScore("am", "-max_i m_i  (EAM (Grcić et al., 2023), eq. 4)", _am, floor=lambda n, k: -1.0),
    "ahm": AnomalyScore(
        "ahm", "-max_{k<K} P_{argmax_i m_i}(k)  (EAM (Grcić et al., 2023), eq. 5)", _ahm, floor=lambda n, k: -1.0
    ),
}
"""``aem`` is another name for ``msp``. ``uno_unc`` equals ``eam`` on the same K+2 model."""


def get_score(name: str, metadata: ModelMetadata) -> AnomalyScore:
    """The score named ``name``, checked against the model (UNO scores need K+2 outputs)."""
    if name not in ANOMALY_SCORES:
        raise AnomaskError(f"unknown anomaly score {name!r}; valid: {', '.join(ANOMALY_SCORES)}")
    score = ANOMALY_SCORES[name]
    if score.needs_negative and not metadata.architecture.negative_class:
        raise AnomaskError(
            f"score {name!r} needs a negative-objectness class (K+2 model, UNO (Delić et al., 2024)); this "
            "model has K+1 outputs (architecture.negative_class is false)"
        )
    return score


def evidence_for(score: AnomalyScore, pred_logits: Tensor, mask_logits: Tensor, num_classes: int) -> MaskEvidence:
    per_mask = score.per_mask(pred_logits, num_classes) if score.per_mask is not None else None
    return gather_evidence(pred_logits, mask_logits, num_classes, per_mask)


def anomaly_score(name: str, pred_logits: Tensor, mask_logits: Tensor, metadata: ModelMetadata) -> Tensor:
    """Eager entry point: the score ``name`` at the resolution of ``mask_logits``
    (``[B, N, H, W]``, upsample first with ``upsample_mask_logits`` for full resolution)."""
    check_metadata(metadata)
    check_mask_outputs(pred_logits, mask_logits, metadata)
    score = get_score(name, metadata)
    return score.pixel(evidence_for(score, pred_logits, mask_logits, metadata.num_classes))
