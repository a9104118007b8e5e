import json

import numpy as np
import pytest

from anomask.errors import AnomaskError
from anomask.training.data import OPEN_SET_SPLITS, CocoPanopticDataset
from anomask.training.data.imageio import write_png

CATEGORIES = [
    {"id": 1, "name": "person", "isthing": 1, "color": [220, 20, 60]},
    {"id": 3, "name": "car", "isthing": 1, "color": [0, 0, 142]},
    {"id": 17, "name": "cat", "isthing": 1, "color": [255, 0, 0]},
    {"id": 193, "name": "grass-merged", "isthing": 0, "color": [0, 255, 0]},
]
# segment id -> (category, iscrowd, rows, cols); id 0 (void) stays in the corner
SEGMENTS = {
    10: (193, 0, slice(0, 6), slice(0, 12)),
    11: (1, 0, slice(1, 4), slice(1, 3)),
    12: (3, 0, slice(2, 5), slice(4, 6)),
    300: (3, 0, slice(2, 5), slice(7, 9)),  # G channel used: 300 = 44 + 256
    70000: (17, 0, slice(4, 6), slice(9, 11)),  # B channel used
    15: (1, 1, slice(0, 1), slice(6, 8)),  # a crowd: class, no instance
}


def _encode(segment_ids: np.ndarray) -> np.ndarray:
    return np.stack([segment_ids % 256, segment_ids // 256 % 256, segment_ids // 65536], axis=-1).astype(np.uint8)


@pytest.fixture
def coco(tmp_path, rng):
    ids = np.zeros((6, 12), dtype=np.int64)
    for segment, (_, _, rows, cols) in SEGMENTS.items():
        ids[rows, cols] = segment
    ids[5, 0] = 0
    write_png(tmp_path / "annotations" / "panoptic_val2017" / "000000000001.png", _encode(ids))
    write_png(
        tmp_path / "val2017" / "000000000001.jpg".replace(".jpg", ".png"),
        rng.integers(0, 256, (6, 12, 3), dtype=np.uint8),
    )
    data = {
        "images": [{"id": 1, "file_name": "000000000001.png", "height": 6, "width": 12}],
        "annotations": [
            {
                "image_id": 1,
                "file_name": "000000000001.png",
                "segments_info": [
                    {"id": s, "category_id": c, "iscrowd": crowd} for s, (c, crowd, _, _) in SEGMENTS.items()
                ],
            }
        ],
        "categories": CATEGORIES,
    }
    annotation = tmp_path / "annotations" / "panoptic_val2017.json"
    annotation.write_text(json.dumps(data))
    return annotation, tmp_path / "val2017"


def test_closed_set_contiguous_ids_and_instances(coco):
    dataset = CocoPanopticDataset(*coco)
    assert [c.name for c in dataset.classes] == ["person", "car", "cat", "grass-merged"]
    assert [c.is_thing for c in dataset.classes] == [True, True, True, False]
    sample = dataset[0]
    semantic, instances = sample["semantic"], sample["instances"]
    assert semantic[0, 0] == 3 and semantic[5, 0] == 255 and semantic[2, 1] == 0
    assert semantic[3, 4] == 1 and semantic[3, 7] == 1 and semantic[4, 9] == 2
    assert semantic[0, 6] == 0 and instances[0, 6] == 0  # crowd: class without instance
    assert len({instances[2, 1], instances[3, 4], instances[3, 7], instances[4, 9]}) == 4
    assert (instances[semantic == 3] == 0).all() and "anomaly" not in sample


def test_open_set_train_removed_classes_become_void(coco):
    dataset = CocoPanopticDataset(*coco, open_set="5", mode="train")
    assert "car" in OPEN_SET_SPLITS["5"] and dataset.removed_names == ("car",)
    assert [c.name for c in dataset.classes] == ["person", "cat", "grass-merged"]
    sample = dataset[0]
    semantic, instances = sample["semantic"], sample["instances"]
    assert (semantic[2:5, 4:6] == 255).all() and (semantic[2:5, 7:9] == 255).all()
    assert (instances[2:5, 4:9] == 0).all()
    assert semantic[4, 9] == 1 and semantic[0, 0] == 2  # ids shift past the removed class
    assert "anomaly" not in sample


def test_open_set_eval_removed_classes_are_unknown_instances(coco):
    sample = CocoPanopticDataset(*coco, open_set="20", mode="eval")[0]
    semantic, instances, anomaly = sample["semantic"], sample["instances"], sample["anomaly"]
    # 20 % removes car and cat (cumulative lists)
    assert (semantic[2:5, 4:6] == 254).all() and (semantic[4:6, 9:11] == 254).all()
    unknown = {instances[3, 4], instances[3, 7], instances[4, 9]}
    assert 0 not in unknown and len(unknown) == 3
    assert (anomaly[semantic == 254] == 1).all() and anomaly[0, 0] == 0 and anomaly[5, 0] == 255


def test_split_lists_are_cumulative():
    assert len(OPEN_SET_SPLITS["5"]) == 4 and len(OPEN_SET_SPLITS["10"]) == 8 and len(OPEN_SET_SPLITS["20"]) == 16
    assert set(OPEN_SET_SPLITS["5"]) < set(OPEN_SET_SPLITS["10"]) < set(OPEN_SET_SPLITS["20"])


def test_bad_inputs_name_the_file(coco, tmp_path):
    annotation, images = coco
    with pytest.raises(AnomaskError, match="missing.json: COCO panoptic annotation file not found"):
        CocoPanopticDataset(tmp_path / "missing.json", images)
    with pytest.raises(AnomaskError, match="nowhere: COCO image folder not found"):
        CocoPanopticDataset(annotation, tmp_path / "nowhere")
    png = annotation.with_suffix("") / "000000000001.png"
    write_png(png, _encode(np.full((6, 12), 999)))
    with pytest.raises(AnomaskError, match=r"000000000001.png: segment ids \[999\]"):
        CocoPanopticDataset(*coco)[0]
    with pytest.raises(AnomaskError, match="unknown open-set split '15'"):
        CocoPanopticDataset(*coco, open_set="15")
