"""GOSS quality GQ, GQ_kn, GQ_uk (GOSS (Hong et al., 2022), §3.2, eq. 1-2).

GOSS output is semantic for the known classes (one segment per class and image, no
instances) and clustered for the unknown class. GQ reuses the panoptic matching of
``anomask.evaluation.metrics.panoptic`` (IoU > 0.5, void handling) on segments built that way:

* known classes: every pixel of class k is one segment, in the prediction and the ground
  truth; instance ids are dropped and nothing is crowd.
* unknown (254): the ground-truth clusters are the connected components (8-connected) of the
  ground-truth unknown pixels (GOSS §1: "connectivity labeling" of the unknown classes'
  annotations); the predicted clusters are the prediction's unknown instance ids as given
  (``254 * 1000 + i``; 254 alone is one cluster).
* GQ_kn = (1/N) sum over **all** N known classes of sum IoU / (TP + FP/2 + FN/2), a class with
  no TP/FP/FN counting 0 -- eq. 1 as written and as the official GOSS code averages (it
  counts every category, unlike panopticapi, which skips absent ones). GQ_uk is the same
  quotient for the unknown class (0 when absent), GQ = lambda GQ_kn + (1 - lambda) GQ_uk
  with lambda = 0.5 (eq. 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from anomask.errors import AnomaskError
from anomask.evaluation.metrics.inputs import check_same_shape
from anomask.evaluation.metrics.panoptic import (
    CategoryCounts,
    build_segments,
    category_quality,
    match_segments,
    split_panoptic,
    thing_flags,
)
from anomask.models.metadata import UNKNOWN_ID, ClassInfo

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class GossResult:
    gq: float
    gq_known: float
    gq_unknown: float
    weight: float
    per_class: tuple[float, ...]
    """GQ of each known class, then unknown."""

    def to_dict(self) -> dict[str, object]:
        return {
            "gq": self.gq,
            "gq_known": self.gq_known,
            "gq_unknown": self.gq_unknown,
            "lambda": self.weight,
            "per_class": list(self.per_class),
        }


class GossAccumulator:
    def __init__(self, classes: Sequence[ClassInfo], weight: float = 0.5) -> None:
        if not classes:
            raise AnomaskError("GOSS quality needs the known classes")
        if not 0.0 <= weight <= 1.0:
            raise AnomaskError(f"GQ weight lambda must lie in [0, 1], got {weight}")
        self.classes = tuple(classes)
        self.weight = weight
        # Known classes are whole-class segments here, so only "unknown" keeps instances.
        self._instances_kept = np.zeros(len(self.classes) + 1, dtype=bool)
        self._instances_kept[-1] = True
        self.counts = CategoryCounts.zeros(len(self.classes) + 1)
        self.images = 0

    def update(self, prediction: np.ndarray, truth: np.ndarray, name: str = "") -> None:
        """Both maps in the panoptic int32 encoding of the shared contract."""
        check_same_shape(np.asarray(prediction), np.asarray(truth), "panoptic prediction", name)
        flags = thing_flags(self.classes)[:-1].tolist()
        pred_classes, pred_instances = split_panoptic(prediction, flags, name)
        truth_classes, _ = split_panoptic(truth, flags, name)
        self.update_labels(pred_classes, pred_instances, truth_classes, name)

    def update_labels(
        self, pred_classes: np.ndarray, pred_instances: np.ndarray, truth_classes: np.ndarray, name: str = ""
    ) -> None:
        """Prediction as (class, instance) maps; the ground truth needs only its classes
        (0..K-1, 254 unknown, 255 void): its unknown clusters are connected components."""
        truth_classes = np.asarray(truth_classes)
        check_same_shape(np.asarray(pred_classes), truth_classes, "GOSS prediction", name)
        clusters, _ = ndimage.label(truth_classes == UNKNOWN_ID, structure=_EIGHT_CONNECTED)
        truth = build_segments(truth_classes, clusters, self._instances_kept, crowd_without_instance=False, name=name)
        prediction = build_segments(
            pred_classes, pred_instances, self._instances_kept, crowd_without_instance=False, name=name
        )
        self.counts += match_segments(truth, prediction, self._instances_kept.size)
        self.images += 1

    def result(self) -> GossResult:
        if self.images == 0:
            raise AnomaskError("no images were evaluated: the dataset is empty")
        quality, _, _ = category_quality(self.counts)
        known = float(quality[:-1].mean())
        unknown = float(quality[-1])
        return GossResult(
            gq=self.weight * known + (1.0 - self.weight) * unknown,
            gq_known=known,
            gq_unknown=unknown,
            weight=self.weight,
            per_class=tuple(float(v) for v in quality),
        )
