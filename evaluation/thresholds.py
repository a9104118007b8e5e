"""Open-set thresholds at 95 % TPR, always taken on images other than those they are applied
to (paper 001 §8: StreetHazards t5 is scored with t6's threshold and vice versa).

Sources (``anomask eval --thresholds``):

* ``halves`` (default): the evaluated dataset is cut into two halves by index (first
  ceil(n/2) images, the rest); each half's open-set maps use the threshold at 95 % TPR of
  the *other* half. Every image is scored, none with a threshold its own pixels helped set.
  Contiguous halves, not even/odd: the synthetic default alternates seen/unseen anomalies
  by index, so each half holds both groups.
* ``checkpoint``: the model metadata's calibrated thresholds (``<score>@tpr95``, as
  ``FusedHeads.calibrated_threshold`` reads them). Not the default: ``anomask train``
  calibrates them on its anomaly split, which for the synthetic default and StreetHazards
  is the test split itself, and the metadata does not say which split it was.
* ``NAME=ROOT`` (a dataset spec): calibrated on that dataset first (the network runs on
  its images too); it must not be one of the evaluated datasets.

Conventions. The heads, the deployed graph and the stored thresholds mark a pixel unknown
when ``score > t`` (``anomask.models.heads.calibration``); the metrics count ``score >= t``
(``PixelAnomalyAccumulator.threshold95``, ``OpenSetAccumulator``). ``heads_threshold`` and
``metric_threshold`` convert between the two: the float32 neighbour, same pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from anomask.errors import AnomaskError
from anomask.evaluation.predictors import parse_score
from anomask.models.heads import threshold_key
from anomask.models.metadata import ModelMetadata

TPR = 0.95
HALVES = "halves"
CHECKPOINT = "checkpoint"
HALF_NAMES = ("first half", "second half")
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
