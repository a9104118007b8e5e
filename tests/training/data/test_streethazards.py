import numpy as np
import pytest

from anomask.errors import AnomaskError
from anomask.training.data import StreetHazardsDataset
from anomask.training.data.imageio import write_png


@pytest.fixture
def streethazards(tmp_path, rng):
    raw = np.full((4, 6), 8, dtype=np.uint8)  # road (raw 8 -> train id 6)
    raw[0] = 1  # unlabelled
    raw[1, :2] = 2  # building -> 0
    raw[2, 2:4] = 14  # anomaly
    raw[3, 5] = 13  # traffic sign -> 11
    for top, sub, folder in (("train", "training", "t1"), ("train", "validation", "t4"), ("test", "test", "t5")):
        write_png(tmp_path / top / "images" / sub / folder / "300.png", rng.integers(0, 256, (4, 6, 3), dtype=np.uint8))
        write_png(tmp_path / top / "annotations" / sub / folder / "300.png", raw)
    return tmp_path


def test_train_holds_the_anomaly_out(streethazards):
    dataset = StreetHazardsDataset(streethazards, "train")
    assert len(dataset.classes) == 12 and dataset.classes[6].name == "road"
    sample = dataset[0]
    semantic = sample["semantic"]
    assert sample["name"] == "t1_300"
    assert (semantic[0] == 255).all() and (semantic[1, :2] == 0).all() and semantic[3, 5] == 11 and semantic[3, 0] == 6
    assert (semantic[2, 2:4] == 255).all() and "anomaly" not in sample
    assert StreetHazardsDataset(streethazards, "val")[0]["name"] == "t4_300"


def test_test_split_has_unknown_and_anomaly_ground_truth(streethazards):
    sample = StreetHazardsDataset(streethazards, "test")[0]
    assert (sample["semantic"][2, 2:4] == 254).all()
    anomaly = sample["anomaly"]
    assert (anomaly[2, 2:4] == 1).all() and (anomaly[0] == 255).all() and anomaly[3, 0] == 0


@pytest.mark.parametrize("value", [0, 15])
def test_raw_values_outside_1_to_14_name_the_file(streethazards, value):
    path = streethazards / "train" / "annotations" / "training" / "t1" / "300.png"
    write_png(path, np.full((4, 6), value, dtype=np.uint8))
    with pytest.raises(AnomaskError, match="t1/300.png"):
        StreetHazardsDataset(streethazards, "train")[0]


def test_missing_layout_names_the_folder(tmp_path):
    with pytest.raises(AnomaskError, match="images/training: StreetHazards image folder not found"):
        StreetHazardsDataset(tmp_path, "train")
