"""Tiny files in each dataset layout, written by the tests themselves."""

import numpy as np
import pytest

from anomask.training.data.imageio import write_png


def random_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def cityscapes_root(tmp_path, rng):
    """Two frames of 8x16 in Cityscapes layout: road/sky halves, a car instance (26001),
    a person instance (24000), a caravan instance (29000, not a train class)."""
    root = tmp_path / "cityscapes"
    for index in range(2):
        name = f"aachen_{index:06d}_000019"
        label_ids = np.full((8, 16), 7, dtype=np.uint8)  # road
        label_ids[:3] = 23  # sky
        instances = label_ids.astype(np.uint16)
        label_ids[4:7, 2:6] = 26
        instances[4:7, 2:6] = 26001
        label_ids[3:8, 10:12] = 24
        instances[3:8, 10:12] = 24000
        label_ids[5:7, 13:15] = 29
        instances[5:7, 13:15] = 29000
        lut = np.full(256, 255, dtype=np.uint8)
        lut[[7, 23, 26, 24]] = [0, 10, 13, 11]
        labels = root / "gtFine" / "train" / "aachen"
        write_png(root / "leftImg8bit" / "train" / "aachen" / f"{name}_leftImg8bit.png", random_image(rng, 8, 16))
        write_png(labels / f"{name}_gtFine_labelTrainIds.png", lut[label_ids])
        write_png(labels / f"{name}_gtFine_labelIds.png", label_ids)
        write_png(labels / f"{name}_gtFine_instanceIds.png", instances)
    return root
