import numpy as np
import pytest

from anomask.errors import AnomaskError
from anomask.evaluation.metrics.goss import GossAccumulator
from anomask.evaluation.metrics.panoptic import PanopticAccumulator
from anomask.models.metadata import ClassInfo

CLASSES = (
    ClassInfo("road", False, (128, 64, 128)),
    ClassInfo("car", True, (0, 0, 142)),
    ClassInfo("sky", False, (70, 130, 180)),
)


def _maps(truth_unknown_ids=(254001, 254002)):
    """Two cars, two separate unknown blobs (12 px each), no sky anywhere."""
    truth = np.zeros((20, 20), np.int32)
    truth[2:4, 2:6] = 1001
    truth[2:4, 8:12] = 1002
    truth[12:15, 2:6] = truth_unknown_ids[0]
    truth[12:15, 10:14] = truth_unknown_ids[1]
    prediction = np.zeros((20, 20), np.int32)
    prediction[2:4, 2:6] = 1001
    prediction[2:4, 8:12] = 1005
    prediction[12:15, 2:6] = 254001  # the first blob exactly
    prediction[12:15, 10:12] = 254002  # half of the second blob: IoU 0.5, not > 0.5
    return prediction, truth


def test_known_answers_and_absent_classes_count_zero():
    prediction, truth = _maps()
    goss = GossAccumulator(CLASSES)
    goss.update(prediction, truth)
    result = goss.result()
    road = 360 / 366  # GT road 360 px, predicted road 366 px (6 px of blob 2 left as road)
    assert result.per_class == pytest.approx((road, 1.0, 0.0, 0.5))
    # Eq. 1 divides by all N = 3 known classes: absent sky counts 0 ...
    assert result.gq_known == pytest.approx((road + 1.0) / 3)
    # ... unknown: 1 TP (IoU 1), 1 FP, 1 FN -> 1 / (1 + 0.5 + 0.5)
    assert result.gq_unknown == pytest.approx(0.5)
    assert result.gq == pytest.approx(0.5 * (road + 1.0) / 3 + 0.25)
    # ... while panoptic quality skips absent classes.
    panoptic = PanopticAccumulator(CLASSES)
    panoptic.update(prediction, truth)
    assert panoptic.result().groups["known"].pq == pytest.approx((road + 1.0) / 2)


def test_ground_truth_unknown_clusters_are_connected_components():
    with_ids = GossAccumulator(CLASSES)
    with_ids.update(*_maps())
    without_ids = GossAccumulator(CLASSES)
    without_ids.update(*_maps(truth_unknown_ids=(254, 254)))  # one unlabelled unknown region
    assert with_ids.result() == without_ids.result()


def test_known_instances_merge_into_one_segment_per_class():
    prediction, truth = _maps()
    prediction[2:4, 2:6] = 1001
    prediction[2:4, 8:12] = 1001  # both cars as one predicted instance
    goss = GossAccumulator(CLASSES)
    goss.update(prediction, truth)
    assert goss.result().per_class[1] == 1.0


def test_weight_and_bad_inputs():
    prediction, truth = _maps()
    goss = GossAccumulator(CLASSES, weight=1.0)
    goss.update(prediction, truth)
    assert goss.result().gq == pytest.approx(goss.result().gq_known)
    with pytest.raises(AnomaskError, match="lambda"):
        GossAccumulator(CLASSES, weight=1.5)
    with pytest.raises(AnomaskError, match="dataset is empty"):
        GossAccumulator(CLASSES).result()
    with pytest.raises(AnomaskError, match="does not match"):
        GossAccumulator(CLASSES).update(prediction[:5], truth)
    with pytest.raises(AnomaskError, match="class ids 9"):
        GossAccumulator(CLASSES).update(np.full((3, 3), 9, np.int32), np.zeros((3, 3), np.int32))
