"""Negative (outlier) sources behind one interface: :class:`NegativePool`.

A pool draws :class:`Negative` cut-outs (RGB crop + binary mask, cropped to the mask's
box) with an explicit ``numpy.random.Generator``, so pasting is reproducible. Sources:

- :class:`CocoInstanceNegatives`: instances of a COCO instances JSON (the AnomalyMix source
  of Mask2Anomaly (Rai et al., 2024), §7.3), classes that overlap the road ontology
  excluded;
- :class:`AdeNegatives`: ADE20K class PNGs (one class region per draw, as UNO's and EAM's
  official code) or instance PNGs (R = class, G = instance id);
- :class:`BoxNegatives`: whole images with one bounding box (ImageNet-1k-bb, noisy
  negatives (Bevandić et al., 2022), §4.1: the first box of each PASCAL VOC XML); the mask
  is the whole box;
- :class:`ArrayNegatives`: cut-outs in memory (the synthetic default's "seen" objects).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from anomask.errors import AnomaskError
from anomask.training.data.cityscapes import require_dir
from anomask.training.data.coco_masks import segmentation_to_mask
from anomask.training.data.folder import IMAGE_EXTENSIONS
from anomask.training.data.imageio import check_same_size, read_array, read_rgb

ROAD_COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "bus", "train", "truck", "traffic light", "stop sign",
)  # fmt: skip
"""COCO classes that are inliers of a road-scene ontology, so never negatives."""


@dataclass(frozen=True)
class Negative:
    image: np.ndarray
    """uint8 ``[h, w, 3]`` RGB, cropped to the mask's bounding box."""
    mask: np.ndarray
    """bool ``[h, w]``, True on the object."""
    name: str


def crop_to_mask(image: np.ndarray, mask: np.ndarray, name: str) -> Negative:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise AnomaskError(f"{name}: empty negative mask")
    box = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
    return Negative(np.ascontiguousarray(image[box]), np.ascontiguousarray(mask[box]), name)


class NegativePool(ABC):
    """Entries indexed ``0..len-1``; an entry may hold several objects (one is drawn)."""

    source: str
    """Where the pool comes from, for messages."""
    max_attempts = 20

    def _require_entries(self) -> None:
        if len(self) == 0:
            raise AnomaskError(f"{self.source}: the negative pool is empty")

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def draw(self, index: int, rng: np.random.Generator) -> Negative | None:
        """An object of entry ``index``, or None when the entry has none usable."""

    def sample(self, rng: np.random.Generator) -> Negative:
        for _ in range(self.max_attempts):
            negative = self.draw(int(rng.integers(len(self))), rng)
            if negative is not None:
                return negative
        raise AnomaskError(f"{self.source}: no usable negative in {self.max_attempts} random entries")


class ArrayNegatives(NegativePool):
    def __init__(self, negatives: Sequence[Negative], source: str = "in-memory negatives") -> None:
        self.negatives = tuple(negatives)
        self.source = source
        self._require_entries()

    def __len__(self) -> int:
        return len(self.negatives)

    def draw(self, index: int, rng: np.random.Generator) -> Negative:
        return self.negatives[index]


class CocoInstanceNegatives(NegativePool):
    """Non-crowd instances of a COCO instances JSON with at least ``min_area`` pixels."""

    def __init__(
        self,
        annotation_file: Path,
        image_dir: Path,
        exclude: Iterable[str] = ROAD_COCO_CLASSES,
        min_area: float = 1000.0,
    ) -> None:
        annotation_file = Path(annotation_file)
        self.source = str(annotation_file)
        self.image_dir = require_dir(Path(image_dir), "COCO image")
        if not annotation_file.is_file():
            raise AnomaskError(f"{annotation_file}: COCO instances file not found")
        try:
            data = json.loads(annotation_file.read_text())
            excluded = {c["id"] for c in data["categories"] if c["name"] in set(exclude)}
            self.images = {image["id"]: image for image in data["images"]}
            self.annotations = [
                a
                for a in data["annotations"]
                if not a.get("iscrowd", 0) and a["category_id"] not in excluded and a.get("area", 0) >= min_area
            ]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise AnomaskError(f"{annotation_file}: not a COCO instances file ({error!r})") from error
        self._require_entries()

    def __len__(self) -> int:
        return len(self.annotations)

    def draw(self, index: int, rng: np.random.Generator) -> Negative | None:
        annotation = self.annotations[index]
        info = self.images.get(annotation["image_id"])
        if info is None:
            raise AnomaskError(
                f"{self.source}: annotation {annotation.get('id')} names unknown image id {annotation['image_id']}"
            )
        image = read_rgb(self.image_dir / info["file_name"])
        where = f"{self.source} annotation {annotation.get('id')}"
        mask = segmentation_to_mask(annotation["segmentation"], image.shape[0], image.shape[1], where)
        return crop_to_mask(image, mask, f"coco:{annotation.get('id')}") if mask.any() else None


class AdeNegatives(NegativePool):
    """ADE20K images with class PNGs (``kind="class"``: one class region, label 0 =
    unlabelled skipped) or instance PNGs (``kind="instance"``: R class, G instance id)."""

    def __init__(
        self,
        image_dir: Path,
        annotation_dir: Path,
        kind: Literal["class", "instance"] = "class",
        skip_classes: Iterable[int] = (),
        min_area: int = 100,
    ) -> None:
        if kind not in ("class", "instance"):
            raise AnomaskError(f"ADE20K annotation kind must be 'class' or 'instance', not {kind!r}")
        self.kind = kind
        self.skip = np.asarray(sorted(set(skip_classes)), dtype=np.int64)
        self.min_area = min_area
        image_dir = require_dir(Path(image_dir), "ADE20K image")
        annotation_dir = require_dir(Path(annotation_dir), "ADE20K annotation")
        self.source = str(annotation_dir)
        images = {p.stem: p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS}
        self.pairs = [(images[p.stem], p) for p in sorted(annotation_dir.glob("*.png")) if p.stem in images]
        self._require_entries()

    def __len__(self) -> int:
        return len(self.pairs)

    def _regions(self, annotation: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray]:
        """Per-pixel region ids (0 = none) and the usable region ids."""
        if self.kind == "class":
            if annotation.ndim != 2:
                raise AnomaskError(f"{path}: ADE20K class annotations have one channel")
            regions = annotation.astype(np.int64)
            classes = regions
        else:
            if annotation.ndim != 3:
                raise AnomaskError(f"{path}: ADE20K instance annotations are RGB (R class, G instance)")
            classes = annotation[..., 0].astype(np.int64)
            regions = np.where(annotation[..., 1] > 0, classes * 256 + annotation[..., 1], 0)
        ids, counts = np.unique(regions, return_counts=True)
        region_class = ids if self.kind == "class" else ids // 256
        usable = (ids > 0) & (counts >= self.min_area) & ~np.isin(region_class, self.skip)
        return regions, ids[usable]

    def draw(self, index: int, rng: np.random.Generator) -> Negative | None:
        image_path, annotation_path = self.pairs[index]
        annotation = read_array(annotation_path)
        image = read_rgb(image_path)
        check_same_size(image, annotation, image_path, annotation_path)
        regions, usable = self._regions(annotation, annotation_path)
        if usable.size == 0:
            return None
        region = usable[int(rng.integers(usable.size))]
        return crop_to_mask(image, regions == region, f"ade:{annotation_path.stem}:{region}")


class BoxNegatives(NegativePool):
    """Images with PASCAL VOC XML boxes (ImageNet's format); the first box is the negative."""

    def __init__(self, image_dir: Path, annotation_dir: Path) -> None:
        self.image_dir = require_dir(Path(image_dir), "negative image")
        annotation_dir = require_dir(Path(annotation_dir), "bounding-box annotation")
        self.source = str(annotation_dir)
        self.pairs: list[tuple[Path, Path]] = []
        for xml in sorted(annotation_dir.rglob("*.xml")):
            stem = self.image_dir / xml.relative_to(annotation_dir).with_suffix("")
            image = next(
                (stem.with_suffix(e) for e in (".JPEG", ".jpg", ".jpeg", ".png") if stem.with_suffix(e).is_file()), None
            )
            if image is not None:
                self.pairs.append((image, xml))
        self._require_entries()

    def __len__(self) -> int:
        return len(self.pairs)

    def image_and_box(self, index: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        """The whole image and its first box ``(x0, y0, x1, y1)``, clipped, end exclusive."""
        image_path, xml = self.pairs[index]
        image = read_rgb(image_path)
        try:
            box = ElementTree.parse(xml).getroot().find("object/bndbox")
            x0, y0, x1, y1 = (int(float(box.find(k).text)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (ElementTree.ParseError, AttributeError, TypeError, ValueError) as error:
            raise AnomaskError(f"{xml}: no readable object/bndbox ({error!r})") from error
        height, width = image.shape[:2]
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1 + 1), min(height, y1 + 1)
        if x1 <= x0 or y1 <= y0:
            raise AnomaskError(f"{xml}: empty bounding box inside {image_path}")
        return image, (x0, y0, x1, y1)

    def draw(self, index: int, rng: np.random.Generator) -> Negative:
        image, (x0, y0, x1, y1) = self.image_and_box(index)
        crop = np.ascontiguousarray(image[y0:y1, x0:x1])
        return Negative(crop, np.ones(crop.shape[:2], dtype=bool), f"box:{self.pairs[index][1].stem}")
