"""Panoptic quality PQ = SQ x RQ (Kirillov et al., 2019; Mask2Anomaly (Rai et al., 2024), eq. 27) with the
COCO panoptic rules, split into known things / known stuff / known / unknown as in
Mask2Anomaly, Table 4.

Rules (those of ``panopticapi.evaluation.pq_compute``, which EOPSN and Mask2Anomaly use)
-----------------------------------------------------------------------------------------
* A predicted and a ground-truth segment of the same category match when IoU > 0.5 (then the
  match is unique); ground-truth crowd segments never match.
* IoU = |p ∩ g| / (|p| + |g| - |p ∩ g| - |p ∩ void|): predicted pixels on ground-truth void
  do not enlarge the union.
* Unmatched non-crowd ground-truth segments are FN. An unmatched predicted segment is an FP
  unless more than half of it lies on void plus the crowd region of its own category.
* PQ_c = sum IoU / (TP + FP/2 + FN/2), SQ_c = sum IoU / TP (0 without TP), RQ_c = TP / (TP +
  FP/2 + FN/2), each summed over the whole dataset per category; a group's value is the mean
  over its categories with TP + FP + FN > 0 (absent categories are skipped, not zeros).

Inputs: the panoptic int32 encoding of the shared contract
-----------------------------------------------------------
``class_id * 1000 + instance_id`` for things (instance >= 1), ``class_id`` for stuff,
``254 * 1000 + i`` for the i-th unknown instance, 255 void. A thing class written without an
instance id (value ``class_id``) is a *crowd* region in the ground truth (Cityscapes
convention for group annotations) and an ordinary segment in a prediction; stuff classes are
one segment per class and image. The encoding cannot tell instance i of class 0 from class i,
so maps of a label set whose class 0 is a thing (COCO: person) must come in as
(class, instance) pairs through ``update_labels``.

Memory: per image only segment tables; the dataset totals are four numbers per category.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from anomask.errors import AnomaskError
from anomask.evaluation.metrics.inputs import check_class_ids, check_integer, check_same_shape, where
from anomask.models.metadata import IGNORE_ID, UNKNOWN_ID, ClassInfo

INSTANCE_OFFSET = 1000


def split_panoptic(panoptic: np.ndarray, thing: Sequence[bool], name: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(class ids, instance ids) of a panoptic int32 map (instance 0 = none)."""
    panoptic = np.asarray(panoptic)
    check_integer(panoptic, "panoptic map", name)
    if thing and thing[0]:
        raise AnomaskError(
            "class 0 is a thing, so the panoptic encoding class*1000+instance is ambiguous "
            "(instance i of class 0 reads as class i); pass (class, instance) maps to update_labels"
        )
    if panoptic.size and panoptic.min() < 0:
        raise AnomaskError(f"panoptic map holds negative values{where(name)}")
    has_instance = panoptic >= INSTANCE_OFFSET
    classes = np.where(has_instance, panoptic // INSTANCE_OFFSET, panoptic)
    instances = np.where(has_instance, panoptic % INSTANCE_OFFSET, 0)
    return classes, instances


@dataclass(frozen=True)
class Segments:
    """One image's segments: ``ids`` [H, W] (0 void, 1..n), per id its category and crowd flag
    (entry 0 unused). Categories: known classes 0..K-1, unknown = K."""

    ids: np.ndarray
    category: np.ndarray
    crowd: np.ndarray


def build_segments(
    classes: np.ndarray,
    instances: np.ndarray,
    thing: np.ndarray,
    crowd_without_instance: bool,
    name: str = "",
) -> Segments:
    """Segments from (class, instance) maps. ``thing`` has K+1 entries (the last: unknown).
    Stuff pixels form one segment per class whatever their instance ids."""
    classes = np.asarray(classes)
    instances = np.asarray(instances)
    check_same_shape(instances, classes, "instance map", name)
    check_integer(classes, "class map", name)
    check_integer(instances, "instance map", name)
    num_known = thing.size - 1
    check_class_ids(classes, num_known, "panoptic map", name)
    if instances.size and instances.min() < 0:
        raise AnomaskError(f"instance map holds negative ids{where(name)}")
    category = np.where(classes == UNKNOWN_ID, num_known, classes).astype(np.int64)
    category[classes == IGNORE_ID] = -1
    thing_or_void = np.concatenate((thing, [False]))  # index -1 (void) -> False
    instance = np.where(thing_or_void[category], instances, 0).astype(np.int64)
    span = int(instance.max()) + 1 if instance.size else 1
    key = (category + 1) * span + instance  # 0 exactly on void
    distinct, ids = _compact(key)
    if distinct.size == 0 or distinct[0] != 0:  # no void: ids start at 1 all the same
        ids += 1
        distinct = np.concatenate(([0], distinct))
    segment_category = distinct // span - 1
    segment_instance = distinct % span
    crowd = crowd_without_instance & (segment_category >= 0) & (segment_instance == 0)
    crowd &= thing_or_void[segment_category]
    return Segments(ids=ids, category=segment_category, crowd=crowd)


def _compact(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct keys and each pixel's rank among them (a lookup table when the keys
    are small, else ``np.unique``)."""
    if key.size and int(key.max()) < 1 << 24:
        present = np.bincount(key.ravel(), minlength=1) > 0
        rank = np.cumsum(present) - 1
        return np.flatnonzero(present), rank[key]
    distinct, inverse = np.unique(key, return_inverse=True)
    return distinct, inverse.reshape(key.shape)


@dataclass
class CategoryCounts:
    """Per-category sums over a dataset: matched IoU, TP, FP, FN."""

    iou: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray

    @classmethod
    def zeros(cls, num_categories: int) -> CategoryCounts:
        return cls(
            iou=np.zeros(num_categories),
            tp=np.zeros(num_categories, dtype=np.int64),
            fp=np.zeros(num_categories, dtype=np.int64),
            fn=np.zeros(num_categories, dtype=np.int64),
        )

    def __iadd__(self, other: CategoryCounts) -> CategoryCounts:
        self.iou += other.iou
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        return self


def match_segments(truth: Segments, prediction: Segments, num_categories: int) -> CategoryCounts:
    """TP/FP/FN and matched IoU of one image under the COCO panoptic rules."""
    num_pred = prediction.category.size
    pairs, overlap = np.unique(truth.ids.ravel() * num_pred + prediction.ids.ravel(), return_counts=True)
    pair_truth, pair_pred = np.divmod(pairs, num_pred)
    truth_area = np.bincount(pair_truth, weights=overlap, minlength=truth.category.size)
    pred_area = np.bincount(pair_pred, weights=overlap, minlength=num_pred)
    on_void = pair_truth == 0
    void_overlap = np.bincount(pair_pred[on_void], weights=overlap[on_void], minlength=num_pred)

    same_category = truth.category[pair_truth] == prediction.category[pair_pred]
    candidate = (pair_truth > 0) & (pair_pred > 0) & same_category & ~truth.crowd[pair_truth]
    union = pred_area[pair_pred] + truth_area[pair_truth] - overlap - void_overlap[pair_pred]
    iou = np.where(candidate, overlap / np.maximum(union, 1), 0.0)
    matched = candidate & (iou > 0.5)

    counts = CategoryCounts.zeros(num_categories)
    matched_category = truth.category[pair_truth[matched]]
    counts.tp += np.bincount(matched_category, minlength=num_categories)
    counts.iou += np.bincount(matched_category, weights=iou[matched], minlength=num_categories)

    truth_matched = np.zeros(truth.category.size, dtype=bool)
    truth_matched[pair_truth[matched]] = True
    missed = ~truth_matched & ~truth.crowd
    missed[0] = False
    counts.fn += np.bincount(truth.category[missed], minlength=num_categories)

    pred_matched = np.zeros(num_pred, dtype=bool)
    pred_matched[pair_pred[matched]] = True
    on_own_crowd = (pair_pred > 0) & truth.crowd[pair_truth] & same_category
    crowd_overlap = np.bincount(pair_pred[on_own_crowd], weights=overlap[on_own_crowd], minlength=num_pred)
    ignored = (void_overlap + crowd_overlap) > 0.5 * pred_area
    false_positive = ~pred_matched & ~ignored
    false_positive[0] = False
    counts.fp += np.bincount(prediction.category[false_positive], minlength=num_categories)
    return counts


@dataclass(frozen=True)
class Quality:
    pq: float
    sq: float
    rq: float
    n: int
    """Categories averaged."""


def category_quality(counts: CategoryCounts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-category PQ, SQ, RQ (0 where a category has no TP/FP/FN)."""
    denominator = counts.tp + 0.5 * counts.fp + 0.5 * counts.fn
    safe = np.maximum(denominator, 1e-12)
    pq = np.where(denominator > 0, counts.iou / safe, 0.0)
    sq = np.where(counts.tp > 0, counts.iou / np.maximum(counts.tp, 1), 0.0)
    rq = np.where(denominator > 0, counts.tp / safe, 0.0)
    return pq, sq, rq


def group_quality(counts: CategoryCounts, members: np.ndarray) -> Quality:
    """panopticapi's average over the member categories that occur (TP + FP + FN > 0)."""
    pq, sq, rq = category_quality(counts)
    present = members & ((counts.tp + counts.fp + counts.fn) > 0)
    n = int(present.sum())
    if n == 0:
        return Quality(pq=float("nan"), sq=float("nan"), rq=float("nan"), n=0)
    return Quality(pq=float(pq[present].mean()), sq=float(sq[present].mean()), rq=float(rq[present].mean()), n=n)


@dataclass(frozen=True)
class PanopticResult:
    groups: dict[str, Quality]
    """``things``, ``stuff`` (known classes), ``known``, ``unknown``, ``all``."""
    category_names: tuple[str, ...]
    pq: tuple[float, ...]
    sq: tuple[float, ...]
    rq: tuple[float, ...]
    tp: tuple[int, ...]
    fp: tuple[int, ...]
    fn: tuple[int, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "groups": {name: vars(quality) for name, quality in self.groups.items()},
            "per_category": {
                name: {"pq": pq, "sq": sq, "rq": rq, "tp": tp, "fp": fp, "fn": fn}
                for name, pq, sq, rq, tp, fp, fn in zip(
                    self.category_names, self.pq, self.sq, self.rq, self.tp, self.fp, self.fn
                )
            },
        }


def thing_flags(classes: Sequence[ClassInfo]) -> np.ndarray:
    """Thing flag per category: the known classes, then unknown (a thing)."""
    return np.array([c.is_thing for c in classes] + [True], dtype=bool)


class PanopticAccumulator:
    """PQ/SQ/RQ over a dataset of (prediction, ground truth) panoptic maps."""

    def __init__(self, classes: Sequence[ClassInfo]) -> None:
        if not classes:
            raise AnomaskError("panoptic quality needs the known classes (with thing flags)")
        self.classes = tuple(classes)
        self.thing = thing_flags(self.classes)
        self.counts = CategoryCounts.zeros(self.thing.size)
        self.images = 0

    def update(self, prediction: np.ndarray, truth: np.ndarray, name: str = "") -> None:
        """Both maps in the panoptic int32 encoding (module docstring)."""
        check_same_shape(np.asarray(prediction), np.asarray(truth), "panoptic prediction", name)
        flags = [c.is_thing for c in self.classes]
        pred_classes, pred_instances = split_panoptic(prediction, flags, name)
        truth_classes, truth_instances = split_panoptic(truth, flags, name)
        self.update_labels(pred_classes, pred_instances, truth_classes, truth_instances, name)

    def update_labels(
        self,
        pred_classes: np.ndarray,
        pred_instances: np.ndarray,
        truth_classes: np.ndarray,
        truth_instances: np.ndarray,
        name: str = "",
    ) -> None:
        """Maps as (class id, instance id) pairs: class 0..K-1, 254 unknown, 255 void;
        instance 0 = none (a crowd region for a ground-truth thing)."""
        check_same_shape(np.asarray(pred_classes), np.asarray(truth_classes), "panoptic prediction", name)
        truth = build_segments(truth_classes, truth_instances, self.thing, crowd_without_instance=True, name=name)
        prediction = build_segments(pred_classes, pred_instances, self.thing, crowd_without_instance=False, name=name)
        self.counts += match_segments(truth, prediction, self.thing.size)
        self.images += 1

    def result(self) -> PanopticResult:
        if self.images == 0:
            raise AnomaskError("no images were evaluated: the dataset is empty")
        known = np.arange(self.thing.size) < self.thing.size - 1
        groups = {
            "things": group_quality(self.counts, known & self.thing),
            "stuff": group_quality(self.counts, known & ~self.thing),
            "known": group_quality(self.counts, known),
            "unknown": group_quality(self.counts, ~known),
            "all": group_quality(self.counts, np.ones_like(known)),
        }
        pq, sq, rq = category_quality(self.counts)
        return PanopticResult(
            groups=groups,
            category_names=tuple(c.name for c in self.classes) + ("unknown",),
            pq=tuple(float(v) for v in pq),
            sq=tuple(float(v) for v in sq),
            rq=tuple(float(v) for v in rq),
            tp=tuple(int(v) for v in self.counts.tp),
            fp=tuple(int(v) for v in self.counts.fp),
            fn=tuple(int(v) for v in self.counts.fn),
        )
