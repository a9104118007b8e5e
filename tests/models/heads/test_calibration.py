"""TPR thresholds against brute force, streaming, metadata storage."""

import numpy as np
import pytest

from anomask.errors import AnomaskError
from anomask.models.heads import TprCalibrator, threshold_at_tpr, threshold_key, with_thresholds


def brute_force(scores: np.ndarray, labels: np.ndarray, tpr: float) -> float:
    """Largest candidate t (every score value and the float32 just below it) whose
    TPR with ``score > t`` reaches the target."""
    positives = scores[labels == 1]
    values = np.unique(scores[labels != 255])
    candidates = np.concatenate([values, np.nextafter(values, np.float32(-np.inf))])
    feasible = [t for t in candidates if (positives > t).mean() >= tpr - 1e-12]
    return float(max(feasible))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("tpr", [0.95, 0.9, 0.5, 1.0])
def test_threshold_matches_brute_force(seed, tpr):
    rng = np.random.default_rng(seed)
    size = int(rng.integers(50, 400))
    labels = rng.choice(np.array([0, 1, 255], np.uint8), size=size, p=[0.6, 0.3, 0.1])
    # rounding creates ties, the hard case for a threshold rule
    scores = np.round(rng.normal(size=size) + labels.astype(bool) * (labels == 1), 1).astype(np.float32)
    threshold = threshold_at_tpr(scores, labels, tpr)
    assert threshold == brute_force(scores, labels, tpr)
    positives = scores[labels == 1]
    assert (positives > threshold).mean() >= tpr
    assert (positives > np.nextafter(np.float32(threshold), np.float32(np.inf))).mean() < tpr


def test_streaming_equals_one_shot():
    rng = np.random.default_rng(7)
    scores = rng.normal(size=(6, 20, 30)).astype(np.float32)
    labels = (rng.random((6, 20, 30)) < 0.2).astype(np.uint8)
    labels[:, :2] = 255
    calibrator = TprCalibrator()
    for image_scores, image_labels in zip(scores, labels):
        calibrator.update(image_scores, image_labels)
    assert calibrator.num_positives == int((labels == 1).sum())
    assert calibrator.threshold(0.95) == threshold_at_tpr(scores, labels, 0.95)
    assert calibrator.thresholds("eam", tprs=(0.95, 0.9)) == {
        "eam@tpr95": threshold_at_tpr(scores, labels, 0.95),
        "eam@tpr90": threshold_at_tpr(scores, labels, 0.9),
    }


def test_thresholds_are_stored_in_the_metadata(metadata_factory):
    metadata = metadata_factory(3, thresholds={"msp@tpr95": -0.5})
    updated = with_thresholds(metadata, {threshold_key("eam", refine=True): 0.25})
    assert updated.thresholds == {"msp@tpr95": -0.5, "eam+refined@tpr95": 0.25}
    assert metadata.thresholds == {"msp@tpr95": -0.5}
    assert threshold_key("uno", tpr=0.995) == "uno@tpr99.5"


def test_bad_calibration_data_is_rejected():
    with pytest.raises(AnomaskError, match="no anomaly pixels"):
        threshold_at_tpr(np.zeros(5, np.float32), np.zeros(5, np.uint8))
    with pytest.raises(AnomaskError, match="differ in shape"):
        threshold_at_tpr(np.zeros(5, np.float32), np.zeros(4, np.uint8))
    with pytest.raises(AnomaskError, match="must be 0, 1 or 255; found \\[7\\]"):
        threshold_at_tpr(np.zeros(3, np.float32), np.array([0, 1, 7], np.uint8))
    with pytest.raises(AnomaskError, match="NaN"):
        threshold_at_tpr(np.array([np.nan, 1.0], np.float32), np.array([1, 0], np.uint8))
    with pytest.raises(AnomaskError, match="target TPR must lie in"):
        threshold_at_tpr(np.ones(2, np.float32), np.ones(2, np.uint8), 1.5)
