"""Contact sheet of generated frames with their labels (``anomask data sheet``).

One row per frame, labelled on the left with its split and frame number: the image, the
semantic map in the class palette (unknown 254 white, void 255 black), the instances in
random colours and the anomaly ground truth (1 white, 255 grey). Rows: the first
``per_split`` frames of train and of the anomaly test split (one seen and one unseen group
image when there are two).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from anomask.errors import AnomaskError
from anomask.models.metadata import IGNORE_ID, UNKNOWN_ID, ClassInfo
from anomask.training.data.cityscapes import CityscapesDataset
from anomask.training.data.imageio import write_png
from anomask.training.data.synthetic.reader import SyntheticAnomalyDataset

COLUMNS = ("image", "semantic", "instances", "anomaly")
FONT, FONT_SCALE = cv2.FONT_HERSHEY_SIMPLEX, 0.4


def colourise(semantic: np.ndarray, classes: tuple[ClassInfo, ...]) -> np.ndarray:
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[: len(classes)] = [c.color for c in classes]
    palette[UNKNOWN_ID] = (255, 255, 255)
    return palette[semantic]


def _instances_view(instances: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    if instances is None:
        return np.zeros((*shape, 3), dtype=np.uint8)
    colours = np.random.default_rng(0).integers(60, 256, size=(int(instances.max()) + 1, 3)).astype(np.uint8)
    colours[0] = 0
    return colours[instances]


def _anomaly_view(anomaly: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    view = np.zeros(shape, dtype=np.uint8)
    if anomaly is not None:
        view[anomaly == 1] = 255
        view[anomaly == IGNORE_ID] = 110
    return np.repeat(view[..., None], 3, axis=2)


def _row(sample: dict, classes: tuple[ClassInfo, ...], width: int) -> np.ndarray:
    shape = sample["image"].shape[:2]
    tiles = [
        sample["image"],
        colourise(sample["semantic"], classes),
        _instances_view(sample.get("instances"), shape),
        _anomaly_view(sample.get("anomaly"), shape),
    ]
    height = round(shape[0] * width / shape[1])
    resized = [cv2.resize(tiles[0], (width, height), interpolation=cv2.INTER_AREA)]
    resized += [cv2.resize(t, (width, height), interpolation=cv2.INTER_NEAREST) for t in tiles[1:]]
    return np.hstack(resized)


def _text_tile(lines: list[str], height: int, width: int) -> np.ndarray:
    tile = np.full((height, width, 3), 255, dtype=np.uint8)
    for number, line in enumerate(lines):
        cv2.putText(tile, line, (4, 13 + 14 * number), FONT, FONT_SCALE, (0, 0, 0), 1, cv2.LINE_AA)
    return tile


def contact_sheet(root: Path, out: Path, per_split: int = 2, width: int = 256) -> np.ndarray:
    root = Path(root)
    splits: list[tuple[str, CityscapesDataset | SyntheticAnomalyDataset]] = []
    if (root / "leftImg8bit" / "train").is_dir():
        splits.append(("train", CityscapesDataset(root, "train")))
    if (root / "anomaly").is_dir():
        splits.append(("anomaly test", SyntheticAnomalyDataset(root)))
    if not splits:
        raise AnomaskError(f"{root}: no leftImg8bit/train or anomaly/ split to show")
    label_width = 8 + max(cv2.getTextSize(label, FONT, FONT_SCALE, 1)[0][0] for label, _ in splits)
    header = np.hstack([_text_tile(["split"], 18, label_width), *[_text_tile([title], 18, width) for title in COLUMNS]])
    rows = []
    for label, dataset in splits:
        for index in range(min(per_split, len(dataset))):
            row = _row(dataset[index], dataset.classes, width)
            rows.append(np.hstack([_text_tile([label, f"#{index}"], row.shape[0], label_width), row]))
    sheet = np.vstack([header, *rows])
    write_png(Path(out), sheet)
    return sheet
