"""Readers for the public anomaly benchmarks, and ``open_benchmark``: every benchmark dataset
reachable from one place.

Each reader yields the shared sample dict: ``image`` uint8 [H, W, 3] RGB, ``anomaly`` uint8
[H, W] (0 inlier, 1 anomaly, 255 ignore), ``semantic`` uint8 [H, W] (254 on anomaly pixels,
255 elsewhere: these benchmarks label no known classes) and ``name`` (the image file's path
relative to the root). ``classes`` is empty for the same reason. Files are read lazily, one
sample per ``__getitem__``; a missing or unreadable file, a label/image size mismatch or a
label value outside the benchmark's convention raises AnomaskError naming the file.

Layouts (as distributed by the benchmarks' authors, or -- Fishyscapes, whose official
validation data ships through TFDS -- as in the evaluation bundle of Mask2Anomaly (Rai et al., 2024)):

- ``fishyscapes-lostandfound``, ``fishyscapes-static``: ``images/<id>.<png|jpg|webp>``, ``labels_masks/<id>.png``;
  label values -> anomaly: 0, 1, 255 as is
- ``road-anomaly``: ``frame_list.json`` (image file names), ``frames/<name>.<jpg|webp>``,
  ``frames/<stem>.labels/labels_semantic.png``; label values -> anomaly: 0 -> 0, 2 -> 1
- ``smiyc-roadanomaly21``: ``images/<id>.<jpg|png|webp>``, ``labels_masks/<id>_labels_semantic.png``; label values
  -> anomaly: 0, 1, 255 as is
- ``smiyc-roadobstacle21``: the same, images usually ``.webp``; label values -> anomaly: 0 road, 1 obstacle, 255
  off-road (ignored)
- ``lostandfound``: ``leftImg8bit/<split>/<scene>/<id>_leftImg8bit.png``,
  ``gtCoarse/<split>/<scene>/<id>_gtCoarse_labelIds.png``; label values -> anomaly: 0 -> 255, 1 (road) -> 0, 2..200
  -> 1, above 200 -> 255

Lost&Found: the range 2..200 and "everything else ignored" follow the SMIYC benchmark code
(``LAF_CLASSES``) and Mask2Anomaly's script; frames whose labels are all 0 (17 in the test
split) contribute nothing because every pixel is ignore, so they need no exclusion list.
StreetHazards, the COCO open panoptic splits, Cityscapes-layout splits (the synthetic
default's train/val among them) and the synthetic default's anomaly split are read by
``anomask.training.data``'s readers, imported here (``streethazards``,
``coco-open-panoptic``, ``cityscapes``, ``synthetic-anomaly``); image and label files are
read with its ``imageio`` too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anomask.errors import AnomaskError
from anomask.evaluation.metrics.inputs import check_anomaly_labels, distinct_values
from anomask.models.metadata import IGNORE_ID, UNKNOWN_ID, ClassInfo
from anomask.training.data import imageio
from anomask.training.data.cityscapes import CityscapesDataset
from anomask.training.data.coco_panoptic import CocoPanopticDataset
from anomask.training.data.streethazards import StreetHazardsDataset
from anomask.training.data.synthetic import SyntheticAnomalyDataset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")

LabelMap = Callable[[np.ndarray, Path], np.ndarray]


def read_label(path: Path) -> np.ndarray:
    """A single-channel 8-bit label image, values unchanged."""
    label = imageio.read_label(path)
    if label.dtype != np.uint8:
        raise AnomaskError(f"{path}: anomaly benchmark labels are 8-bit, this file is {label.dtype}")
    return label


def fishyscapes_labels(label: np.ndarray, path: Path) -> np.ndarray:
    """Fishyscapes and SMIYC: already 0 inlier, 1 anomaly, 255 ignore."""
    check_anomaly_labels(label, str(path))
    return label


def road_anomaly_labels(label: np.ndarray, path: Path) -> np.ndarray:
    """Road Anomaly: background 0, anomaly 2 (the dataset's readme)."""
    bad = sorted({int(v) for v in distinct_values(label)} - {0, 2})
    if bad:
        raise AnomaskError(
            f"label file {path} holds values {bad}; Road Anomaly labels are 0 (background) and 2 (anomaly)"
        )
    return (label == 2).astype(np.uint8)


def lost_and_found_labels(label: np.ndarray, path: Path) -> np.ndarray:
    """Lost&Found labelIds: 0 unlabelled -> ignore, 1 road -> inlier, 2..200 obstacles -> anomaly."""
    anomaly = np.full(label.shape, IGNORE_ID, dtype=np.uint8)
    anomaly[label == 1] = 0
    anomaly[(label >= 2) & (label <= 200)] = 1
    return anomaly


@dataclass(frozen=True)
class Frame:
    name: str
    image: Path
    label: Path


class AnomalyBenchmark:
    """A list of (image, label) files plus the benchmark's label conversion."""

    classes: tuple[ClassInfo, ...] = ()

    def __init__(self, benchmark: str, root: Path, frames: list[Frame], label_map: LabelMap) -> None:
        if not frames:
            raise AnomaskError(f"{benchmark}: no images found under {root}")
        self.benchmark = benchmark
        self.root = root
        self.frames = frames
        self.label_map = label_map

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> dict[str, Any]:
        frame = self.frames[index]
        image = imageio.read_rgb(frame.image)
        label = read_label(frame.label)
        imageio.check_same_size(image, label, frame.image, frame.label)
        anomaly = self.label_map(label, frame.label)
        semantic = np.where(anomaly == 1, UNKNOWN_ID, IGNORE_ID).astype(np.uint8)
        return {"image": image, "anomaly": anomaly, "semantic": semantic, "name": frame.name}


def _existing_root(root: str | Path, benchmark: str) -> Path:
    path = Path(root).expanduser()
    if not path.is_dir():
        raise AnomaskError(f"{benchmark}: dataset folder not found: {path}")
    return path


def _images_in(folder: Path, benchmark: str) -> list[Path]:
    if not folder.is_dir():
        raise AnomaskError(f"{benchmark}: image folder not found: {folder}")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _images_and_masks(benchmark: str, root: str | Path, label_suffix: str) -> AnomalyBenchmark:
    base = _existing_root(root, benchmark)
    frames = [
        Frame(
            name=str(image.relative_to(base)), image=image, label=base / "labels_masks" / f"{image.stem}{label_suffix}"
        )
        for image in _images_in(base / "images", benchmark)
    ]
    return AnomalyBenchmark(benchmark, base, frames, fishyscapes_labels)


def fishyscapes(root: str | Path, benchmark: str = "fishyscapes-lostandfound") -> AnomalyBenchmark:
    """Fishyscapes (Blum et al., 2021) Lost&Found or Static validation: ``images/`` + ``labels_masks/<id>.png``."""
    return _images_and_masks(benchmark, root, ".png")


def smiyc(root: str | Path, benchmark: str = "smiyc-roadanomaly21") -> AnomalyBenchmark:
    """SMIYC (Chan et al., 2021) RoadAnomaly21 / RoadObstacle21: ``images/`` +
    ``labels_masks/<id>_labels_semantic.png``. On the obstacle track 255 marks everything
    off the road, so only the road is evaluated."""
    return _images_and_masks(benchmark, root, "_labels_semantic.png")


def road_anomaly(root: str | Path) -> AnomalyBenchmark:
    """Road Anomaly (Lis et al., 2019) in its original layout, driven by ``frame_list.json``."""
    benchmark = "road-anomaly"
    base = _existing_root(root, benchmark)
    listing = base / "frame_list.json"
    if not listing.is_file():
        raise AnomaskError(f"{benchmark}: frame list not found: {listing}")
    try:
        names = json.loads(listing.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise AnomaskError(f"{benchmark}: {listing} is not valid JSON: {error}") from error
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise AnomaskError(f"{benchmark}: {listing} must be a JSON list of image file names")
    frames = []
    for entry in names:
        image = base / "frames" / entry
        frames.append(
            Frame(
                name=f"frames/{entry}",
                image=image,
                label=base / "frames" / f"{image.stem}.labels" / "labels_semantic.png",
            )
        )
    return AnomalyBenchmark(benchmark, base, frames, road_anomaly_labels)


def lost_and_found(root: str | Path, split: str = "test") -> AnomalyBenchmark:
    """Lost&Found (Pinggera et al., 2016), Cityscapes-style layout, ``split`` train or test."""
    benchmark = "lostandfound"
    base = _existing_root(root, benchmark)
    image_root = base / "leftImg8bit" / split
    if not image_root.is_dir():
        raise AnomaskError(f"{benchmark}: split folder not found: {image_root}")
    suffix = "_leftImg8bit"
    frames = []
    for image in sorted(image_root.glob(f"*/*{suffix}.*")):
        if image.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        frame_id = image.stem[: -len(suffix)]
        label = base / "gtCoarse" / split / image.parent.name / f"{frame_id}_gtCoarse_labelIds.png"
        frames.append(Frame(name=str(image.relative_to(base)), image=image, label=label))
    return AnomalyBenchmark(benchmark, base, frames, lost_and_found_labels)


def streethazards(root: str | Path, split: str = "test") -> StreetHazardsDataset:
    """StreetHazards (``anomask.training.data.streethazards``); the test split holds t5 and t6
    (sample names start with ``t5_`` / ``t6_``), anomalies as 254 with ``anomaly`` = 1."""
    return StreetHazardsDataset(_existing_root(root, "streethazards"), split=split)


def coco_open_panoptic(root: str | Path, open_set: str = "20", split: str = "val2017") -> CocoPanopticDataset:
    """COCO panoptic with the open-set split's removed classes as unknown (254, with instance
    ids; ``anomask.training.data.coco_panoptic``), from the standard COCO layout:
    ``annotations/panoptic_<split>.json``, ``annotations/panoptic_<split>/`` and ``<split>/``.
    Its class 0 (person) is a thing: feed PQ through ``update_labels``."""
    base = _existing_root(root, "coco-open-panoptic")
    annotations = base / "annotations"
    return CocoPanopticDataset(
        annotations / f"panoptic_{split}.json",
        base / split,
        annotations / f"panoptic_{split}",
        open_set=open_set,
        mode="eval",
    )


def cityscapes(root: str | Path, split: str = "val") -> CityscapesDataset:
    """A Cityscapes-layout split (``leftImg8bit/<split>``, ``gtFine/<split>``): closed-set
    semantic ground truth for mIoU; ``root/classes.json`` names the classes when present (the
    synthetic default writes one), else the 19 Cityscapes classes."""
    return CityscapesDataset(_existing_root(root, "cityscapes"), split=split)


def synthetic_anomaly(root: str | Path, split: str = "anomaly") -> SyntheticAnomalyDataset:
    """An anomaly split of the synthetic default (``anomask data synth --out DIR``; DIR is the
    root): ``anomaly`` (the test split) or ``anomaly_val`` (validation, seen objects only);
    Fishyscapes-style labels plus semantic/instance maps with 254 on anomalies."""
    return SyntheticAnomalyDataset(_existing_root(root, "synthetic-anomaly"), split)


BENCHMARKS: tuple[str, ...] = (
    "fishyscapes-lostandfound",
    "fishyscapes-static",
    "road-anomaly",
    "smiyc-roadanomaly21",
    "smiyc-roadobstacle21",
    "lostandfound",
    "streethazards",
    "coco-open-panoptic",
    "cityscapes",
    "synthetic-anomaly",
)
_OPTIONS = {
    "lostandfound": {"split"},
    "streethazards": {"split"},
    "coco-open-panoptic": {"open_set", "split"},
    "cityscapes": {"split"},
    "synthetic-anomaly": {"split"},
}


def open_benchmark(name: str, root: str | Path, **options: Any) -> Any:
    """The dataset of benchmark ``name`` stored under ``root``; ``options`` go to its reader
    (``split`` for Lost&Found, Cityscapes and the training-data readers, the synthetic
    anomaly splits among them)."""
    unexpected = set(options) - _OPTIONS.get(name, set())
    if name in BENCHMARKS and unexpected:
        raise AnomaskError(f"benchmark {name!r} does not take the options {', '.join(sorted(unexpected))}")
    if name in ("fishyscapes-lostandfound", "fishyscapes-static"):
        return fishyscapes(root, name)
    if name in ("smiyc-roadanomaly21", "smiyc-roadobstacle21"):
        return smiyc(root, name)
    if name == "road-anomaly":
        return road_anomaly(root)
    if name == "lostandfound":
        return lost_and_found(root, **options)
    if name == "streethazards":
        return streethazards(root, **options)
    if name == "coco-open-panoptic":
        return coco_open_panoptic(root, **options)
    if name == "cityscapes":
        return cityscapes(root, **options)
    if name == "synthetic-anomaly":
        return synthetic_anomaly(root, **options)
    raise AnomaskError(f"unknown benchmark {name!r}; valid: {', '.join(BENCHMARKS)}")
