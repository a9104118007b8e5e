"""The papers' claims that ``anomask bench quality`` can test, and their verdicts.

Each claim is a list of comparisons between two references (``anomask.bench.quality.metrics``) on one
metric and anomaly subset; it is *reproduced* when every comparison goes the paper's way.
A comparison counts only when it is resolved: an AP comparison where both sides stay
below ``NEAR_PRIOR`` times the anomaly prior is chance (the models have not learnt to find
those anomalies), and with a seed-to-seed spread given (``noise``, from a second seed) a
difference within it is unresolved. A claim that is not reproduced gets one sentence on
why: the claim's own ``likely`` cause when a comparison clearly goes the other way, else
chance level or noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from anomask.bench.quality.metrics import Results, better, pct, prior, value

NEAR_PRIOR = 2.0
"""APs below this multiple of the anomaly prior count as 'not learnt'."""
COMPARABLE = 0.25
"""Relative AP gap within which two scores 'perform comparably' (EAM (Grcić et al., 2023), §5.1, Table 5)."""

Ref = tuple[str, str]


@dataclass(frozen=True)
class Comparison:
    """``a`` beats ``b`` on ``metric`` in ``subset``; ``kind="comparable"``: within
    ``COMPARABLE`` of each other; ``kind="gain"``: ``a - b`` is larger on ``subset`` than on
    ``other`` (``other`` a second subset)."""

    a: Ref
    b: Ref
    metric: str = "ap"
    subset: str = "all"
    kind: str = "beats"
    other: str = ""

    def values(self, results: Results) -> tuple[float, float]:
        a = value(results, *self.a, self.metric, self.subset)
        b = value(results, *self.b, self.metric, self.subset)
        if self.kind != "gain":
            return a, b
        return a - b, value(results, *self.a, self.metric, self.other) - value(
            results, *self.b, self.metric, self.other
        )

    def holds(self, results: Results) -> bool:
        a, b = self.values(results)
        if self.kind == "comparable":
            return not (math.isnan(a) or math.isnan(b)) and abs(a - b) <= COMPARABLE * max(abs(a), abs(b))
        if self.kind == "gain":
            return not (math.isnan(a) or math.isnan(b)) and a > b
        return better(self.metric, a, b)

    def describe(self, results: Results) -> str:
        a, b = self.values(results)
        name = {
            "ap": "AP",
            "fpr95": "FPR95",
            "auroc": "AUROC",
            "miou": "mIoU",
            "open_miou": "open-IoU",
            "pq_unk": "PQ_unk",
        }.get(self.metric, self.metric)
        where = "" if self.subset == "all" else f" [{self.subset}]"
        left, right = f"{self.a[0]}:{self.a[1]}", f"{self.b[0]}:{self.b[1]}"
        if self.kind == "gain":
            return f"{name} gain {left} − {right}: {self.subset} {pct(a)} vs {self.other} {pct(b)}"
        relation = "≈" if self.kind == "comparable" else ("<" if self.metric == "fpr95" else ">")
        return f"{name}{where} {left} {pct(a)} {relation} {right} {pct(b)}"


@dataclass(frozen=True)
class Claim:
    id: str
    source: str
    text: str
    comparisons: tuple[Comparison, ...]
    likely: str
    """Most likely reason, in this setting, when the claim fails clearly (not noise, not chance)."""


def _beats(
    a: Ref, b: Ref, metrics: tuple[str, ...] = ("ap",), subsets: tuple[str, ...] = ("all",)
) -> tuple[Comparison, ...]:
    return tuple(Comparison(a, b, metric, subset) for metric in metrics for subset in subsets)


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "eam-t5-eam",
        "EAM (Grcić et al., 2023), Table 5",
        "M2F-EAM outperforms M2F-AEM (max-score), i.e. the ensemble of mask anomaly scores "
        "beats the anomaly score of the ensemble",
        _beats(("m2f", "eam"), ("m2f", "msp")),
        "with few, soft masks per pixel the mask-wise maxima are not sharper than the pixel-wise one",
    ),
    Claim(
        "eam-t5-masks",
        "EAM (Grcić et al., 2023), Table 5",
        "both mask-level scores (AEM, EAM) outperform the per-pixel max-softmax baseline",
        _beats(("m2f", "eam"), ("pp", "msm")) + _beats(("m2f", "msp"), ("pp", "msm")),
        "the per-pixel network learns the small synthetic scenes faster than the mask transformer",
    ),
    Claim(
        "eam-t5-ensembles",
        "EAM (Grcić et al., 2023), Table 5",
        "the ensembles (AEM, EAM) outperform M2F-AM and M2F-AHM",
        _beats(("m2f", "eam"), ("m2f", "am"))
        + _beats(("m2f", "eam"), ("m2f", "ahm"))
        + _beats(("m2f", "msp"), ("m2f", "am"))
        + _beats(("m2f", "msp"), ("m2f", "ahm")),
        "an anomaly that no mask claims stands out in the mask maximum (AM) already, while the class posteriors "
        "are still weak",
    ),
    Claim(
        "eam-t5-energy",
        "EAM (Grcić et al., 2023), Table 5",
        "the energy score (log-sum-exp) performs comparably to the hard maximum, for AEM and EAM",
        (
            Comparison(("m2f", "aem_energy"), ("m2f", "msp"), kind="comparable"),
            Comparison(("m2f", "eam_energy"), ("m2f", "eam"), kind="comparable"),
        ),
        "the class logits of a briefly trained model are small, so log-sum-exp is dominated by the number of "
        "classes, not the winner",
    ),
    Claim(
        "eam-3.4-void",
        "EAM (Grcić et al., 2023), §3.4, Table 8",
        "fine-tuning with pasted negatives labelled void improves EAM (higher AP, lower FPR95)",
        _beats(("m2f-eam", "eam"), ("m2f", "eam"), ("ap", "fpr95")),
        "the void supervision reaches few mask cells per pasted object at this input size",
    ),
    Claim(
        "noisy-t3-op",
        "noisy negatives (Bevandić et al., 2022), Table 3",
        "the outlier head (OP) trained on noisy negatives beats the max-softmax (MSM) of a model "
        "trained without them (higher AP, lower FPR95)",
        _beats(("pp-noisy", "op"), ("pp", "msm"), ("ap", "fpr95")),
        "the pasted boxes are scikit-image photos unlike the test objects' outlines, and the head overfits their "
        "box shape",
    ),
    Claim(
        "noisy-t3-fusion",
        "noisy negatives (Bevandić et al., 2022), Table 3",
        "multiplying OP by MSM (OP×MSM) raises AP over OP alone",
        _beats(("pp-noisy", "op_msm"), ("pp-noisy", "op")),
        "MSM is high on every class border of a briefly trained classifier, so the product adds border false positives",
    ),
    Claim(
        "uno-t8-negatives",
        "UNO (Delić et al., 2024), Table 8",
        "training with negatives improves the uncertainty score: s_Unc of the K+2 model beats "
        "the K+1 model, on seen (A) and unseen (B) anomalies",
        _beats(("m2f-uno", "uno_unc"), ("m2f", "eam"), subsets=("seen", "unseen")),
        "the fine-tune moves the known-class posteriors little in few iterations; the negative class absorbs the "
        "pasted objects",
    ),
    Claim(
        "uno-t8-objectness",
        "UNO (Delić et al., 2024), Table 8",
        "s_NO outperforms s_Unc on seen (A) and unseen (B) anomalies",
        _beats(("m2f-uno", "uno_no"), ("m2f-uno", "uno_unc"), subsets=("seen", "unseen")),
        "negative objectness does not transfer from the pasted objects to these anomalies",
    ),
    Claim(
        "uno-t5-t8-uno",
        "UNO (Delić et al., 2024), Tables 5, 8",
        "s_UNO outperforms both its components on seen and unseen anomalies",
        _beats(("m2f-uno", "uno"), ("m2f-uno", "uno_no"), subsets=("seen", "unseen"))
        + _beats(("m2f-uno", "uno"), ("m2f-uno", "uno_unc"), subsets=("seen", "unseen")),
        "one term is much weaker than the other here, and the sum inherits its false positives (the "
        "synthetic-negative rows of UNO (Delić et al., 2024), Table 5, show the same when a term is weak)",
    ),
    Claim(
        "uno-t8-unseen",
        "UNO (Delić et al., 2024), Table 8",
        "s_Unc contributes most on unseen anomalies: UNO's gain over s_NO is larger on unseen (B) than on seen (A)",
        (Comparison(("m2f-uno", "uno"), ("m2f-uno", "uno_no"), "ap", "unseen", "gain", "seen"),),
        "negative objectness already covers the unseen objects about as well as the seen ones",
    ),
    Claim(
        "mask2anomaly-t5c-gma",
        "Mask2Anomaly (Rai et al., 2024), Table 5(c)",
        "global masked attention beats masked attention without other components: higher mIoU and AuPRC, lower FPR95",
        _beats(("gma", "msp"), ("m2f", "msp"), ("ap", "fpr95", "miou")),
        "attending to each mask's complement helps only once masks are sharp; after a few hundred iterations "
        "they are not",
    ),
    Claim(
        "mask2anomaly-t5a-all",
        "Mask2Anomaly (Rai et al., 2024), Table 5(a)",
        "Mask2Anomaly (GMA + contrastive loss + refinement mask) far outperforms Mask2Former's MSP",
        _beats(("gma-cl", "msp+refined"), ("m2f", "msp"), ("ap", "fpr95")),
        "the components below did not help in this setting",
    ),
    Claim(
        "mask2anomaly-t5a-cl",
        "Mask2Anomaly (Rai et al., 2024), Table 5(a)",
        "removing the contrastive loss hurts (mostly FPR95)",
        _beats(("gma-cl", "msp+refined"), ("gma", "msp+refined"), ("ap", "fpr95")),
        "AnomalyMix pastes few outlier pixels in a short fine-tune, and the backbone is frozen in that stage",
    ),
    Claim(
        "mask2anomaly-t5a-gma",
        "Mask2Anomaly (Rai et al., 2024), Table 5(a)",
        "removing global masked attention hurts (mostly AuPRC)",
        _beats(("gma-cl", "msp+refined"), ("m2f-cl", "msp+refined"), ("ap", "fpr95")),
        "attending to each mask's complement helps only once masks are sharp; after a few hundred iterations "
        "they are not",
    ),
    Claim(
        "mask2anomaly-t5a-rm",
        "Mask2Anomaly (Rai et al., 2024), Table 5(a)",
        "the refinement mask improves AuPRC and FPR95",
        _beats(("gma-cl", "msp+refined"), ("gma-cl", "msp"), ("ap", "fpr95")),
        "confident stuff masks also cover anomalies on the road border and sidewalk, which the refinement then hides",
    ),
    Claim(
        "mask2anomaly-t3-openiou",
        "Mask2Anomaly (Rai et al., 2024), Table 3",
        "Mask2Anomaly's open-set mIoU exceeds Mask2Former's (MSP)",
        _beats(("gma-cl", "msp+refined"), ("m2f", "msp"), ("open_miou",)),
        "at a 95 % TPR threshold the weaker scores mark many inlier pixels unknown, which costs more than the "
        "anomalies gain",
    ),
    Claim(
        "mask2anomaly-t8-mining",
        "Mask2Anomaly (Rai et al., 2024), Table 8",
        "mining unknown instances beats plain connected components for unknown PQ",
        _beats(("gma-cl", "mining"), ("gma-cl", "components"), ("pq_unk",)),
        "the anomalies are single small objects, which connected components already separate",
    ),
    Claim(
        "mask2anomaly-t8-gma",
        "Mask2Anomaly (Rai et al., 2024), Table 8",
        "without global masked attention, mining's unknown PQ drops",
        _beats(("gma-cl", "mining"), ("m2f-cl", "mining"), ("pq_unk",)),
        "attending to each mask's complement helps only once masks are sharp; after a few hundred iterations "
        "they are not",
    ),
    Claim(
        "mask2anomaly-t4-eam",
        "Mask2Anomaly (Rai et al., 2024), Table 4",
        "Mask2Anomaly (mining) beats EAM-style open-set panoptic (EAM (Grcić et al., 2023), §4.2) for unknown PQ",
        _beats(("gma-cl", "mining"), ("m2f", "eam"), ("pq_unk",)),
        "the EAM rule (anomalous pixels to their preferred mask) suits small objects that one mask covers",
    ),
)


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    reproduced: bool
    details: tuple[str, ...]
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.claim.id,
            "source": self.claim.source,
            "claim": self.claim.text,
            "verdict": "reproduced" if self.reproduced else "not reproduced",
            "details": list(self.details),
            "why": self.why,
        }


def _status(comparison: Comparison, results: Results, noise: dict[str, float] | None) -> str:
    """``holds``, ``fails``, ``missing``, ``chance`` (an AP comparison where both sides stay below
    ``NEAR_PRIOR`` x the anomaly prior) or ``noise`` (a difference within the seed-to-seed spread)."""
    a, b = comparison.values(results)
    if math.isnan(a) or math.isnan(b):
        return "missing"
    if comparison.metric == "ap":
        subsets = {comparison.subset, comparison.other} - {""}
        pairs = [
            (value(results, *ref, "ap", s), prior(results, *ref, s))
            for ref in (comparison.a, comparison.b)
            for s in subsets
        ]
        if all(ap < NEAR_PRIOR * p for ap, p in pairs):
            return "chance"
    spread = (noise or {}).get(comparison.metric)
    if comparison.kind == "beats" and spread is not None and abs(a - b) <= spread:
        return "noise"
    return "holds" if comparison.holds(results) else "fails"


MARKS = {"holds": "✓", "fails": "✗", "missing": "?", "chance": "≈ chance:", "noise": "≈ noise:"}


def judge(claim: Claim, results: Results, noise: dict[str, float] | None = None) -> Verdict:
    """Reproduced when every comparison holds clearly. ``noise``: metric -> seed-to-seed spread
    (absolute) within which a difference counts as unresolved."""
    statuses = [_status(c, results, noise) for c in claim.comparisons]
    details = tuple(f"{MARKS[s]} {c.describe(results)}" for s, c in zip(statuses, claim.comparisons))
    if all(s == "holds" for s in statuses):
        return Verdict(claim, True, details, "")
    if "missing" in statuses:
        why = "a number it needs is missing (a model or task was not scored)"
    elif "fails" in statuses:
        why = f"probably {claim.likely}"
    elif "chance" in statuses:
        level = max(
            prior(results, *ref, s) for c in claim.comparisons for ref in (c.a, c.b) for s in {c.subset, c.other} - {""}
        )
        why = (
            f"the APs compared stay below {NEAR_PRIOR:g}x the anomaly prior ({100 * level:.1f} %): the models have not "
            "learnt to find these anomalies at this budget, so their order is chance"
        )
    else:
        why = "the differences are within the seed-to-seed noise"
    return Verdict(claim, False, details, why)


def judge_all(results: Results, noise: dict[str, float] | None = None) -> list[Verdict]:
    return [judge(claim, results, noise) for claim in CLAIMS]
