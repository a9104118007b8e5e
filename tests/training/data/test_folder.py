import json

import numpy as np
import pytest

from anomask.errors import AnomaskError
from anomask.training.data import FolderDataset
from anomask.training.data.imageio import write_png


@pytest.fixture
def folder(tmp_path, rng):
    (tmp_path / "classes.json").write_text(
        json.dumps(
            {
                "classes": [
                    {"name": "road", "is_thing": False, "color": [128, 64, 128]},
                    {"name": "car", "is_thing": True, "color": [0, 0, 142]},
                ]
            }
        )
    )
    for stem in ("a", "b"):
        write_png(tmp_path / "images" / f"{stem}.png", rng.integers(0, 256, (6, 10, 3), dtype=np.uint8))
        label = np.zeros((6, 10), dtype=np.uint8)
        label[2:4, 2:5] = 1
        label[0] = 255
        write_png(tmp_path / "labels" / f"{stem}.png", label)
    return tmp_path


def test_reads_pairs_with_class_list(folder):
    dataset = FolderDataset(folder / "images", folder / "labels", folder / "classes.json")
    assert len(dataset) == 2
    assert [c.name for c in dataset.classes] == ["road", "car"] and dataset.classes[1].is_thing
    sample = dataset[1]
    assert sample["name"] == "b" and sample["semantic"][3, 3] == 1 and sample["semantic"][0, 0] == 255
    assert "instances" not in sample


def test_value_out_of_range_names_the_file(folder):
    write_png(folder / "labels" / "b.png", np.full((6, 10), 2, dtype=np.uint8))
    with pytest.raises(AnomaskError, match=r"labels/b.png: label values \[2\] out of range \(classes 0..1"):
        FolderDataset(folder / "images", folder / "labels", folder / "classes.json")[1]


def test_size_mismatch_names_the_file(folder):
    write_png(folder / "labels" / "a.png", np.zeros((5, 10), dtype=np.uint8))
    with pytest.raises(AnomaskError, match="labels/a.png: size 10x5 does not match"):
        FolderDataset(folder / "images", folder / "labels", folder / "classes.json")[0]


def test_missing_label_and_folder_and_bad_class_list(folder):
    (folder / "labels" / "a.png").unlink()
    with pytest.raises(AnomaskError, match="labels/a.png: label file not found"):
        FolderDataset(folder / "images", folder / "labels", folder / "classes.json")
    with pytest.raises(AnomaskError, match="nowhere: label folder not found"):
        FolderDataset(folder / "images", folder / "nowhere", folder / "classes.json")
    (folder / "bad.json").write_text('{"classes": [{"name": "x"}]}')
    with pytest.raises(AnomaskError, match="bad.json: not a class list"):
        FolderDataset(folder / "images", folder / "labels", folder / "bad.json")
