"""Reading one number out of the quality results (``OUT/models/<model>.json``: ``evaluate``'s
metrics dict, plus the per-pixel terms), for the claims and the report tables.

A *reference* is ``(model, score)``: a score label of ``evaluate`` (``eam``, ``msp+refined``)
or, on a per-pixel model, one of its terms (``op``, ``msm``, ``op_msm``). Subsets are ``all``,
``seen`` and ``unseen`` (the synthetic test split's anomaly groups). Missing values (a
subset without anomalies in tiny test data, a task the model has no outputs for) are NaN.
"""

from __future__ import annotations

import math
from typing import Any

TEST = "synthetic-anomaly"
VAL = "synthetic-val"
SUBSETS = ("all", "seen", "unseen")
HIGHER_IS_BETTER = {
    "ap": True,
    "auroc": True,
    "fpr95": False,
    "f1_star": True,
    "miou": True,
    "open_miou": True,
    "pq_unk": True,
    "sq_unk": True,
    "rq_unk": True,
    "pq_known": True,
    "gq": True,
    "gq_known": True,
    "gq_unknown": True,
}
PIXEL = ("ap", "auroc", "fpr95")
NAN = float("nan")

Results = dict[str, dict[str, Any]]


def pct(x: float | None) -> str:
    """A fraction as a percentage with one decimal; "—" where the number does not exist."""
    return "—" if x is None or math.isnan(x) else f"{100 * x:.1f}"


def subset_key(subset: str) -> str:
    return TEST if subset == "all" else f"{TEST} ({subset})"


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and value is not None else NAN


def test_metrics(results: Results, model: str) -> dict[str, Any]:
    return _dig(results.get(model, {}), "metrics", "datasets", TEST) or {}


def pixel(results: Results, model: str, score: str, subset: str = "all") -> dict[str, Any]:
    """The pixel metrics dict (``PixelAnomalyResult.to_dict()``) of a reference, or {}."""
    terms = _dig(results.get(model, {}), "terms", subset_key(subset), score)
    if terms is not None:
        return terms
    return _dig(test_metrics(results, model), "anomaly", subset_key(subset), score) or {}


def prior(results: Results, model: str, score: str, subset: str = "all") -> float:
    """Share of anomaly pixels among the labelled ones (the AP of a random score)."""
    table = pixel(results, model, score, subset)
    positives, negatives = table.get("positives"), table.get("negatives")
    return positives / (positives + negatives) if positives and negatives is not None else NAN


def panoptic(results: Results, model: str, method: str, group: str = "unknown") -> dict[str, Any]:
    return _dig(test_metrics(results, model), "panoptic", method, "groups", group) or {}


def value(results: Results, model: str, score: str, metric: str, subset: str = "all") -> float:
    """One number: ``ap``/``auroc``/``fpr95`` (pixel), ``f1_star`` (SMIYC components),
    ``miou`` (val split), ``open_miou``, ``pq_unk``/``sq_unk``/``rq_unk``/``pq_known`` (open-set
    panoptic, ``score`` = the method), ``gq``/``gq_known``/``gq_unknown`` (GOSS)."""
    if metric in PIXEL:
        return _number(pixel(results, model, score, subset).get(metric))
    if metric == "f1_star":
        return _number(_dig(test_metrics(results, model), "components", subset_key(subset), score, "f1_star"))
    if metric == "miou":
        return _number(_dig(results.get(model, {}), "metrics", "datasets", VAL, "semantic", "miou"))
    if metric == "open_miou":
        return _number(_dig(test_metrics(results, model), "open_set", score, "open_miou"))
    if metric in ("pq_unk", "sq_unk", "rq_unk"):
        return _number(panoptic(results, model, score).get(metric[:2]))
    if metric == "pq_known":
        return _number(panoptic(results, model, score, "known").get("pq"))
    if metric.startswith("gq"):
        return _number(_dig(test_metrics(results, model), "goss", metric))
    raise KeyError(f"unknown metric {metric!r}")


def better(metric: str, a: float, b: float) -> bool:
    """Whether ``a`` is strictly better than ``b`` (NaN is never better)."""
    if math.isnan(a) or math.isnan(b):
        return False
    return a > b if HIGHER_IS_BETTER[metric] else a < b
