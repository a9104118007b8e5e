import numpy as np
import pytest

from anomask.errors import AnomaskError
from anomask.evaluation.metrics.panoptic import PanopticAccumulator
from anomask.models.metadata import ClassInfo

ROAD, CAR, SKY = 0, 1, 2
CLASSES = (
    ClassInfo("road", False, (128, 64, 128)),
    ClassInfo("car", True, (0, 0, 142)),
    ClassInfo("sky", False, (70, 130, 180)),
)


def _constructed_maps():
    """20x20 maps with every COCO rule in play (areas worked out in the test below)."""
    truth = np.full((20, 20), ROAD, np.int32)
    truth[0:5] = SKY  # 100 px
    truth[6:10, 1:6] = 1001  # car A, 20 px
    truth[6:10, 10:15] = 1002  # car B, 20 px
    truth[15:20, 0:5] = 255  # void, 25 px
    truth[12:14, 10:15] = 254001  # unknown object, 10 px
    truth[15:17, 15:20] = CAR  # crowd of cars (thing class without instance), 10 px
    prediction = np.full((20, 20), ROAD, np.int32)
    prediction[0:6] = SKY  # 120 px: all the sky and 20 px of road
    prediction[6:10, 1:5] = 1001  # 16 px inside A: IoU 0.8
    prediction[6:10, 12:18] = 1002  # 24 px, 12 on B: IoU 12/32 < 0.5
    prediction[12:14, 10:14] = 254007  # 8 px inside the unknown object: IoU 0.8
    prediction[15:19, 0:3] = 1003  # 12 px, all on void: ignored
    prediction[15:17, 15:20] = 1004  # 10 px, all on the car crowd: ignored
    prediction[17:19, 15:20] = 1005  # 10 px on road: a false positive
    return prediction, truth


def test_constructed_maps_known_answers():
    prediction, truth = _constructed_maps()
    accumulator = PanopticAccumulator(CLASSES)
    accumulator.update(prediction, truth)
    result = accumulator.result()
    # Road: GT 215 px, prediction 200 px, 173 shared, 13 predicted road pixels on void.
    road_iou = 173 / (200 + 215 - 173 - 13)
    sky_iou = 100 / 120
    assert result.tp == (1, 1, 1, 1)
    assert result.fn == (0, 1, 0, 0)  # car B
    assert result.fp == (0, 2, 0, 0)  # B's prediction and the one on road; void/crowd ones ignored
    assert result.pq[ROAD] == pytest.approx(road_iou)
    assert result.pq[CAR] == pytest.approx(0.8 / (1 + 0.5 * 2 + 0.5 * 1))
    assert (result.sq[CAR], result.rq[CAR]) == (pytest.approx(0.8), pytest.approx(0.4))
    assert result.pq[SKY] == pytest.approx(sky_iou)
    assert result.pq[3] == pytest.approx(0.8)  # unknown
    groups = result.groups
    assert groups["things"].pq == pytest.approx(0.32) and groups["things"].n == 1
    assert groups["stuff"].pq == pytest.approx((road_iou + sky_iou) / 2)
    assert groups["known"].pq == pytest.approx((road_iou + 0.32 + sky_iou) / 3)
    assert groups["unknown"].pq == pytest.approx(0.8)
    assert groups["all"].n == 4


def _segments(panoptic, thing, ground_truth):
    """value -> (category, crowd, mask); category 3 = unknown."""
    segments = {}
    for value in np.unique(panoptic):
        if value == 255:
            continue
        cls = value // 1000 if value >= 1000 else value
        category = 3 if cls == 254 else cls
        crowd = ground_truth and value < 1000 and thing[category]
        segments[value] = (category, crowd, panoptic == value)
    return segments


def _reference_pq(pairs, thing):
    """COCO panoptic rules per segment pair with boolean masks, no shared code."""
    iou_sum, tp, fp, fn = np.zeros(4), np.zeros(4, int), np.zeros(4, int), np.zeros(4, int)
    for prediction, truth in pairs:
        gts, preds = _segments(truth, thing, True), _segments(prediction, thing, False)
        void = truth == 255
        matched_gt, matched_pred = set(), set()
        for g, (g_cat, g_crowd, g_mask) in gts.items():
            for p, (p_cat, _, p_mask) in preds.items():
                if g_crowd or g_cat != p_cat:
                    continue
                intersection = np.sum(g_mask & p_mask)
                iou = intersection / (np.sum(g_mask | p_mask) - np.sum(p_mask & void))
                if iou > 0.5:
                    tp[g_cat] += 1
                    iou_sum[g_cat] += iou
                    matched_gt.add(g)
                    matched_pred.add(p)
        for g, (g_cat, g_crowd, _) in gts.items():
            if g not in matched_gt and not g_crowd:
                fn[g_cat] += 1
        for p, (p_cat, _, p_mask) in preds.items():
            if p in matched_pred:
                continue
            ignored = np.sum(p_mask & void) + sum(
                np.sum(p_mask & m) for c, crowd, m in gts.values() if crowd and c == p_cat
            )
            if ignored / p_mask.sum() <= 0.5:
                fp[p_cat] += 1
    return iou_sum, tp, fp, fn


def _random_pair(rng, size=32):
    truth = rng.choice([ROAD, SKY], size=(size // 8, size // 8)).repeat(8, 0).repeat(8, 1).astype(np.int32)
    for instance in range(1, 7):
        y, x, h, w = rng.integers(0, size - 4), rng.integers(0, size - 4), rng.integers(3, 10), rng.integers(3, 10)
        truth[y : y + h, x : x + w] = (CAR if rng.random() < 0.6 else 254) * 1000 + instance
    y, x = rng.integers(0, size - 6, 2)
    truth[y : y + 6, x : x + 6] = rng.choice([255, CAR])  # void or a crowd of cars
    prediction = truth.copy()
    prediction[prediction == 255] = ROAD
    prediction = np.roll(prediction, rng.integers(-2, 3, 2), axis=(0, 1))  # boundary errors
    for instance in range(10, 13):  # extra predicted segments
        y, x = rng.integers(0, size - 5, 2)
        prediction[y : y + 5, x : x + 5] = rng.choice([CAR, 254]) * 1000 + instance
    return prediction, truth


@pytest.mark.parametrize("seed", range(4))
def test_random_maps_match_a_per_segment_reference(seed):
    """Three images streamed through the accumulator == the reference's dataset-level sums."""
    rng = np.random.default_rng(seed)
    pairs = [_random_pair(rng) for _ in range(3)]
    accumulator = PanopticAccumulator(CLASSES)
    for prediction, truth in pairs:
        accumulator.update(prediction, truth)
    iou_sum, tp, fp, fn = _reference_pq(pairs, [False, True, False, True])
    result = accumulator.result()
    assert result.tp == tuple(tp) and result.fp == tuple(fp) and result.fn == tuple(fn)
    denominator = tp + 0.5 * fp + 0.5 * fn
    expected = np.divide(iou_sum, denominator, out=np.zeros(4), where=denominator > 0)
    np.testing.assert_allclose(result.pq, expected)
    present = denominator > 0
    assert result.groups["all"].pq == pytest.approx(expected[present].mean())


def test_class_zero_thing_needs_class_instance_pairs():
    classes = (ClassInfo("person", True, (220, 20, 60)), ClassInfo("grass", False, (0, 200, 0)))
    accumulator = PanopticAccumulator(classes)
    with pytest.raises(AnomaskError, match="class 0 is a thing"):
        accumulator.update(np.zeros((2, 2), np.int32), np.zeros((2, 2), np.int32))
    semantic = np.array([[0, 0], [1, 1]])
    instances = np.array([[1, 1], [0, 0]])
    accumulator.update_labels(semantic, instances, semantic, instances)
    assert accumulator.result().groups["known"].pq == 1.0


def test_bad_inputs_raise_clear_errors():
    accumulator = PanopticAccumulator(CLASSES)
    with pytest.raises(AnomaskError, match=r"class ids 7 in p.png"):
        accumulator.update(np.full((2, 2), 7, np.int32), np.zeros((2, 2), np.int32), name="p.png")
    with pytest.raises(AnomaskError, match="does not match"):
        accumulator.update(np.zeros((2, 2), np.int32), np.zeros((3, 2), np.int32))
    with pytest.raises(AnomaskError, match="negative"):
        accumulator.update(np.full((2, 2), -1, np.int32), np.zeros((2, 2), np.int32))
    with pytest.raises(AnomaskError, match="dataset is empty"):
        accumulator.result()
    with pytest.raises(AnomaskError, match="needs the known classes"):
        PanopticAccumulator(())
