"""Threshold calibration for open-set semantic segmentation
(Mask2Anomaly (Rai et al., 2024), §5) — CPU, numpy.

Given validation anomaly scores and anomaly labels (0 inlier, 1 anomaly, 255 ignored), the
threshold at a target true-positive rate is the largest ``t`` such that
``#(score > t and label 1) / #(label 1) >= tpr`` — the open-set map marks ``score > t``. With
``n = ceil(tpr * P)`` and ``s_n`` the n-th largest anomaly score that is ``t = nextafter(s_n,
-inf)`` in float32, so ``score > t`` equals ``score >= s_n`` (the ``roc_curve`` convention of
the EAM code). Only the anomaly pixels decide it, so ``TprCalibrator`` streams over a dataset
keeping those alone. Thresholds are stored as ``ModelMetadata.thresholds["<key>@tpr95"]``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from anomask.errors import AnomaskError
from anomask.models.metadata import IGNORE_ID, ModelMetadata


def threshold_key(score: str, refine: bool = False, tpr: float = 0.95) -> str:
    """``"eam@tpr95"``, ``"msp+refined@tpr95"``, ``"uno@tpr99.5"``."""
    return f"{score}{'+refined' if refine else ''}@tpr{tpr * 100:g}"


def _check_tpr(tpr: float) -> None:
    if not 0.0 < tpr <= 1.0:
        raise AnomaskError(f"target TPR must lie in (0, 1], got {tpr}")


class TprCalibrator:
    """Accumulates the scores of anomaly pixels over many images; then thresholds."""

    def __init__(self) -> None:
        self._positives: list[np.ndarray] = []
        self._negatives = 0

    def update(self, scores: np.ndarray, labels: np.ndarray) -> None:
        scores = np.asarray(scores)
        labels = np.asarray(labels)
        if scores.shape != labels.shape:
            raise AnomaskError(f"scores {scores.shape} and anomaly labels {labels.shape} differ in shape")
        bad = ~np.isin(labels, (0, 1, IGNORE_ID))
        if bad.any():
            raise AnomaskError(
                f"anomaly labels must be 0, 1 or {IGNORE_ID}; found {np.unique(labels[bad])[:5].tolist()}"
            )
        positives = scores[labels == 1].astype(np.float32)
        if np.isnan(positives).any() or np.isnan(scores[labels == 0]).any():
            raise AnomaskError("anomaly scores contain NaN")
        self._positives.append(positives)
        self._negatives += int((labels == 0).sum())

    @property
    def num_positives(self) -> int:
        return sum(p.size for p in self._positives)

    def threshold(self, tpr: float = 0.95) -> float:
        _check_tpr(tpr)
        positives = np.concatenate(self._positives) if self._positives else np.zeros(0, np.float32)
        if positives.size == 0:
            raise AnomaskError("no anomaly pixels (label 1) in the calibration data: cannot set a TPR threshold")
        # Guard against 0.95 * 20 = 19.000000000000004 rounding up to 20.
        needed = min(positives.size, max(1, math.ceil(tpr * positives.size - 1e-9)))
        nth_largest = np.partition(positives, positives.size - needed)[positives.size - needed]
        return float(np.nextafter(np.float32(nth_largest), np.float32(-np.inf)))

    def thresholds(self, score: str, refine: bool = False, tprs: Iterable[float] = (0.95,)) -> dict[str, float]:
        return {threshold_key(score, refine, tpr): self.threshold(tpr) for tpr in tprs}


def threshold_at_tpr(scores: np.ndarray, labels: np.ndarray, tpr: float = 0.95) -> float:
    """One-shot version of ``TprCalibrator`` for arrays already in memory."""
    calibrator = TprCalibrator()
    calibrator.update(scores, labels)
    return calibrator.threshold(tpr)


def with_thresholds(metadata: ModelMetadata, thresholds: dict[str, float]) -> ModelMetadata:
    """A copy of ``metadata`` with ``thresholds`` merged into its calibrated thresholds."""
    return replace(metadata, thresholds={**metadata.thresholds, **thresholds})
