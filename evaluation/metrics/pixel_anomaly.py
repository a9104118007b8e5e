"""Pixel-level anomaly metrics: AP (AuPRC), AUROC and FPR at 95 % TPR
(Mask2Anomaly (Rai et al., 2024), §7.2, eq. 18-21), streamed over a dataset in bounded
memory.

How the stream stays exact
--------------------------
Every labelled pixel (ground truth 0 or 1; 255 is dropped) adds one count to a table keyed
by its score. The key is the score's float32 bit pattern (float64 scores are rounded to
float32 first) mapped to an unsigned integer whose order is the order of the floats, so
the table is a histogram whose bins are single float32 values: no score range is needed
(probabilities, logits and energies all work) and the metrics computed from it are the
exact metrics of the pooled pixels.

Memory is bounded by ``max_bins`` table rows (default 2**21, 40 MB) and a queue of images
not yet merged into the table that holds at most as many rows. When the number of
distinct scores seen exceeds it, the table drops the fewest low mantissa bits of every key
that bring it to half its capacity (adjacent float32 values merge into one bin, order is
kept), and every later score is keyed the same way. The result then states
``mantissa_bits`` < 23: it is the exact metric of the scores truncated to that many
mantissa bits (relative resolution 2**-mantissa_bits; float16 scores, 10 bits, always stay
exact). Uniform random float32 scores on 1024x2048 images (the worst case) settle at 17
mantissa bits and 1.1 M rows; on 10 such images (18.9 M pixels) AP then differs from
sklearn's by 1.9e-6, AUROC by 4e-10 and FPR95 by 3e-6 (docs/evaluation.md).

Conventions (ties, crossing) -- and the sklearn ones the papers' code uses
--------------------------------------------------------------------------
* A pixel is predicted anomalous at threshold t when ``score >= t``. All pixels with one
  score share one threshold: lowering t past a tie moves TP and FP together (one diagonal
  step of the ROC curve), exactly as ``sklearn.metrics.roc_curve`` groups equal scores.
* AP = sum over the distinct thresholds t (descending) of (R(t) - R(t_prev)) * P(t), a step
  function, no interpolation: identical to ``sklearn.metrics.average_precision_score``
  (used by Mask2Anomaly's ``anomaly_inference.py``). The SMIYC benchmark code
  (``road_anomaly_benchmark/metrics/pixel_classification_curves.py``, ``curves_from_cmats``)
  has summed ``sum(diff(recall) * precision[1:])`` the same way since its 2023-08 change
  (before: the trapezoid rule), on a curve of per-frame threshold bins, so it differs from
  ours only by that binning.
* AUROC = trapezoid rule over the ROC points from (0, 0) to (1, 1), ties as diagonal
  segments: identical to ``sklearn.metrics.roc_auc_score``.
* ``fpr95`` = FPR at gamma*, the highest threshold whose TPR >= 0.95 (checked in integers:
  100 * TP >= 95 * P). It is an operating point a deployed threshold can reach, it equals a
  brute-force sweep over thresholds, and ``threshold95`` = gamma* is returned (open-IoU
  takes it, Mask2Anomaly, eq. 25-26). SMIYC's code picks the same point on its binned curve.
* ``fpr95_interpolated`` = the papers' code convention: Mask2Anomaly calls
  ``ood_metrics.fpr_at_95_tpr``, which linearly interpolates FPR between the ROC points
  around TPR = 0.95 (``np.interp(0.95, tpr, fpr)`` on ``sklearn.metrics.roc_curve``). Where
  0.95 falls strictly between two ROC points it is lower than ``fpr95`` by less than one
  step. Where TPR equals 0.95 exactly over a run of thresholds (the outlier count is a
  multiple of 20), ``np.interp`` returns the far end of that run, which can be much higher
  (a test constructs 0.00 vs 0.89). On random data with millions of pixels the two agree to
  a few 1e-6 (docs/evaluation.md).
* Mask2Anomaly's script skips images without any anomaly pixel; SMIYC keeps every frame.
  ``skip_images_without_anomaly`` chooses (default: keep, like SMIYC).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from anomask.errors import AnomaskError
from anomask.evaluation.metrics.inputs import check_anomaly_labels, check_finite_scores, check_same_shape

FULL_MANTISSA_BITS = 23
MIN_MERGE_ROWS = 1 << 18
"""Queued rows that trigger a merge into a table smaller than that (capped at ``max_bins``)."""
_SIGN = np.uint32(0x80000000)


def ordered_keys(scores: np.ndarray) -> np.ndarray:
    """uint32 keys whose integer order is the float32 order of ``scores`` (-0.0 == +0.0)."""
    values = np.asarray(scores, dtype=np.float32).ravel() + np.float32(0.0)  # -0.0 -> +0.0
    bits = values.view(np.uint32)
    return np.where(bits >= _SIGN, ~bits, bits | _SIGN)


def key_values(keys: np.ndarray, shift: int) -> np.ndarray:
    """The smallest float32 in each bin (the bin's lower edge) for keys shifted right by ``shift``."""
    full = np.asarray(keys, dtype=np.uint32) << np.uint32(shift)
    bits = np.where(full >= _SIGN, full & ~_SIGN, ~full)
    values = bits.view(np.float32).copy()
    values[np.isnan(values)] = -np.inf  # the lowest bin can start among the NaN bit patterns
    return values


def _run_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Index of the first element of every run of equal values in a sorted array."""
    if sorted_keys.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))


def _runs(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of a sorted array and how often each occurs."""
    starts = _run_starts(sorted_keys)
    return sorted_keys[starts], np.diff(np.append(starts, sorted_keys.size)).astype(np.int64)


@dataclass(frozen=True)
class PixelAnomalyResult:
    """Pixel metrics of one score on one dataset; rates and AP in [0, 1]."""

    ap: float
    auroc: float
    fpr95: float
    threshold95: float
    fpr95_interpolated: float
    best_f1: float
    best_f1_threshold: float
    """Pixel-F1-optimal threshold: SMIYC's component metrics threshold the scores here."""
    positives: int
    negatives: int
    images: int
    mantissa_bits: int

    @property
    def exact(self) -> bool:
        return self.mantissa_bits == FULL_MANTISSA_BITS

    def to_dict(self) -> dict[str, float | int | bool]:
        return {**asdict(self), "exact": self.exact}


@dataclass(frozen=True)
class ScoreCurves:
    """ROC and PR points at every distinct threshold, thresholds descending (for plots)."""

    thresholds: np.ndarray
    tpr: np.ndarray
    fpr: np.ndarray
    precision: np.ndarray

    @property
    def recall(self) -> np.ndarray:
        return self.tpr

    @property
    def ap(self) -> float:
        """Step-wise AP, sklearn's ``average_precision_score``."""
        return float(np.sum(np.diff(self.tpr, prepend=0.0) * self.precision))

    @property
    def auroc(self) -> float:
        """Trapezoid rule from (0, 0), sklearn's ``roc_auc_score``."""
        return float(np.trapezoid(np.concatenate(([0.0], self.tpr)), np.concatenate(([0.0], self.fpr))))


@dataclass(frozen=True)
class ScoreHistogram:
    """Relative frequency of inlier and outlier pixels per score bin (EAM (Grcić et al., 2023), Fig. 3)."""

    edges: np.ndarray
    inlier: np.ndarray
    outlier: np.ndarray


class PixelAnomalyAccumulator:
    """Streams (score map, anomaly ground truth) pairs; ``result()`` gives AP, AUROC, FPR95.

    Each image's keys are sorted and counted on their own and queued; the queue is merged
    into the table (one stable sort, which runs in near-linear time over already sorted
    runs) once it holds as many rows as the table, so a large table is not rewritten for
    every image. Memory: at most ``max_bins`` table rows plus a queue of at most as many
    rows plus one image's keys -- however many images pass through.
    """

    def __init__(self, max_bins: int = 1 << 21, skip_images_without_anomaly: bool = False) -> None:
        if max_bins < 64:
            raise AnomaskError(f"max_bins must be at least 64, got {max_bins}")
        self.max_bins = max_bins
        self.skip_images_without_anomaly = skip_images_without_anomaly
        self.shift = 0
        self.images = 0
        self._keys = np.zeros(0, dtype=np.uint32)
        self._outliers = np.zeros(0, dtype=np.int64)
        self._inliers = np.zeros(0, dtype=np.int64)
        self._queue: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        """Per queued image part: (distinct keys, outlier counts, inlier counts)."""
        self._queued_rows = 0

    @property
    def mantissa_bits(self) -> int:
        return FULL_MANTISSA_BITS - self.shift

    def update(self, scores: np.ndarray, anomaly: np.ndarray, name: str = "") -> None:
        """Add one image: ``scores`` float [H, W] (higher = more anomalous), ``anomaly``
        uint8 [H, W] with 0 inlier, 1 anomaly, 255 ignore."""
        scores = np.asarray(scores)
        anomaly = np.asarray(anomaly)
        check_same_shape(scores, anomaly, "anomaly score map", name)
        check_anomaly_labels(anomaly, name)
        check_finite_scores(scores, name)
        labels = anomaly.ravel()
        is_outlier = labels == 1
        if self.skip_images_without_anomaly and not is_outlier.any():
            return
        self.images += 1
        keys = ordered_keys(scores) >> np.uint32(self.shift)
        outlier_keys, outlier_counts = _runs(np.sort(keys[is_outlier]))
        inlier_keys, inlier_counts = _runs(np.sort(keys[labels == 0]))
        self._queue.append((outlier_keys, outlier_counts, np.zeros_like(outlier_counts)))
        self._queue.append((inlier_keys, np.zeros_like(inlier_counts), inlier_counts))
        self._queued_rows += outlier_keys.size + inlier_keys.size
        if self._queued_rows >= max(self._keys.size, min(MIN_MERGE_ROWS, self.max_bins)):
            self._merge()

    def _merge(self) -> None:
        """Fold the queued images into the table, then coarsen it if it outgrew ``max_bins``."""
        if not self._queue:
            return
        parts = [(self._keys, self._outliers, self._inliers), *self._queue]
        keys = np.concatenate([p[0] for p in parts])
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        starts = _run_starts(keys)
        if starts.size:
            self._keys = keys[starts]
            self._outliers = np.add.reduceat(np.concatenate([p[1] for p in parts])[order], starts)
            self._inliers = np.add.reduceat(np.concatenate([p[2] for p in parts])[order], starts)
        self._queue, self._queued_rows = [], 0
        if self._keys.size > self.max_bins:
            self._coarsen()

    def _coarsen(self) -> None:
        """Merge adjacent float32 bins by dropping the fewest low mantissa bits of every key
        that bring the table to half its capacity (the other half absorbs new scores)."""
        bits = 1
        while np.count_nonzero(np.diff(self._keys >> np.uint32(bits))) + 1 > self.max_bins // 2:
            bits += 1
        self.shift += bits
        keys = self._keys >> np.uint32(bits)
        starts = _run_starts(keys)
        self._keys = keys[starts]
        self._outliers = np.add.reduceat(self._outliers, starts)
        self._inliers = np.add.reduceat(self._inliers, starts)

    def _cumulative(self) -> tuple[np.ndarray, np.ndarray]:
        """TP and FP counts at each threshold, thresholds descending; checks definedness."""
        self._merge()
        if self.images == 0:
            raise AnomaskError("no images were evaluated: the dataset is empty")
        tp = np.cumsum(self._outliers[::-1])
        fp = np.cumsum(self._inliers[::-1])
        if tp.size == 0 or tp[-1] == 0:
            raise AnomaskError(
                f"no anomaly pixels (label 1) in {self.images} images: AP, AUROC and FPR95 are undefined"
            )
        if fp[-1] == 0:
            raise AnomaskError(f"no inlier pixels (label 0) in {self.images} images: AP, AUROC and FPR95 are undefined")
        return tp, fp

    def curves(self) -> ScoreCurves:
        """ROC and PR points at every distinct (binned) threshold, descending."""
        tp, fp = self._cumulative()
        return ScoreCurves(
            thresholds=key_values(self._keys[::-1], self.shift),
            tpr=tp / tp[-1],
            fpr=fp / fp[-1],
            precision=tp / (tp + fp),
        )

    def result(self) -> PixelAnomalyResult:
        tp, fp = self._cumulative()
        positives, negatives = int(tp[-1]), int(fp[-1])
        curves = self.curves()
        at95 = int(np.argmax(100 * tp >= 95 * positives))
        f1 = 2 * tp / (tp + fp + positives)
        best = int(np.argmax(f1))
        return PixelAnomalyResult(
            ap=curves.ap,
            auroc=curves.auroc,
            fpr95=float(curves.fpr[at95]),
            threshold95=float(curves.thresholds[at95]),
            fpr95_interpolated=float(
                np.interp(0.95, np.concatenate(([0.0], curves.tpr)), np.concatenate(([0.0], curves.fpr)))
            ),
            best_f1=float(f1[best]),
            best_f1_threshold=float(curves.thresholds[best]),
            positives=positives,
            negatives=negatives,
            images=self.images,
            mantissa_bits=self.mantissa_bits,
        )

    def histogram(self, bins: int = 50) -> ScoreHistogram:
        """Inlier and outlier score distributions over ``bins`` equal bins between the lowest
        and highest finite score, each normalised to sum to 1."""
        self._cumulative()  # same definedness checks
        values = key_values(self._keys, self.shift)
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if high <= low:
            high = low + 1.0
        clipped = np.clip(values, low, high)
        edges = np.linspace(low, high, bins + 1)
        inlier, _ = np.histogram(clipped, edges, weights=self._inliers)
        outlier, _ = np.histogram(clipped, edges, weights=self._outliers)
        return ScoreHistogram(edges=edges, inlier=inlier / inlier.sum(), outlier=outlier / outlier.sum())


def pixel_anomaly_metrics(scores: np.ndarray, anomaly: np.ndarray) -> PixelAnomalyResult:
    """All-in-memory convenience: the metrics of one array of scores (any shape) at once."""
    accumulator = PixelAnomalyAccumulator(max_bins=max(64, np.asarray(scores).size))
    accumulator.update(scores, anomaly)
    return accumulator.result()
