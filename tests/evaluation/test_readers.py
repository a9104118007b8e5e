import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from anomask.errors import AnomaskError
from anomask.evaluation.readers import BENCHMARKS, open_benchmark

RNG = np.random.default_rng(0)


def _image(path: Path, height=6, width=8) -> np.ndarray:
    rgb = RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return rgb


def _label(path: Path, values) -> np.ndarray:
    label = np.asarray(values, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), label)
    return label


def _label_map(height=6, width=8, values=(0, 1, 255)) -> np.ndarray:
    return RNG.choice(np.array(values, np.uint8), size=(height, width))


def _check_sample(sample, rgb, anomaly):
    assert set(sample) == {"image", "anomaly", "semantic", "name"}
    assert sample["image"].dtype == np.uint8 and sample["image"].shape == rgb.shape
    assert sample["anomaly"].dtype == np.uint8
    np.testing.assert_array_equal(sample["anomaly"], anomaly)
    np.testing.assert_array_equal(sample["semantic"], np.where(anomaly == 1, 254, 255))


def test_fishyscapes_layout(tmp_path):
    rgb = _image(tmp_path / "images" / "a.png")
    label = _label(tmp_path / "labels_masks" / "a.png", _label_map())
    _image(tmp_path / "images" / "b.jpg")
    _label(tmp_path / "labels_masks" / "b.png", _label_map())
    dataset = open_benchmark("fishyscapes-lostandfound", tmp_path)
    assert len(dataset) == 2 and dataset.classes == ()
    sample = dataset[0]
    _check_sample(sample, rgb, label)
    np.testing.assert_array_equal(sample["image"], rgb)  # PNG: lossless, RGB order kept
    assert sample["name"] == "images/a.png"
    assert dataset[1]["name"] == "images/b.jpg"


def test_smiyc_obstacle_track_layout(tmp_path):
    rgb = _image(tmp_path / "images" / "validation_1.webp")
    label = _label(tmp_path / "labels_masks" / "validation_1_labels_semantic.png", _label_map())
    dataset = open_benchmark("smiyc-roadobstacle21", tmp_path)
    _check_sample(dataset[0], rgb, label)  # 255 (off-road) stays ignore


def test_road_anomaly_original_layout_maps_2_to_1(tmp_path):
    (tmp_path / "frame_list.json").write_text(json.dumps(["animals01_calves.jpg"]))
    rgb = _image(tmp_path / "frames" / "animals01_calves.jpg")
    raw = _label(tmp_path / "frames" / "animals01_calves.labels" / "labels_semantic.png", _label_map(values=(0, 2)))
    sample = open_benchmark("road-anomaly", tmp_path)[0]
    _check_sample(sample, rgb, (raw == 2).astype(np.uint8))
    assert sample["name"] == "frames/animals01_calves.jpg"


def test_lost_and_found_label_ids(tmp_path):
    scene = "01_Hanns_Klemm_Str_45"
    frame = f"{scene}_000000_000100"
    rgb = _image(tmp_path / "leftImg8bit" / "test" / scene / f"{frame}_leftImg8bit.png", 2, 3)
    _label(tmp_path / "gtCoarse" / "test" / scene / f"{frame}_gtCoarse_labelIds.png", [[0, 1, 2], [5, 200, 201]])
    dataset = open_benchmark("lostandfound", tmp_path, split="test")
    _check_sample(dataset[0], rgb, np.array([[255, 0, 1], [1, 1, 255]], np.uint8))


def test_missing_and_bad_files_name_the_file(tmp_path):
    _image(tmp_path / "images" / "a.png")
    with pytest.raises(AnomaskError, match=r"labels_masks/a.png: missing or not a readable image"):
        open_benchmark("fishyscapes-static", tmp_path)[0]
    _label(tmp_path / "labels_masks" / "a.png", np.full((6, 8), 3))
    with pytest.raises(AnomaskError, match=r"holds values 3 in .*labels_masks/a.png"):
        open_benchmark("fishyscapes-static", tmp_path)[0]
    _label(tmp_path / "labels_masks" / "a.png", np.zeros((5, 8)))
    with pytest.raises(
        AnomaskError, match=r"labels_masks/a.png: size 8x5 does not match its image .*images/a.png \(8x6\)"
    ):
        open_benchmark("fishyscapes-static", tmp_path)[0]
    _image(tmp_path / "labels_masks" / "a.png")  # an RGB file where a label belongs
    with pytest.raises(AnomaskError, match="must have one channel"):
        open_benchmark("fishyscapes-static", tmp_path)[0]
    (tmp_path / "images" / "broken.png").write_bytes(b"not a png")
    _label(tmp_path / "labels_masks" / "broken.png", np.zeros((6, 8)))
    with pytest.raises(AnomaskError, match=r"images/broken.png: missing or not a readable image"):
        open_benchmark("fishyscapes-static", tmp_path)[1]


def test_road_anomaly_rejects_unexpected_values_and_bad_lists(tmp_path):
    (tmp_path / "frame_list.json").write_text(json.dumps(["f.jpg"]))
    _image(tmp_path / "frames" / "f.jpg")
    _label(tmp_path / "frames" / "f.labels" / "labels_semantic.png", np.ones((6, 8)))
    with pytest.raises(AnomaskError, match=r"labels_semantic.png holds values \[1\]"):
        open_benchmark("road-anomaly", tmp_path)[0]
    (tmp_path / "frame_list.json").write_text("{not json")
    with pytest.raises(AnomaskError, match="frame_list.json is not valid JSON"):
        open_benchmark("road-anomaly", tmp_path)


def test_empty_datasets_and_unknown_names(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(AnomaskError, match="no images found under"):
        open_benchmark("smiyc-roadanomaly21", tmp_path)
    with pytest.raises(AnomaskError, match="dataset folder not found"):
        open_benchmark("fishyscapes-static", tmp_path / "nowhere")
    with pytest.raises(AnomaskError, match="frame list not found"):
        open_benchmark("road-anomaly", tmp_path)
    with pytest.raises(AnomaskError, match="split folder not found"):
        open_benchmark("lostandfound", tmp_path, split="train")
    with pytest.raises(AnomaskError, match=r"unknown benchmark 'fishy'; valid: " + ", ".join(BENCHMARKS)):
        open_benchmark("fishy", tmp_path)
    with pytest.raises(AnomaskError, match="does not take the options split"):
        open_benchmark("fishyscapes-static", tmp_path, split="val")


def test_training_data_readers_are_reachable(tmp_path):
    """Imported, not re-implemented: anomask.training.data's StreetHazards test split and
    the synthetic default's anomaly split."""
    _image(tmp_path / "test" / "images" / "test" / "t5" / "300.png", 2, 2)
    _label(tmp_path / "test" / "annotations" / "test" / "t5" / "300.png", [[2, 14], [1, 3]])
    dataset = open_benchmark("streethazards", tmp_path)
    assert type(dataset).__module__ == "anomask.training.data.streethazards"
    sample = dataset[0]
    np.testing.assert_array_equal(sample["anomaly"], [[0, 1], [255, 0]])
    assert sample["name"] == "t5_300"
    synthetic = tmp_path / "synthetic"
    classes = {"classes": [{"name": "road", "is_thing": False, "color": [128, 64, 128]}]}
    (synthetic / "anomaly").mkdir(parents=True)
    (synthetic / "classes.json").write_text(json.dumps(classes))
    rgb = _image(synthetic / "anomaly" / "images" / "0000.png")
    label = _label(synthetic / "anomaly" / "labels_masks" / "0000.png", _label_map())
    dataset = open_benchmark("synthetic-anomaly", synthetic)
    assert type(dataset).__name__ == "SyntheticAnomalyDataset" and dataset.classes[0].name == "road"
    np.testing.assert_array_equal(dataset[0]["anomaly"], label)
    np.testing.assert_array_equal(dataset[0]["image"], rgb)
