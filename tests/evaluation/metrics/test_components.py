from fractions import Fraction

import numpy as np
import pytest
from scipy import ndimage

from anomask.errors import AnomaskError
from anomask.evaluation.metrics.components import (
    ANOMALY_TRACK,
    NO_SIZE_LIMITS,
    OBSTACLE_TRACK,
    SMIYC_TAUS,
    ComponentAccumulator,
    ComponentSettings,
    image_components,
)


def _layout():
    """Hand-drawn: two touching-by-prediction objects, one missed object, one false blob.

    k1 rows 5-14 x cols 5-14 (100 px), k2 rows 5-14 x cols 20-29 (100 px), k3 rows 30-34 x
    cols 5-9 (25 px). p1 rows 5-14 x cols 5-24 (200 px: all of k1, 50 px of k2, 50 px of
    background), p2 rows 30-33 x cols 30-33 (16 px of background).
    """
    anomaly = np.zeros((40, 40), np.uint8)
    anomaly[5:15, 5:15] = 1
    anomaly[5:15, 20:30] = 1
    anomaly[30:35, 5:10] = 1
    predicted = np.zeros((40, 40), bool)
    predicted[5:15, 5:25] = True
    predicted[30:34, 30:34] = True
    return predicted, anomaly


def test_hand_drawn_layout_worked_answers():
    predicted, anomaly = _layout()
    parts = image_components(predicted, anomaly, NO_SIZE_LIMITS)
    # sIoU(k1) = 100 / (|p1| + |k1| - 100 - A) with A = p1 ∩ k2 = 50  -> 100/150
    # sIoU(k2) = 50 / (200 + 100 - 50 - A) with A = p1 ∩ k1 = 100      -> 50/150
    # sIoU(k3) = 0 (no prediction touches it)
    np.testing.assert_allclose(parts.siou, [2 / 3, 1 / 3, 0.0])
    # PPV(p1) = (100 + 50) / 200, PPV(p2) = 0 / 16
    np.testing.assert_allclose(parts.ppv, [0.75, 0.0])

    accumulator = ComponentAccumulator(threshold=0.5, settings=NO_SIZE_LIMITS)
    accumulator.update_mask(predicted, anomaly)
    result = accumulator.result()
    assert result.siou == pytest.approx(1 / 3)
    assert result.ppv == pytest.approx(0.375)
    # TP: sIoU >= tau -> 2 for tau in {.25, .30}, 1 for .35-.65, 0 for .70, .75.
    expected_tp = [2, 2, 1, 1, 1, 1, 1, 1, 1, 0, 0]
    assert list(result.tp) == expected_tp
    assert list(result.fn) == [3 - tp for tp in expected_tp]
    # FP: PPV < tau. p1's PPV is exactly 0.75, not < 0.75 (SMIYC code), so only p2 counts.
    assert list(result.fp) == [1] * 11
    f1 = [Fraction(2 * tp, 2 * tp + (3 - tp) + 1) for tp in expected_tp]
    assert result.f1_star == pytest.approx(float(sum(f1) / 11))
    assert result.f1_star == pytest.approx((2 * 2 / 3 + 7 * 0.4) / 11)


def test_size_limits_and_ignore_follow_smiyc():
    settings = ComponentSettings(min_predicted_size=20, min_gt_size=10)
    anomaly = np.zeros((30, 40), np.uint8)
    anomaly[:, 30:] = 255  # off-road (obstacle track style)
    anomaly[2:5, 2:5] = 1  # 9 px ground truth: below 10, becomes ignore
    anomaly[2:5, 8:12] = 1  # 12 px ground truth
    anomaly[20:25, 2:7] = 1  # 25 px ground truth, detected exactly
    predicted = np.zeros((30, 40), bool)
    predicted[2:5, 2:12] = True  # 30 px: 9 on the ignored object, 12 on the other one
    predicted[10:13, 10:15] = True  # 15 px: below 20, dropped
    predicted[20:25, 2:7] = True  # the 25 px object
    predicted[10:16, 25:35] = True  # 60 px, 30 on off-road pixels: cleared first -> 30 px
    parts = image_components(predicted, anomaly, settings)
    # The 30 px prediction counts 21 px inside the region of interest, 12 of them on the
    # 12 px object: sIoU = 12 / (21 + 12 - 12 - 0) and PPV = 12 / 21 (not 12 / 30).
    np.testing.assert_allclose(parts.siou, [12 / 21, 1.0])
    # Predicted components in raster order: that one, the road half of the 60 px one (on
    # no object), the 25 px one.
    np.testing.assert_allclose(parts.ppv, [12 / 21, 0.0, 1.0])


def test_track_settings_are_the_smiyc_ones():
    assert (ANOMALY_TRACK.min_predicted_size, ANOMALY_TRACK.min_gt_size) == (500, 100)
    assert (OBSTACLE_TRACK.min_predicted_size, OBSTACLE_TRACK.min_gt_size) == (50, 10)
    assert SMIYC_TAUS == pytest.approx((0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75))
    assert SMIYC_TAUS[7] > 0.6  # np.linspace's 0.6000000000000001, as in the SMIYC code


def _reference(predicted, anomaly, settings):
    """Straightforward per-component loops over boolean masks (the definition, slowly)."""
    structure = np.ones((3, 3))
    gt, num_gt = ndimage.label(anomaly == 1, structure)
    pred, num_pred = ndimage.label(predicted & (anomaly != 255), structure)
    for c in range(1, num_pred + 1):
        if (pred == c).sum() < settings.min_predicted_size:
            pred[pred == c] = 0
    roi = anomaly != 255
    for c in range(1, num_gt + 1):
        if (gt == c).sum() < settings.min_gt_size:
            roi &= gt != c
    siou, ppv = [], []
    for k in range(1, num_gt + 1):
        k_mask = (gt == k) & roi
        if not k_mask.any():
            continue
        touching = [p for p in range(1, num_pred + 1) if ((pred == p) & k_mask).any()]
        union_pred = np.isin(pred, touching) & roi
        others = (gt > 0) & (gt != k) & roi
        intersection = (k_mask & union_pred).sum()
        siou.append(intersection / ((k_mask | union_pred) & ~(union_pred & others)).sum())
    for p in range(1, num_pred + 1):
        p_mask = (pred == p) & roi
        if not p_mask.any():
            continue
        touching = [k for k in range(1, num_gt + 1) if ((gt == k) & p_mask).any()]
        ppv.append((p_mask & np.isin(gt, touching)).sum() / p_mask.sum())
    return np.array(siou), np.array(ppv)


def _random_blobs(rng, shape=(50, 70)):
    anomaly = (ndimage.gaussian_filter(rng.random(shape), 3) > 0.53).astype(np.uint8)
    anomaly[:4] = 255
    scores = ndimage.gaussian_filter(rng.random(shape), 2.5).astype(np.float32)
    return scores, anomaly


@pytest.mark.parametrize("seed", range(6))
def test_random_layouts_match_the_per_component_definition(seed):
    rng = np.random.default_rng(seed)
    scores, anomaly = _random_blobs(rng)
    settings = ComponentSettings(min_predicted_size=6, min_gt_size=5)
    parts = image_components(scores >= 0.52, anomaly, settings)
    siou, ppv = _reference(scores >= 0.52, anomaly, settings)
    assert parts.siou.size > 1 and parts.ppv.size > 1
    np.testing.assert_allclose(parts.siou, siou)
    np.testing.assert_allclose(parts.ppv, ppv)


def test_streaming_equals_pooling_every_component():
    rng = np.random.default_rng(11)
    settings = ComponentSettings(min_predicted_size=4, min_gt_size=4)
    accumulator = ComponentAccumulator(threshold=0.52, settings=settings)
    all_siou, all_ppv = [], []
    for _ in range(5):
        scores, anomaly = _random_blobs(rng)
        accumulator.update(scores, anomaly)
        siou, ppv = _reference(scores >= 0.52, anomaly, settings)
        all_siou.append(siou)
        all_ppv.append(ppv)
    siou, ppv = np.concatenate(all_siou), np.concatenate(all_ppv)
    result = accumulator.result()
    assert result.siou == pytest.approx(siou.mean()) and result.ppv == pytest.approx(ppv.mean())
    f1 = []
    for tau, tp, fp in zip(SMIYC_TAUS, result.tp, result.fp):
        assert tp == np.sum(siou >= tau) and fp == np.sum(ppv < tau)
        f1.append(2 * tp / (2 * tp + (siou.size - tp) + fp))
    assert result.f1_star == pytest.approx(np.mean(f1))
    assert result.gt_components == siou.size and result.predicted_components == ppv.size


def test_bad_inputs_raise_clear_errors():
    accumulator = ComponentAccumulator(threshold=0.5)
    with pytest.raises(AnomaskError, match=r"does not match .* in f.png"):
        accumulator.update(np.zeros((3, 3), np.float32), np.zeros((3, 4), np.uint8), name="f.png")
    with pytest.raises(AnomaskError, match="holds values 7"):
        accumulator.update(np.zeros((3, 3), np.float32), np.full((3, 3), 7, np.uint8))
    with pytest.raises(AnomaskError, match="dataset is empty"):
        accumulator.result()
    accumulator.update(np.zeros((3, 3), np.float32), np.zeros((3, 3), np.uint8))
    with pytest.raises(AnomaskError, match="no ground-truth anomaly components"):
        accumulator.result()
