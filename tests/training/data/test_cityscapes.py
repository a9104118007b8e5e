import json

import numpy as np
import pytest

from anomask.errors import AnomaskError
from anomask.models.classes import CITYSCAPES
from anomask.training.data import CityscapesDataset
from anomask.training.data.imageio import write_png


def test_reads_train_ids_and_compacts_thing_instances(cityscapes_root):
    dataset = CityscapesDataset(cityscapes_root, "train")
    assert len(dataset) == 2 and dataset.classes == CITYSCAPES.classes
    sample = dataset[0]
    assert sample["name"] == "aachen_000000_000019"
    assert sample["image"].shape == (8, 16, 3) and sample["image"].dtype == np.uint8
    semantic, instances = sample["semantic"], sample["instances"]
    assert semantic.dtype == np.uint8 and instances.dtype == np.int32
    assert semantic[0, 0] == 10 and semantic[7, 0] == 0 and semantic[5, 3] == 13 and semantic[5, 13] == 255
    # car and person are instances 1..2; the caravan (no train id) and stuff are not
    assert sorted(np.unique(instances).tolist()) == [0, 1, 2]
    assert len(np.unique(instances[semantic == 13])) == 1 and instances[5, 3] > 0
    assert (instances[semantic == 11] > 0).all()
    assert (instances[semantic == 255] == 0).all() and (instances[semantic == 0] == 0).all()


def test_falls_back_to_label_ids_mapped_to_train_ids(cityscapes_root):
    for path in cityscapes_root.rglob("*_labelTrainIds.png"):
        path.unlink()
    direct = CityscapesDataset(cityscapes_root, "train")[0]["semantic"]
    assert direct[0, 0] == 10 and direct[5, 3] == 13 and direct[5, 13] == 255 and direct[7, 0] == 0


def test_class_list_file_is_used(cityscapes_root):
    classes = {
        "classes": [
            {"name": n, "is_thing": n == "car", "color": [i, i, i], "label_id": lid}
            for i, (n, lid) in enumerate([("road", 7), ("sky", 23), ("car", 26)])
        ]
    }
    (cityscapes_root / "classes.json").write_text(json.dumps(classes))
    for path in cityscapes_root.rglob("*_labelTrainIds.png"):
        path.unlink()  # the label-id files map through the class list's label ids
    dataset = CityscapesDataset(cityscapes_root, "train")
    assert [c.name for c in dataset.classes] == ["road", "sky", "car"]
    sample = dataset[0]
    assert sample["semantic"][0, 0] == 1 and sample["semantic"][5, 3] == 2 and sample["semantic"][5, 10] == 255
    assert (sample["instances"][sample["semantic"] != 2] == 0).all()


def test_missing_split_folder_names_it(cityscapes_root):
    with pytest.raises(AnomaskError, match=r"leftImg8bit/val"):
        CityscapesDataset(cityscapes_root, "val")


def test_missing_label_file_names_it(cityscapes_root):
    for path in cityscapes_root.rglob("aachen_000001_000019_gtFine_label*.png"):
        path.unlink()
    with pytest.raises(AnomaskError, match="aachen_000001_000019_gtFine_labelTrainIds.png"):
        CityscapesDataset(cityscapes_root, "train")


def test_out_of_range_label_names_the_file(cityscapes_root):
    path = next(cityscapes_root.rglob("aachen_000001_000019_gtFine_labelTrainIds.png"))
    write_png(path, np.full((8, 16), 19, dtype=np.uint8))
    dataset = CityscapesDataset(cityscapes_root, "train")
    dataset[0]
    with pytest.raises(AnomaskError, match=r"aachen_000001_000019_gtFine_labelTrainIds.png.*\[19\]"):
        dataset[1]


def test_size_mismatch_names_the_file(cityscapes_root):
    path = next(cityscapes_root.rglob("aachen_000000_000019_gtFine_instanceIds.png"))
    write_png(path, np.zeros((8, 15), dtype=np.uint16))
    with pytest.raises(AnomaskError, match="aachen_000000_000019_gtFine_instanceIds.png: size 15x8"):
        CityscapesDataset(cityscapes_root, "train")[0]
