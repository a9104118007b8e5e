import json

import numpy as np
import pytest

from anomask.errors import AnomaskError
from anomask.training.data import AdeNegatives, ArrayNegatives, BoxNegatives, CocoInstanceNegatives, Negative
from anomask.training.data.coco_masks import decode_rle_string, rle_to_mask
from anomask.training.data.imageio import write_png


def _encode_rle_string(runs):
    """COCO's compact run-length string (the inverse of decode_rle_string), for the test."""
    chars = []
    for i, value in enumerate(runs):
        if i > 2:
            value -= runs[i - 2]
        more = True
        while more:
            chunk = value & 0x1F
            value >>= 5
            more = value != -1 if chunk & 0x10 else value != 0
            chars.append(chr((chunk | (0x20 if more else 0)) + 48))
    return "".join(chars)


def _runs(mask):
    flat = mask.T.ravel().astype(np.int8)
    change = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    return np.diff(np.concatenate([[0], change])).tolist()


def test_rle_string_and_list_round_trip(rng):
    mask = rng.random((13, 7)) < 0.4
    runs = _runs(mask)
    assert sum(runs) == mask.size
    assert decode_rle_string(_encode_rle_string(runs)) == runs
    assert np.array_equal(rle_to_mask({"size": [13, 7], "counts": _encode_rle_string(runs)}), mask)
    assert np.array_equal(rle_to_mask({"size": [13, 7], "counts": runs}), mask)


@pytest.fixture
def coco_instances(tmp_path, rng):
    write_png(tmp_path / "images" / "a.png", rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
    mask = np.zeros((20, 30), dtype=bool)
    mask[5:15, 10:20] = True
    data = {
        "images": [{"id": 7, "file_name": "a.png", "height": 20, "width": 30}],
        "categories": [{"id": 1, "name": "person"}, {"id": 17, "name": "cat"}, {"id": 18, "name": "dog"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 7,
                "category_id": 17,
                "iscrowd": 0,
                "area": 100,
                "segmentation": [[2, 2, 8, 2, 8, 8, 2, 8]],
            },
            {
                "id": 2,
                "image_id": 7,
                "category_id": 18,
                "iscrowd": 0,
                "area": 100,
                "segmentation": {"size": [20, 30], "counts": _encode_rle_string(_runs(mask))},
            },
            {
                "id": 3,
                "image_id": 7,
                "category_id": 1,
                "iscrowd": 0,
                "area": 400,
                "segmentation": [[0, 0, 20, 0, 20, 20, 0, 20]],
            },
            {
                "id": 4,
                "image_id": 7,
                "category_id": 17,
                "iscrowd": 1,
                "area": 400,
                "segmentation": {"size": [20, 30], "counts": [600]},
            },
        ],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    return path, tmp_path / "images", mask


def test_coco_instances_skip_road_classes_crowds_and_small(coco_instances):
    path, images, mask = coco_instances
    pool = CocoInstanceNegatives(path, images, min_area=50)
    assert len(pool) == 2  # the person and the crowd are not negatives
    rle = pool.draw(1, np.random.default_rng(0))
    assert rle.mask.shape == (10, 10) and rle.mask.all() and rle.image.shape == (10, 10, 3)
    polygon = pool.draw(0, np.random.default_rng(0))
    assert polygon.mask.shape == (7, 7) and polygon.mask.all()


def test_empty_pools_raise_naming_the_source(coco_instances, tmp_path):
    path, images, _ = coco_instances
    with pytest.raises(AnomaskError, match="instances.json: the negative pool is empty"):
        CocoInstanceNegatives(path, images, min_area=1e6)
    (tmp_path / "ade_images").mkdir()
    (tmp_path / "ade_annotations").mkdir()
    with pytest.raises(AnomaskError, match="ade_annotations: the negative pool is empty"):
        AdeNegatives(tmp_path / "ade_images", tmp_path / "ade_annotations")
    with pytest.raises(AnomaskError, match="boxes: bounding-box annotation folder not found"):
        BoxNegatives(images, tmp_path / "boxes")
    with pytest.raises(AnomaskError, match="in-memory negatives: the negative pool is empty"):
        ArrayNegatives([])


def test_ade_class_and_instance_regions(tmp_path, rng):
    image = rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)
    write_png(tmp_path / "img" / "x.png", image)
    classes = np.zeros((10, 10), dtype=np.uint8)
    classes[:5, :5] = 3
    classes[6:, 6:] = 9
    write_png(tmp_path / "cls" / "x.png", classes)
    pool = AdeNegatives(tmp_path / "img", tmp_path / "cls", kind="class", skip_classes=[9], min_area=4)
    for seed in range(5):
        negative = pool.sample(np.random.default_rng(seed))
        assert negative.mask.shape == (5, 5) and negative.mask.all()
        assert np.array_equal(negative.image, image[:5, :5])
    instance = np.zeros((10, 10, 3), dtype=np.uint8)
    instance[:4, :2] = (3, 1, 0)
    instance[:4, 8:] = (3, 2, 0)
    write_png(tmp_path / "inst" / "x.png", instance)
    pool = AdeNegatives(tmp_path / "img", tmp_path / "inst", kind="instance", min_area=4)
    shapes = {pool.sample(np.random.default_rng(seed)).mask.shape for seed in range(10)}
    assert shapes == {(4, 2)}
    # an entry without usable regions is redrawn, and a pool without any fails clearly
    write_png(tmp_path / "cls" / "x.png", np.zeros((10, 10), dtype=np.uint8))
    with pytest.raises(AnomaskError, match="cls: no usable negative"):
        AdeNegatives(tmp_path / "img", tmp_path / "cls").sample(np.random.default_rng(0))


def test_box_negatives_use_the_first_box(tmp_path, rng):
    image = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    write_png(tmp_path / "img" / "n01" / "n01_1.png", image)
    (tmp_path / "xml" / "n01").mkdir(parents=True)
    (tmp_path / "xml" / "n01" / "n01_1.xml").write_text(
        "<annotation><object><bndbox><xmin>3</xmin><ymin>4</ymin><xmax>12</xmax><ymax>9</ymax></bndbox></object>"
        "<object><bndbox><xmin>0</xmin><ymin>0</ymin><xmax>29</xmax><ymax>19</ymax></bndbox></object></annotation>"
    )
    pool = BoxNegatives(tmp_path / "img", tmp_path / "xml")
    negative = pool.sample(np.random.default_rng(0))
    assert negative.mask.shape == (6, 10) and negative.mask.all()
    assert np.array_equal(negative.image, image[4:10, 3:13])


def test_array_pool_draws_with_the_generator():
    negatives = [Negative(np.full((2, 2, 3), i, np.uint8), np.ones((2, 2), bool), str(i)) for i in range(5)]
    pool = ArrayNegatives(negatives)
    first = [pool.sample(np.random.default_rng(3)).name for _ in range(3)]
    assert first == [pool.sample(np.random.default_rng(3)).name for _ in range(3)]
