import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from anomask.errors import AnomaskError
from anomask.evaluation.metrics.semantic import OpenSetAccumulator, SemanticAccumulator

K = 5


def _random_images(seed, images=3, shape=(20, 30)):
    rng = np.random.default_rng(seed)
    data = []
    for _ in range(images):
        truth = rng.integers(0, K, shape).astype(np.uint8)
        prediction = np.where(rng.random(shape) < 0.6, truth, rng.integers(0, K, shape)).astype(np.uint8)
        unknown = rng.random(shape) < 0.1
        truth[unknown] = 254
        truth[rng.random(shape) < 0.05] = 255
        scores = (rng.random(shape) + 0.6 * unknown).astype(np.float32)
        data.append((prediction, scores, truth))
    return data


def test_miou_matches_sklearn_confusion_matrix():
    data = _random_images(0)
    accumulator = SemanticAccumulator(K)
    for prediction, _, truth in data:
        accumulator.update(prediction, truth)
    truth = np.concatenate([t.ravel() for _, _, t in data])
    prediction = np.concatenate([p.ravel() for p, _, _ in data])
    known = truth < K
    cm = confusion_matrix(truth[known], prediction[known], labels=list(range(K)))
    iou = np.diag(cm) / (cm.sum(0) + cm.sum(1) - np.diag(cm))
    result = accumulator.result()
    np.testing.assert_allclose(result.iou, iou)
    assert result.miou == pytest.approx(iou.mean())


def _open_iou_by_definition(prediction, scores, truth, threshold):
    """Eq. 25-26 term by term: FP^OOD and FN^OOD summed over the other classes and unknown."""
    valid = truth != 255
    open_prediction = np.where(scores >= threshold, K, prediction)[valid]
    open_truth = np.where(truth == 254, K, truth)[valid]
    values = []
    for a in range(K):
        tp = np.sum((open_prediction == a) & (open_truth == a))
        fp = sum(np.sum((open_prediction == a) & (open_truth == i)) for i in range(K + 1) if i != a)
        fn = sum(np.sum((open_truth == a) & (open_prediction == i)) for i in range(K + 1) if i != a)
        values.append(tp / (tp + fp + fn))
    return np.array(values)


def test_open_iou_matches_eq_25_26_and_streams():
    data = _random_images(1, images=4)
    threshold = 0.8
    accumulator = OpenSetAccumulator(K, threshold)
    for prediction, scores, truth in data:
        accumulator.update(prediction, scores, truth)
    pooled = [np.concatenate([d[i].ravel() for d in data]) for i in range(3)]
    expected = _open_iou_by_definition(*pooled, threshold)
    result = accumulator.result()
    np.testing.assert_allclose(result.open_iou, expected)
    assert result.open_miou == pytest.approx(expected.mean())
    assert result.open_miou < result.miou  # unknown pixels cost the known classes
    at_once = OpenSetAccumulator(K, threshold)
    at_once.update(*pooled)
    assert at_once.result() == result


def test_open_iou_equals_iou_for_an_ideal_open_set_model():
    rng = np.random.default_rng(2)
    truth = rng.integers(0, K, (16, 16)).astype(np.uint8)
    truth[4:8, 4:8] = 254
    prediction = np.where(truth == 254, 0, truth).astype(np.uint8)
    scores = np.where(truth == 254, 1.0, 0.0).astype(np.float32)
    accumulator = OpenSetAccumulator(K, threshold=0.5)
    accumulator.update(prediction, scores, truth)
    result = accumulator.result()
    assert result.open_miou == pytest.approx(result.miou) == pytest.approx(1.0)


def test_classes_never_seen_are_left_out_of_the_mean():
    accumulator = SemanticAccumulator(3)
    accumulator.update(np.array([[0, 0], [1, 1]], np.uint8), np.array([[0, 0], [1, 255]], np.uint8))
    result = accumulator.result()
    assert result.iou[:2] == (1.0, 1.0) and np.isnan(result.iou[2])
    assert result.miou == 1.0


def test_bad_inputs_raise_clear_errors():
    accumulator = SemanticAccumulator(K)
    with pytest.raises(AnomaskError, match=r"class ids outside 0..4 in a.png"):
        accumulator.update(np.full((2, 2), 5, np.uint8), np.zeros((2, 2), np.uint8), name="a.png")
    with pytest.raises(AnomaskError, match=r"ground truth holds class ids 9 in b.png"):
        accumulator.update(np.zeros((2, 2), np.uint8), np.full((2, 2), 9, np.uint8), name="b.png")
    with pytest.raises(AnomaskError, match="does not match"):
        accumulator.update(np.zeros((2, 3), np.uint8), np.zeros((2, 2), np.uint8))
    with pytest.raises(AnomaskError, match="dataset is empty"):
        accumulator.result()
    open_set = OpenSetAccumulator(K, 0.5)
    with pytest.raises(AnomaskError, match="anomaly score map shape"):
        open_set.update(np.zeros((2, 2), np.uint8), np.zeros((3, 2), np.float32), np.zeros((2, 2), np.uint8))
