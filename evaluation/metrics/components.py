"""Component-level anomaly metrics of SMIYC (Chan et al., 2021): sIoU, PPV and F1* as
Mask2Anomaly (Rai et al., 2024), §7.2, eq. 22-24, writes them.

Definitions (K: ground-truth anomaly components, K^: predicted components)
-----------------------------------------------------------------------------
* sIoU(k) = |k ∩ K^(k)| / |(k ∪ K^(k)) \\ A(k)|, K^(k) the union of the predicted components
  that touch k, A(k) the pixels of K^(k) that lie in *other* ground-truth components
  (the adjustment term: one prediction covering two objects is not punished twice).
* PPV(k^) = |k^ ∩ K(k^)| / |k^|, K(k^) the union of the ground-truth components that touch
  k^ (the fraction of a predicted component that lies on some ground-truth anomaly).
* For each tau in {0.25, 0.30, ..., 0.75}: a ground-truth component is a TP when
  sIoU >= tau, else an FN; a predicted component is an FP when PPV < tau.
  F1(tau) = 2TP / (2TP + FN + FP); F1* = the mean of F1(tau) over the 11 taus.
* sIoU and PPV are averaged over all components of the dataset (component-weighted, not
  per image), TP/FN/FP are summed over the dataset before F1.

Which details follow the official SMIYC code (``road_anomaly_benchmark``,
``metrics/instance_segmentation.py``) rather than the paper text
--------------------------------------------------------------------
* TP is ``sIoU >= tau`` and FP is ``PPV < tau`` (Mask2Anomaly: ``> tau`` and ``<= tau``); the
  published SMIYC numbers come from the code.
* PPV is |k^ ∩ K(k^)| / |k^| (the code's ``prec_pred``); an older version of the code
  counted FPs with a symmetric sIoU of the prediction instead.
* Components are 8-connected (3x3 structuring element).
* Before components are taken, predicted pixels on ignore (255) are cleared. Predicted
  components smaller than ``min_predicted_size`` pixels are dropped (500 anomaly track,
  50 obstacle track). Ground-truth components smaller than ``min_gt_size`` (100 / 10) become
  ignore. Every count is then taken inside the region of interest (label != 255 after that),
  so a predicted component's size is its size inside the region of interest.
* The binary prediction: SMIYC thresholds the scores at the pixel-F1-optimal threshold of
  the dataset's PR curve, i.e. two passes over the data. We take that threshold from
  ``PixelAnomalyResult.best_f1_threshold`` and predict ``score >= threshold``, so the binary
  map is exactly the best pixel-F1 operating point of our exact curve (whose points count
  ``score >= t``). SMIYC's instancer predicts ``score > threshold`` with a threshold read off
  its binned curve; the two differ only on pixels scored exactly at the threshold.

Memory: per image only connected-component labels; the dataset totals are a handful of sums
and counts per tau.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from anomask.errors import AnomaskError
from anomask.evaluation.metrics.inputs import check_anomaly_labels, check_finite_scores, check_same_shape, where

SMIYC_TAUS: tuple[float, ...] = tuple(float(t) for t in np.linspace(0.25, 0.75, 11))
"""The SMIYC code's ``np.linspace`` values, bit for bit: its 0.6 is 0.6000000000000001, so a
component with sIoU exactly 0.6 is not a TP at that tau, as in the published numbers."""
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)
REFERENCE_AREA = 1024 * 2048
"""Cityscapes-size frames (Fishyscapes, Lost&Found; RoadAnomaly21 is of that order), the
scale of the SMIYC component sizes."""


@dataclass(frozen=True)
class ComponentSettings:
    """Minimum component sizes of one SMIYC track, in pixels."""

    min_predicted_size: int
    min_gt_size: int
    taus: tuple[float, ...] = SMIYC_TAUS

    def scaled(self, height: int, width: int) -> ComponentSettings:
        """The sizes scaled by image area from 1024x2048 (at least 1 pixel): for data far
        smaller than the benchmarks' frames, e.g. the synthetic default at 256x512 (500 / 100
        px -> 31 / 6 px), where the official sizes would erase most objects."""
        ratio = height * width / REFERENCE_AREA
        return replace(
            self,
            min_predicted_size=max(1, round(self.min_predicted_size * ratio)),
            min_gt_size=max(1, round(self.min_gt_size * ratio)),
        )


ANOMALY_TRACK = ComponentSettings(min_predicted_size=500, min_gt_size=100)
"""SMIYC ``SegEval-AnomalyTrack``: RoadAnomaly21 and Fishyscapes Lost&Found in the SMIYC code."""
OBSTACLE_TRACK = ComponentSettings(min_predicted_size=50, min_gt_size=10)
"""SMIYC ``SegEval-ObstacleTrack``: RoadObstacle21 and Lost&Found in the SMIYC code."""
NO_SIZE_LIMITS = ComponentSettings(min_predicted_size=0, min_gt_size=0)


@dataclass(frozen=True)
class ImageComponents:
    """sIoU of every ground-truth component and PPV of every predicted component of one image."""

    siou: np.ndarray
    ppv: np.ndarray


def image_components(
    predicted: np.ndarray, anomaly: np.ndarray, settings: ComponentSettings, name: str = ""
) -> ImageComponents:
    """sIoU and PPV of one image's components; ``predicted`` is a boolean anomaly mask."""
    predicted = np.asarray(predicted, dtype=bool)
    anomaly = np.asarray(anomaly)
    check_same_shape(predicted, anomaly, "predicted anomaly mask", name)
    check_anomaly_labels(anomaly, name)
    if predicted.ndim != 2:
        raise AnomaskError(f"component metrics need 2-D maps, got shape {predicted.shape}{where(name)}")
    gt_ids, num_gt = ndimage.label(anomaly == 1, structure=_EIGHT_CONNECTED)
    pred_ids, num_pred = ndimage.label(predicted & (anomaly != 255), structure=_EIGHT_CONNECTED)
    # Predicted components below the size limit vanish (sizes over the whole image).
    pred_sizes = np.bincount(pred_ids.ravel(), minlength=num_pred + 1)
    keep = pred_sizes >= settings.min_predicted_size
    keep[0] = False
    pred_ids = np.where(keep[pred_ids], pred_ids, 0)
    # Ground-truth components below the size limit become ignore.
    gt_sizes = np.bincount(gt_ids.ravel(), minlength=num_gt + 1)
    small_gt = gt_sizes < settings.min_gt_size
    small_gt[0] = False
    roi = (anomaly != 255) & ~small_gt[gt_ids]
    g = gt_ids[roi].astype(np.int64)
    p = pred_ids[roi].astype(np.int64)
    gt_area = np.bincount(g, minlength=num_gt + 1)
    pred_area = np.bincount(p, minlength=num_pred + 1)
    # Sparse intersection table: one row per touching (ground-truth, predicted) pair.
    both = (g > 0) & (p > 0)
    pairs, overlap = np.unique(g[both] * (num_pred + 1) + p[both], return_counts=True)
    pair_gt, pair_pred = np.divmod(pairs, num_pred + 1)
    gt_covered_by = np.bincount(pair_gt, weights=overlap, minlength=num_gt + 1)  # |k ∩ K^(k)|
    pred_on_gt = np.bincount(pair_pred, weights=overlap, minlength=num_pred + 1)  # |k^ ∩ K(k^)|
    # For ground-truth k: |K^(k)| and A(k) summed over the predicted components touching k.
    touching_pred_area = np.bincount(pair_gt, weights=pred_area[pair_pred], minlength=num_gt + 1)
    adjustment = np.bincount(pair_gt, weights=pred_on_gt[pair_pred] - overlap, minlength=num_gt + 1)
    gt_present = np.flatnonzero(gt_area[1:]) + 1
    union = touching_pred_area[gt_present] + gt_area[gt_present] - gt_covered_by[gt_present] - adjustment[gt_present]
    siou = gt_covered_by[gt_present] / union
    pred_present = np.flatnonzero(pred_area[1:]) + 1
    ppv = pred_on_gt[pred_present] / pred_area[pred_present]
    return ImageComponents(siou=siou, ppv=ppv)


@dataclass(frozen=True)
class ComponentResult:
    siou: float
    """Mean sIoU over all ground-truth components."""
    ppv: float
    """Mean PPV over all predicted components."""
    f1_star: float
    """Mean of F1(tau) over ``taus``."""
    taus: tuple[float, ...]
    tp: tuple[int, ...]
    fn: tuple[int, ...]
    fp: tuple[int, ...]
    f1: tuple[float, ...]
    gt_components: int
    predicted_components: int
    threshold: float

    def to_dict(self) -> dict[str, object]:
        return {
            "siou": self.siou,
            "ppv": self.ppv,
            "f1_star": self.f1_star,
            "per_tau": {
                f"{tau:.2f}": {"tp": tp, "fn": fn, "fp": fp, "f1": f1}
                for tau, tp, fn, fp, f1 in zip(self.taus, self.tp, self.fn, self.fp, self.f1)
            },
            "gt_components": self.gt_components,
            "predicted_components": self.predicted_components,
            "threshold": self.threshold,
        }


class ComponentAccumulator:
    """Streams score maps thresholded at ``threshold`` (``score >= threshold`` is anomalous)."""

    def __init__(self, threshold: float, settings: ComponentSettings = ANOMALY_TRACK) -> None:
        self.threshold = float(threshold)
        self.settings = settings
        self.images = 0
        self._taus = np.asarray(settings.taus, dtype=np.float64)
        self._siou_sum = 0.0
        self._ppv_sum = 0.0
        self._gt_count = 0
        self._pred_count = 0
        self._tp = np.zeros(self._taus.size, dtype=np.int64)
        self._fp = np.zeros(self._taus.size, dtype=np.int64)

    def update(self, scores: np.ndarray, anomaly: np.ndarray, name: str = "") -> None:
        scores = np.asarray(scores)
        check_same_shape(scores, np.asarray(anomaly), "anomaly score map", name)
        check_finite_scores(scores, name)
        self.update_mask(scores >= self.threshold, anomaly, name)

    def update_mask(self, predicted: np.ndarray, anomaly: np.ndarray, name: str = "") -> None:
        """Add one image given its binary anomaly prediction directly."""
        parts = image_components(predicted, anomaly, self.settings, name)
        self.images += 1
        self._siou_sum += float(parts.siou.sum())
        self._ppv_sum += float(parts.ppv.sum())
        self._gt_count += parts.siou.size
        self._pred_count += parts.ppv.size
        self._tp += (parts.siou[None, :] >= self._taus[:, None]).sum(axis=1)
        self._fp += (parts.ppv[None, :] < self._taus[:, None]).sum(axis=1)

    def result(self) -> ComponentResult:
        if self.images == 0:
            raise AnomaskError("no images were evaluated: the dataset is empty")
        if self._gt_count == 0:
            raise AnomaskError(
                f"no ground-truth anomaly components in {self.images} images: sIoU and F1* are undefined"
            )
        fn = self._gt_count - self._tp
        denominator = 2 * self._tp + fn + self._fp
        f1 = 2 * self._tp / denominator
        return ComponentResult(
            siou=self._siou_sum / self._gt_count,
            ppv=self._ppv_sum / self._pred_count if self._pred_count else float("nan"),
            f1_star=float(f1.mean()),
            taus=tuple(float(t) for t in self._taus),
            tp=tuple(int(v) for v in self._tp),
            fn=tuple(int(v) for v in fn),
            fp=tuple(int(v) for v in self._fp),
            f1=tuple(float(v) for v in f1),
            gt_components=self._gt_count,
            predicted_components=self._pred_count,
            threshold=self.threshold,
        )
