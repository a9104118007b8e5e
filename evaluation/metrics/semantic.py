"""Closed-set mIoU and open-set open-IoU (Mask2Anomaly (Rai et al., 2024), §7.2, eq. 25-26), streamed through
confusion matrices (memory: (K+1)^2 integers, whatever the dataset size).

* Closed-set mIoU: K x K confusion over pixels whose ground truth is a known class
  (0..K-1); ignore (255) and unknown (254) pixels are left out, as in the closed-set column
  of Mask2Anomaly, Table 3. IoU_c = TP / (TP + FP + FN); the mean skips classes that neither
  occur nor are predicted (0/0), the Cityscapes convention.
* Open-IoU: pixels whose anomaly score is >= ``threshold`` are re-labelled "unknown" (index
  K), ground-truth 254 is "unknown" too, and the (K+1) x (K+1) confusion gives, for each known
  class a, FP_a^OOD = every pixel predicted a whose truth is another class *or unknown*, and
  FN_a^OOD = every pixel of a predicted as another class *or unknown* (eq. 25). open-IoU_a =
  TP_a / (TP_a + FP_a^OOD + FN_a^OOD) (eq. 26); the mean runs over the known classes only, so
  an ideal open-set model has open-mIoU = mIoU.
* The threshold is the anomaly score's threshold at 95 % TPR taken on a *different* split
  (Mask2Anomaly, §7.4: StreetHazards t5 uses t6's threshold and vice versa; the overall
  number is the image-weighted mean of the two): pass ``PixelAnomalyResult.threshold95`` of
  the other split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anomask.errors import AnomaskError
from anomask.evaluation.metrics.inputs import (
    check_class_ids,
    check_finite_scores,
    check_integer,
    check_same_shape,
    where,
)
from anomask.models.metadata import IGNORE_ID, UNKNOWN_ID


class ConfusionMatrix:
    """``counts[truth, prediction]`` over ``num_classes`` classes."""

    def __init__(self, num_classes: int) -> None:
        if num_classes < 1:
            raise AnomaskError(f"num_classes must be at least 1, got {num_classes}")
        self.num_classes = num_classes
        self.counts = np.zeros((num_classes, num_classes), dtype=np.int64)

    def add(self, truth: np.ndarray, prediction: np.ndarray) -> None:
        """Add pixel pairs already restricted to valid pixels (both in 0..num_classes-1)."""
        n = self.num_classes
        flat = truth.astype(np.int64) * n + prediction.astype(np.int64)
        self.counts += np.bincount(flat, minlength=n * n).reshape(n, n)

    def iou(self) -> np.ndarray:
        """Per-class IoU; NaN where a class neither occurs nor is predicted."""
        tp = np.diag(self.counts).astype(np.float64)
        union = self.counts.sum(axis=0) + self.counts.sum(axis=1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / np.maximum(union, 1), np.nan)


def _mean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


def _check_prediction(prediction: np.ndarray, truth: np.ndarray, num_classes: int, name: str) -> None:
    check_same_shape(prediction, truth, "semantic prediction", name)
    check_integer(prediction, "semantic prediction", name)
    check_integer(truth, "semantic ground truth", name)
    if prediction.size and (prediction.min() < 0 or prediction.max() >= num_classes):
        raise AnomaskError(
            f"semantic prediction holds class ids outside 0..{num_classes - 1}{where(name)} "
            f"(found {int(prediction.min())}..{int(prediction.max())})"
        )


@dataclass(frozen=True)
class SemanticResult:
    iou: tuple[float, ...]
    miou: float

    def to_dict(self) -> dict[str, object]:
        return {"miou": self.miou, "iou": list(self.iou)}


class SemanticAccumulator:
    """Closed-set mIoU over known classes 0..K-1."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.confusion = ConfusionMatrix(num_classes)
        self.images = 0

    def update(self, prediction: np.ndarray, truth: np.ndarray, name: str = "") -> None:
        """``prediction`` class ids 0..K-1; ``truth`` 0..K-1, 254 unknown, 255 ignore."""
        prediction = np.asarray(prediction)
        truth = np.asarray(truth)
        _check_prediction(prediction, truth, self.num_classes, name)
        check_class_ids(truth, self.num_classes, "semantic ground truth", name)
        known = truth < self.num_classes
        self.confusion.add(truth[known], prediction[known])
        self.images += 1

    def result(self) -> SemanticResult:
        if self.images == 0:
            raise AnomaskError("no images were evaluated: the dataset is empty")
        iou = self.confusion.iou()
        return SemanticResult(iou=tuple(float(v) for v in iou), miou=_mean(iou))


@dataclass(frozen=True)
class OpenSetResult:
    iou: tuple[float, ...]
    miou: float
    open_iou: tuple[float, ...]
    open_miou: float
    threshold: float

    def to_dict(self) -> dict[str, object]:
        return {
            "miou": self.miou,
            "open_miou": self.open_miou,
            "iou": list(self.iou),
            "open_iou": list(self.open_iou),
            "threshold": self.threshold,
        }


class OpenSetAccumulator:
    """Closed-set mIoU and open-IoU of one score at a fixed anomaly threshold."""

    def __init__(self, num_classes: int, threshold: float) -> None:
        self.num_classes = num_classes
        self.threshold = float(threshold)
        self.closed = SemanticAccumulator(num_classes)
        self.open = ConfusionMatrix(num_classes + 1)

    def update(self, prediction: np.ndarray, scores: np.ndarray, truth: np.ndarray, name: str = "") -> None:
        """``prediction`` closed-set class ids 0..K-1, ``scores`` anomaly score map (higher =
        more anomalous), ``truth`` 0..K-1 known, 254 unknown, 255 ignore."""
        scores = np.asarray(scores)
        truth = np.asarray(truth)
        check_same_shape(scores, truth, "anomaly score map", name)
        check_finite_scores(scores, name)
        self.closed.update(prediction, truth, name)
        k = self.num_classes
        valid = truth != IGNORE_ID
        open_truth = np.where(truth == UNKNOWN_ID, k, truth)[valid]
        open_prediction = np.where(scores >= self.threshold, k, prediction)[valid]
        self.open.add(open_truth, open_prediction)

    def result(self) -> OpenSetResult:
        closed = self.closed.result()
        open_iou = self.open.iou()[: self.num_classes]
        return OpenSetResult(
            iou=closed.iou,
            miou=closed.miou,
            open_iou=tuple(float(v) for v in open_iou),
            open_miou=_mean(open_iou),
            threshold=self.threshold,
        )
