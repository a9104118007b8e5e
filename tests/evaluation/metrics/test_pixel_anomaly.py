import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from anomask.errors import AnomaskError
from anomask.evaluation.metrics.pixel_anomaly import PixelAnomalyAccumulator, ordered_keys, pixel_anomaly_metrics


def _random_dataset(seed: int, images: int = 4, shape=(24, 40), ties: bool = False):
    """Score maps (normal noise, outliers shifted up, some negative scores) and 0/1/255 labels."""
    rng = np.random.default_rng(seed)
    data = []
    for _ in range(images):
        labels = (rng.random(shape) < 0.15).astype(np.uint8)
        scores = rng.normal(size=shape) + 1.2 * labels
        if ties:
            scores = np.round(scores, 1)  # many equal scores across both classes
        labels[rng.random(shape) < 0.1] = 255
        data.append((scores.astype(np.float32), labels))
    return data


def _pooled(data):
    scores = np.concatenate([s.ravel() for s, _ in data])
    labels = np.concatenate([y.ravel() for _, y in data])
    keep = labels != 255
    return scores[keep], labels[keep]


def _brute_force_fpr95(scores, labels):
    """Sweep every distinct threshold from the top; first one with TPR >= 0.95 wins."""
    positives = scores[labels == 1]
    negatives = scores[labels == 0]
    for threshold in np.unique(scores)[::-1]:
        tpr = np.mean(positives >= threshold)
        if tpr >= 0.95:
            return float(np.mean(negatives >= threshold)), float(threshold)
    raise AssertionError("unreachable: the lowest threshold has TPR 1")


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ties", [False, True])
def test_ap_and_auroc_match_sklearn(seed, ties):
    data = _random_dataset(seed, ties=ties)
    accumulator = PixelAnomalyAccumulator()
    for scores, labels in data:
        accumulator.update(scores, labels)
    result = accumulator.result()
    scores, labels = _pooled(data)
    assert result.ap == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    assert result.auroc == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert result.exact
    assert result.positives == int((labels == 1).sum()) and result.negatives == int((labels == 0).sum())


@pytest.mark.parametrize("seed", [3, 4])
@pytest.mark.parametrize("ties", [False, True])
def test_fpr95_matches_brute_force_threshold_sweep(seed, ties):
    data = _random_dataset(seed, images=2, ties=ties)
    accumulator = PixelAnomalyAccumulator()
    for scores, labels in data:
        accumulator.update(scores, labels)
    result = accumulator.result()
    scores, labels = _pooled(data)
    fpr, threshold = _brute_force_fpr95(scores, labels)
    assert result.fpr95 == pytest.approx(fpr, abs=1e-15)
    assert result.threshold95 == threshold
    # The papers' code (ood_metrics.fpr_at_95_tpr): linear interpolation on sklearn's ROC.
    roc_fpr, roc_tpr, _ = roc_curve(labels, scores)
    assert result.fpr95_interpolated == pytest.approx(np.interp(0.95, roc_tpr, roc_fpr), abs=1e-12)


def test_fpr95_conventions_when_tpr_hits_095_exactly():
    """20 outliers: TPR reaches 0.95 exactly at the 19th and stays there over 42 inliers."""
    outliers = np.concatenate([np.arange(100, 81, -1), [10]]).astype(np.float32)
    inliers = np.concatenate([[80.5, 80.0, 79.5], np.arange(50, 11, -1), np.full(5, 5.0)]).astype(np.float32)
    scores = np.concatenate([outliers, inliers])
    labels = np.concatenate([np.ones(20, np.uint8), np.zeros(inliers.size, np.uint8)])
    result = pixel_anomaly_metrics(scores, labels)
    assert (result.fpr95, result.threshold95) == (0.0, 82.0)  # the 19th outlier, no inlier above it
    roc_fpr, roc_tpr, _ = roc_curve(labels, scores)
    assert result.fpr95_interpolated == pytest.approx(np.interp(0.95, roc_tpr, roc_fpr))
    # np.interp lands on the far end of the flat run: every inlier above the 20th outlier.
    assert result.fpr95_interpolated == pytest.approx(42 / inliers.size)


def test_best_f1_threshold_is_the_best_operating_point():
    scores, labels = _pooled(_random_dataset(5, images=2))
    result = pixel_anomaly_metrics(scores, labels)
    best = 0.0
    for threshold in np.unique(scores):
        predicted = scores >= threshold
        tp = np.sum(predicted & (labels == 1))
        best = max(best, 2 * tp / (predicted.sum() + (labels == 1).sum()))
    assert result.best_f1 == pytest.approx(best, abs=1e-12)
    predicted = scores >= result.best_f1_threshold
    tp = np.sum(predicted & (labels == 1))
    assert 2 * tp / (predicted.sum() + (labels == 1).sum()) == pytest.approx(best, abs=1e-12)


def test_streaming_equals_all_in_memory():
    data = _random_dataset(6, images=6, ties=True)
    accumulator = PixelAnomalyAccumulator()
    for scores, labels in data:
        accumulator.update(scores, labels)
    streamed = accumulator.result().to_dict()
    at_once = pixel_anomaly_metrics(*_pooled(data)).to_dict()
    assert streamed.pop("images") == 6 and at_once.pop("images") == 1
    assert streamed == at_once


def _truncate(scores: np.ndarray, mantissa_bits: int) -> np.ndarray:
    """Independent float32 truncation: clear low mantissa bits, toward -inf for negatives."""
    bits = scores.astype(np.float32).view(np.uint32).copy()
    drop = 23 - mantissa_bits
    low = np.uint32((1 << drop) - 1)
    negative = (bits >> 31).astype(bool)
    bits[~negative] &= ~low
    bits[negative] |= low  # larger magnitude = lower value
    return bits.view(np.float32)


def test_bounded_table_is_exact_for_truncated_scores():
    rng = np.random.default_rng(7)
    accumulator = PixelAnomalyAccumulator(max_bins=300)
    data = []
    for _ in range(5):
        labels = (rng.random(2000) < 0.3).astype(np.uint8)
        scores = (rng.normal(size=2000) + labels).astype(np.float32)
        accumulator.update(scores, labels)
        data.append((scores, labels))
        assert accumulator._keys.size <= 300
    result = accumulator.result()
    assert not result.exact and result.mantissa_bits < 23
    scores, labels = _pooled(data)
    truncated = _truncate(scores, result.mantissa_bits)
    assert result.ap == pytest.approx(average_precision_score(labels, truncated), abs=1e-12)
    assert result.auroc == pytest.approx(roc_auc_score(labels, truncated), abs=1e-12)
    assert result.fpr95 == pytest.approx(_brute_force_fpr95(truncated, labels)[0], abs=1e-15)


def test_float16_scores_stay_exact_and_signed_zeros_tie():
    rng = np.random.default_rng(8)
    labels = (rng.random(5000) < 0.2).astype(np.uint8)
    scores = (rng.normal(size=5000) + labels).astype(np.float16)
    scores[:50] = -0.0
    scores[50:100] = 0.0
    result = pixel_anomaly_metrics(scores, labels)
    assert result.exact
    assert result.ap == pytest.approx(average_precision_score(labels, scores.astype(np.float32)), abs=1e-12)
    keys = ordered_keys(np.array([-np.inf, -1.0, -0.0, 0.0, 1e-30, 1.0, np.inf], dtype=np.float32))
    assert keys[2] == keys[3] and np.all(np.diff(keys[[0, 1, 2, 4, 5, 6]].astype(np.int64)) > 0)


def test_skip_images_without_anomaly_follows_the_papers_script():
    rng = np.random.default_rng(9)
    inliers_only = (rng.normal(size=(8, 8)).astype(np.float32), np.zeros((8, 8), np.uint8))
    mixed = _random_dataset(9, images=1)[0]
    keep, skip = PixelAnomalyAccumulator(), PixelAnomalyAccumulator(skip_images_without_anomaly=True)
    for accumulator in (keep, skip):
        accumulator.update(*inliers_only)
        accumulator.update(*mixed)
    assert keep.result().negatives == skip.result().negatives + 64
    assert skip.result().images == 1


def test_curves_and_histogram_for_plots():
    data = _random_dataset(10, images=2)
    accumulator = PixelAnomalyAccumulator()
    for scores, labels in data:
        accumulator.update(scores, labels)
    curves = accumulator.curves()
    assert np.all(np.diff(curves.thresholds) < 0)
    assert np.all(np.diff(curves.tpr) >= 0) and np.all(np.diff(curves.fpr) >= 0)
    assert curves.tpr[-1] == 1.0 and curves.fpr[-1] == 1.0
    histogram = accumulator.histogram(bins=20)
    assert histogram.edges.size == 21
    assert histogram.inlier.sum() == pytest.approx(1.0) and histogram.outlier.sum() == pytest.approx(1.0)
    # Outliers were shifted up: their mean bin lies above the inliers' mean bin.
    centres = (histogram.edges[1:] + histogram.edges[:-1]) / 2
    assert np.sum(centres * histogram.outlier) > np.sum(centres * histogram.inlier)


def test_bad_inputs_raise_clear_errors():
    accumulator = PixelAnomalyAccumulator()
    with pytest.raises(AnomaskError, match=r"shape \(4, 5\) does not match .*\(4, 6\) in img_007.png"):
        accumulator.update(np.zeros((4, 5), np.float32), np.zeros((4, 6), np.uint8), name="img_007.png")
    with pytest.raises(AnomaskError, match=r"holds values 2 in lab.png.*only 0 \(inlier\), 1 \(anomaly\) and 255"):
        accumulator.update(np.zeros((2, 2), np.float32), np.array([[0, 1], [2, 255]], np.uint8), name="lab.png")
    with pytest.raises(AnomaskError, match="NaN in x.png"):
        accumulator.update(np.full((2, 2), np.nan, np.float32), np.zeros((2, 2), np.uint8), name="x.png")
    with pytest.raises(AnomaskError, match="integer labels"):
        accumulator.update(np.zeros((2, 2), np.float32), np.zeros((2, 2), np.float32))
    with pytest.raises(AnomaskError, match="dataset is empty"):
        accumulator.result()
    accumulator.update(np.zeros((2, 2), np.float32), np.zeros((2, 2), np.uint8))
    with pytest.raises(AnomaskError, match="no anomaly pixels"):
        accumulator.result()
