import pytest
import torch

from anomask.errors import AnomaskError
from anomask.training.targets import TargetSpec, build_batch_targets, build_targets, outlier_target

# classes: 0 road (stuff), 1 car (thing), 2 sky (stuff)
SPEC = TargetSpec(is_thing=(False, True, False))


def _scene():
    semantic = torch.zeros(6, 8, dtype=torch.uint8)
    semantic[0:2] = 2  # sky
    semantic[3:5, 0:2] = 1  # car 1
    semantic[3:5, 4:6] = 1  # car 2
    semantic[5, 7] = 255
    instances = torch.zeros(6, 8, dtype=torch.int32)
    instances[3:5, 0:2] = 1
    instances[3:5, 4:6] = 2
    return semantic, instances


def test_one_segment_per_thing_instance_and_per_stuff_class():
    semantic, instances = _scene()
    t = build_targets(semantic, SPEC, instances=instances)
    assert t.labels.tolist() == [0, 1, 1, 2]
    assert t.masks.shape == (4, 6, 8)
    assert int(t.masks[1].sum()) == 4 and int(t.masks[2].sum()) == 4
    assert not bool((t.masks[1] & t.masks[2]).any())
    # the void pixel belongs to no segment
    assert not bool(t.masks[:, 5, 7].any())
    assert int(t.masks.sum()) == 6 * 8 - 1


def test_without_instances_things_are_one_segment_per_class():
    semantic, _ = _scene()
    t = build_targets(semantic, SPEC)
    assert t.labels.tolist() == [0, 1, 2]
    assert int(t.masks[1].sum()) == 8


def test_negative_class_k_is_a_segment_only_for_uno_models():
    semantic, instances = _scene()
    semantic[0, 0:3] = 3
    instances[0, 0:3] = 9
    uno = build_targets(semantic, TargetSpec(SPEC.is_thing, negative_class=True), instances=instances)
    assert 3 in uno.labels.tolist()
    assert int(uno.masks[uno.labels == 3].sum()) == 3
    with pytest.raises(AnomaskError, match="negative class"):
        build_targets(semantic, SPEC, instances=instances)


def test_label_outside_the_classes_is_a_clear_error():
    semantic, _ = _scene()
    semantic[0, 0] = 7
    with pytest.raises(AnomaskError, match=r"frame_1: label 7 is outside the model's 3 classes"):
        build_batch_targets([{"semantic": semantic.numpy(), "name": "frame_1"}], SPEC)


def test_outlier_target_prefers_the_anomaly_map():
    semantic, _ = _scene()
    semantic[0, 0] = 3
    derived = outlier_target(build_targets(semantic, TargetSpec(SPEC.is_thing, True)), 3)
    assert derived[0, 0] == 1 and derived[1, 1] == 0 and derived[5, 7] == 255
    anomaly = torch.zeros(6, 8, dtype=torch.uint8)
    anomaly[2, 2] = 1
    given = outlier_target(build_targets(semantic, TargetSpec(SPEC.is_thing, True), anomaly=anomaly), 3)
    assert torch.equal(given, anomaly)
