"""Open-set thresholds at 95 % TPR, always taken on images other than those they are applied
to (Mask2Anomaly (Rai et al., 2024), §7.4: StreetHazards t5 is scored with t6's threshold and vice
versa).

Sources (``anomask eval --thresholds``):

* ``auto`` (default): per score, the checkpoint's stored threshold when the model metadata
  records where it was calibrated (``extra["calibration"]``, written by ``anomask train``)
  and none of the evaluated datasets holds those images (``eval_data.holds_calibration``:
  the synthetic default's ``anomaly_val`` is not its test split ``anomaly``); ``halves`` for
  every score otherwise (no record, calibrated on an evaluated split, e.g. StreetHazards'
  test split, or no stored threshold for that score). The report says which, per score.
* ``halves``: the evaluated dataset is cut into two halves by index (first
  ceil(n/2) images, the rest); each half's open-set maps use the threshold at 95 % TPR of
  the *other* half. Every image is scored, none with a threshold its own pixels helped set.
  Contiguous halves, not even/odd: the synthetic default alternates seen/unseen anomalies
  by index, so each half holds both groups.
* ``checkpoint``: the model metadata's calibrated thresholds (``<score>@tpr95``, as
  ``FusedHeads.calibrated_threshold`` reads them) for every score, whatever their origin
  (a note says when the record shows they came from an evaluated split or is missing).
* ``NAME=ROOT`` (a dataset spec): calibrated on that dataset first (the network runs on
  its images too); it must not be one of the evaluated datasets.

Conventions. The heads, the deployed graph and the stored thresholds mark a pixel unknown
when ``score > t`` (``anomask.models.heads.calibration``); the metrics count ``score >= t``
(``PixelAnomalyAccumulator.threshold95``, ``OpenSetAccumulator``). ``heads_threshold`` and
``metric_threshold`` convert between the two: the float32 neighbour, same pixels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from anomask.errors import AnomaskError
from anomask.evaluation.eval_data import EvalDataset, holds_calibration
from anomask.evaluation.predictors import parse_score
from anomask.models.heads import threshold_key
from anomask.models.metadata import ModelMetadata

TPR = 0.95
AUTO = "auto"
HALVES = "halves"
CHECKPOINT = "checkpoint"
HALF_NAMES = ("first half", "second half")
HALVES_MEANING = "each half of a dataset is scored at the 95 % TPR threshold of the other half"
ALL = "all"


def heads_threshold(threshold95: float) -> float:
    """``score >= t`` (metric) -> the ``score > t'`` threshold of the heads, same pixels."""
    return float(np.nextafter(np.float32(threshold95), np.float32(-np.inf)))


def metric_threshold(threshold: float) -> float:
    """``score > t`` (heads) -> the ``score >= t'`` threshold of the metrics, same pixels."""
    return float(np.nextafter(np.float32(threshold), np.float32(np.inf)))


def half_of(index: int, count: int) -> int:
    """0 for the first ceil(count / 2) images, 1 for the rest."""
    return int(index >= math.ceil(count / 2))


def checkpoint_thresholds(metadata: ModelMetadata, labels: Sequence[str], source: str) -> dict[str, float]:
    """The metadata's ``<score>[+refined]@tpr95`` threshold of every score label."""
    thresholds = {}
    for label in labels:
        key = threshold_key(*parse_score(label), TPR)
        if key not in metadata.thresholds:
            known = ", ".join(sorted(metadata.thresholds)) or "none"
            raise AnomaskError(
                f"{source}: the model metadata has no threshold {key!r} (has: {known}); "
                "use --thresholds halves or --thresholds NAME=ROOT to calibrate on other images"
            )
        thresholds[label] = float(metadata.thresholds[key])
    return thresholds


def calibration_record(metadata: ModelMetadata) -> Mapping[str, Any] | None:
    """``metadata.extra["calibration"]`` when it names the calibration images (root, split)."""
    record = metadata.extra.get("calibration")
    if isinstance(record, Mapping) and record.get("root") and record.get("split"):
        return record
    return None


def describe_calibration(record: Mapping[str, Any]) -> str:
    images = f", {record['images']} images" if record.get("images") else ""
    return f"split {record['split']!r} of {record['root']}{images}"


def calibration_conflicts(
    metadata: ModelMetadata, entries: Sequence[EvalDataset]
) -> tuple[Mapping[str, Any] | None, list[str]]:
    """The calibration record and the evaluated datasets that hold its images."""
    record = calibration_record(metadata)
    return record, [e.name for e in entries if record is not None and holds_calibration(e, record)]


def auto_thresholds(
    metadata: ModelMetadata, labels: Sequence[str], entries: Sequence[EvalDataset]
) -> tuple[dict[str, float], str]:
    """``auto``: the stored thresholds of the scores that have one, when the metadata records
    calibration images that are none of the evaluated datasets; the rest (or all) ``halves``.
    Returns those thresholds and the sentence for the report."""
    record, conflicts = calibration_conflicts(metadata, entries)
    if record is None:
        return {}, f"auto -> halves ({HALVES_MEANING}) for every score: the model metadata records no calibration split"
    if conflicts:
        return {}, (
            f"auto -> halves ({HALVES_MEANING}) for every score: the checkpoint's thresholds were calibrated "
            f"on {describe_calibration(record)}, which is evaluated here ({', '.join(conflicts)})"
        )
    keys = {label: threshold_key(*parse_score(label), TPR) for label in labels}
    fixed = {label: float(metadata.thresholds[key]) for label, key in keys.items() if key in metadata.thresholds}
    rest = [label for label in labels if label not in fixed]
    parts = []
    if fixed:
        parts.append(f"checkpoint for {', '.join(fixed)} (calibrated on {describe_calibration(record)}, at 95 % TPR)")
    if rest:
        parts.append(f"halves for {', '.join(rest)} (no stored threshold; {HALVES_MEANING})")
    return fixed, "auto -> " + "; ".join(parts)
