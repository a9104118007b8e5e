"""Checks shared by every metric's ``update``: one clear AnomaskError per kind of bad input.

Each message names the image (the sample's ``"name"``, usually its file) so a bad file in a
dataset of thousands is found at once.
"""

from __future__ import annotations

import numpy as np

from anomask.errors import AnomaskError
from anomask.models.metadata import IGNORE_ID, UNKNOWN_ID

ANOMALY_LABELS = (0, 1, 255)
"""Anomaly ground truth (Fishyscapes convention): 0 inlier, 1 anomaly, 255 ignore."""


def distinct_values(array: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an integer array; a bincount when they are small
    non-negative numbers (label maps), several times faster than ``np.unique``."""
    if array.size and np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if low >= 0 and high < 1 << 16:
            return np.flatnonzero(np.bincount(array.ravel(), minlength=high + 1))
    return np.unique(array, return_counts=True)[0]  # numpy's sort path; its hash path is slow


def where(name: str) -> str:
    return f" in {name}" if name else ""


def check_same_shape(prediction: np.ndarray, label: np.ndarray, what: str, name: str) -> None:
    """Prediction and ground truth must cover the same pixels (no silent broadcasting)."""
    if prediction.shape != label.shape:
        raise AnomaskError(
            f"{what} shape {tuple(prediction.shape)} does not match the ground truth shape "
            f"{tuple(label.shape)}{where(name)}; resize the prediction to the label size first"
        )


def check_integer(array: np.ndarray, what: str, name: str) -> None:
    if not np.issubdtype(array.dtype, np.integer):
        raise AnomaskError(f"{what} must hold integer labels, got dtype {array.dtype}{where(name)}")


def check_anomaly_labels(anomaly: np.ndarray, name: str) -> None:
    """Anomaly tracks accept only 0, 1 and 255; anything else is a reader or conversion bug."""
    check_integer(anomaly, "anomaly ground truth", name)
    if anomaly.size == 0:
        return
    bad = sorted(set(int(v) for v in distinct_values(anomaly)) - set(ANOMALY_LABELS))
    if bad:
        shown = ", ".join(str(v) for v in bad[:8]) + (" ..." if len(bad) > 8 else "")
        raise AnomaskError(
            f"anomaly ground truth holds values {shown}{where(name)}; anomaly tracks accept only "
            "0 (inlier), 1 (anomaly) and 255 (ignore)"
        )


def check_finite_scores(scores: np.ndarray, name: str) -> None:
    if not np.issubdtype(scores.dtype, np.floating):
        raise AnomaskError(f"anomaly scores must be floating point, got dtype {scores.dtype}{where(name)}")
    if np.isnan(scores).any():
        raise AnomaskError(f"anomaly scores contain NaN{where(name)}")


def check_class_ids(labels: np.ndarray, num_classes: int, what: str, name: str) -> None:
    """Class maps hold known ids 0..K-1, 254 (unknown) or 255 (ignore / void), nothing else."""
    values = distinct_values(labels)
    bad = values[((values < 0) | (values >= num_classes)) & (values != UNKNOWN_ID) & (values != IGNORE_ID)]
    if bad.size:
        raise AnomaskError(
            f"{what} holds class ids {', '.join(str(int(v)) for v in bad[:8])}{where(name)}; "
            f"expected 0..{num_classes - 1}, {UNKNOWN_ID} (unknown) or {IGNORE_ID} (ignore / void)"
        )
