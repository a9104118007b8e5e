"""Panoptic and open-set panoptic inference on constructed scenes (FusedHeads -> CPU part).

Scene (40 x 60): sky above row 15, road below, a car (score 0.82, kept) straddling both at the
left, two 15x15 unknown blobs on the road (masks 3 and 4, top class no-object) and one 8x8
unknown blob (mask 5, 64 px, under the 200 px minimum).
"""

import numpy as np
import pytest
import torch

from anomask.errors import AnomaskError
from anomask.models.config import ModelConfig
from anomask.models.heads import (
    FusedHeads,
    OpenPanopticConfig,
    goss_images,
    goss_labels,
    known_panoptic,
    panoptic_images,
    panoptic_labels,
)
from anomask.models.metadata import ClassInfo, ModelMetadata

H, W = 40, 60
ROAD, SKY, CAR, PERSON, NO_OBJECT = 0, 1, 2, 3, 4
UNKNOWN_THING = [0.01, 0.01, 0.06, 0.01, 0.91]  # stuff entropy 1 > thing entropy
STUFF_LIKE = [0.08, 0.005, 0.0025, 0.0025, 0.91]  # stuff entropy low < thing entropy 1
THRESHOLD = torch.tensor(-0.83)  # EAM: road/sky -0.95, car -0.82 (anomalous!), blobs ~ -0.06


def regions():
    rows, cols = np.mgrid[:H, :W]
    car = (rows >= 5) & (rows < 20) & (cols < 15)
    blob_a = (rows >= 22) & (rows < 37) & (cols >= 20) & (cols < 35)
    blob_b = (rows >= 22) & (rows < 37) & (cols >= 42) & (cols < 57)
    small = (rows >= 30) & (rows < 38) & (cols >= 3) & (cols < 11)
    sky = (rows < 15) & ~car
    road = (rows >= 15) & ~car & ~blob_a & ~blob_b & ~small
    return {"road": road, "car": car, "sky": sky, "blob_a": blob_a, "blob_b": blob_b, "small": small}


def scene(blob_b_probs=UNKNOWN_THING):
    probs = [
        [0.95, 0.0125, 0.0125, 0.0125, 0.0125],  # 0 road
        [0.045, 0.045, 0.82, 0.045, 0.045],  # 1 car
        [0.0125, 0.95, 0.0125, 0.0125, 0.0125],  # 2 sky
        UNKNOWN_THING,
        blob_b_probs,
        UNKNOWN_THING,
    ]  # 3 blob a, 4 blob b, 5 small blob
    logits = torch.tensor(probs, dtype=torch.float32).log().unsqueeze(0)
    masks = torch.stack(
        [
            torch.from_numpy(np.where(regions()[name], 10.0, -10.0)).float()
            for name in ("road", "car", "sky", "blob_a", "blob_b", "small")
        ]
    ).unsqueeze(0)
    return logits, masks


def run(metadata, method, blob_b_probs=UNKNOWN_THING, config: OpenPanopticConfig | None = None):
    logits, masks = scene(blob_b_probs)
    outputs = FusedHeads(metadata, score="eam")(logits, masks, THRESHOLD)
    return panoptic_images(outputs, metadata, method, config or OpenPanopticConfig())[0]


@pytest.fixture
def metadata(metadata_factory):
    return metadata_factory(4)


def test_known_panoptic_follows_mask2former(metadata):
    panoptic = run(metadata, "closed-set")
    r = regions()
    assert set(panoptic[r["road"]].tolist()) == {ROAD}
    assert set(panoptic[r["sky"]].tolist()) == {SKY}
    assert set(panoptic[r["car"]].tolist()) == {CAR * 1000 + 1}
    for blob in ("blob_a", "blob_b", "small"):
        assert set(panoptic[r[blob]].tolist()) == {255}  # no kept mask claims them: void


def test_the_car_is_anomalous_at_the_scene_threshold(metadata):
    outputs = FusedHeads(metadata, score="eam")(*scene(), THRESHOLD)
    open_set = outputs["open_set"][0].numpy()
    r = regions()
    for name in ("car", "blob_a", "blob_b", "small"):
        assert set(open_set[r[name]].tolist()) == {254}, name
    assert set(open_set[r["road"]].tolist()) == {ROAD}


@pytest.mark.parametrize("method", ["mining", "eam", "components"])
def test_two_blobs_two_instances_known_thing_kept_small_dropped(metadata, method):
    panoptic = run(metadata, method)
    r = regions()
    assert set(panoptic[r["blob_a"]].tolist()) == {254001}
    assert set(panoptic[r["blob_b"]].tolist()) == {254002}
    assert set(panoptic[r["car"]].tolist()) == {2001}  # anomalous at this threshold, still a car
    assert set(panoptic[r["small"]].tolist()) == {255}
    assert set(panoptic[r["road"]].tolist()) == {ROAD}


@pytest.mark.parametrize("method", ["eam", "components"])
def test_min_area_is_what_drops_the_small_blob(metadata, method):
    panoptic = run(metadata, method, config=OpenPanopticConfig(min_area=50))
    assert set(panoptic[regions()["small"]].tolist()) == {254003}


def test_mining_rejects_a_stuff_like_background_component(metadata):
    panoptic = run(metadata, "mining", blob_b_probs=STUFF_LIKE)
    r = regions()
    assert set(panoptic[r["blob_a"]].tolist()) == {254001}
    assert set(panoptic[r["blob_b"]].tolist()) == {255}
    assert set(run(metadata, "eam", blob_b_probs=STUFF_LIKE)[r["blob_b"]].tolist()) == {254002}


def test_goss_groups_unknown_pixels_and_keeps_known_classes(metadata):
    logits, masks = scene()
    outputs = FusedHeads(metadata, score="eam")(logits, masks, THRESHOLD)
    goss = goss_images(outputs)[0]
    r = regions()
    assert set(goss[r["road"]].tolist()) == {ROAD} and set(goss[r["sky"]].tolist()) == {SKY}
    segments = {name: set(goss[r[name]].tolist()) for name in ("car", "blob_a", "blob_b", "small")}
    assert all(len(ids) == 1 and next(iter(ids)) // 1000 == 254 for ids in segments.values())
    assert len(set.union(*segments.values())) == 4  # four separate unknown segments


def test_batch_gives_the_same_panoptic_as_single_images(metadata):
    logits_a, masks_a = scene()
    logits_b, masks_b = scene(STUFF_LIKE)
    heads = FusedHeads(metadata, score="eam")
    batched = heads(torch.cat([logits_a, logits_b]), torch.cat([masks_a, masks_b]), THRESHOLD)
    for method in ("closed-set", "mining", "eam", "components"):
        together = panoptic_images(batched, metadata, method)
        alone = [
            panoptic_images(heads(lg, mk, THRESHOLD), metadata, method)[0]
            for lg, mk in ((logits_a, masks_a), (logits_b, masks_b))
        ]
        assert np.array_equal(together, np.stack(alone)), method


def test_overlap_rule_instances_and_stuff_merging():
    """Mask2Former's CPU rules on hand-made intermediates for one 2 x 5 image, 5 masks."""
    mask_id = np.array([[0, 0, 1, 2, 2], [3, 3, 1, 4, 4]], np.uint8)
    mask_fg = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]], bool)
    mask_class = np.array([ROAD, CAR, CAR, ROAD, CAR], np.int32)
    mask_keep = np.array([True, True, True, True, False])
    # mask 1 wins 2 px of its 4 -> ratio 0.5 < 0.8 dropped; mask 4 is not kept
    mask_area = np.array([2, 4, 2, 2, 2], np.int32)
    panoptic = known_panoptic(mask_id, mask_fg, mask_class, mask_keep, mask_area, [CAR, PERSON], 0.8)
    assert panoptic.tolist() == [[0, 0, 255, 2001, 2001], [0, 0, 255, 255, 255]]


def test_unknown_method_is_rejected(metadata):
    with pytest.raises(AnomaskError, match="unknown panoptic method 'blobs'"):
        run(metadata, "blobs")


def test_labels_are_unambiguous_when_class_0_is_a_thing():
    """The scene with the car as class 0 (COCO puts person there): the (class, instance) pair
    tells the car from the road, the published encoding cannot (car instance 1 -> 0*1000+1 =
    1 = road's id), and the car -- anomalous at this threshold -- stays a car in every method."""
    classes = (
        ClassInfo("car", True, (0, 0, 142)),
        ClassInfo("road", False, (128, 64, 128)),
        ClassInfo("sky", False, (70, 130, 180)),
        ClassInfo("person", True, (220, 20, 60)),
    )
    metadata = ModelMetadata(classes=classes, architecture=ModelConfig.small(num_classes=4))
    logits, masks = scene()
    outputs = FusedHeads(metadata, score="eam")(logits[..., [CAR, ROAD, SKY, PERSON, NO_OBJECT]], masks, THRESHOLD)
    r = regions()
    for method in ("closed-set", "mining", "eam", "components"):
        labels = panoptic_labels(outputs, metadata, method)
        classes_map, instances = labels.classes[0], labels.instances[0]
        assert set(classes_map[r["car"]].tolist()) == {0} and set(instances[r["car"]].tolist()) == {1}, method
        assert set(classes_map[r["road"]].tolist()) == {1} and set(instances[r["road"]].tolist()) == {0}
        if method != "closed-set":
            assert set(classes_map[r["blob_a"]].tolist()) == {254} and set(instances[r["blob_a"]].tolist()) == {1}
        encoded = panoptic_images(outputs, metadata, method)[0]
        assert np.array_equal(encoded, labels.encode()[0])
        assert set(encoded[r["car"]].tolist()) == set(encoded[r["road"]].tolist()) == {1}  # the ambiguity
    goss = goss_labels(outputs["open_set"][0].numpy(), outputs["preferred_mask"][0].numpy())
    assert set(goss.classes[r["road"]].tolist()) == {1} and not goss.instances[r["road"]].any()
    assert np.array_equal(goss.encode(), goss_images(outputs)[0])
