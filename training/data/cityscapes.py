"""Cityscapes layout reader (also reads the synthetic default's train/val splits).

``leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` with
``gtFine/<split>/<city>/<name>_gtFine_labelTrainIds.png`` (or, when that file was never
generated, ``_labelIds.png`` mapped to train ids) and ``_instanceIds.png`` when present:
there, ids >= 1000 are thing instances ``labelId * 1000 + k``; smaller ids are stuff or
things without an instance id (crowds).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anomask.errors import AnomaskError
from anomask.models.classes import CITYSCAPES, ClassList, load_class_list
from anomask.models.metadata import ClassInfo
from anomask.training.data.imageio import check_label_values, check_same_size, read_label, read_rgb

IMAGE_SUFFIX = "_leftImg8bit.png"
TRAIN_IDS_SUFFIX = "_gtFine_labelTrainIds.png"
LABEL_IDS_SUFFIX = "_gtFine_labelIds.png"
INSTANCE_IDS_SUFFIX = "_gtFine_instanceIds.png"


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise AnomaskError(f"{path}: {what} folder not found")
    return path


def compact_instances(instance_ids: np.ndarray, first_instance_id: int = 1000) -> np.ndarray:
    """Cityscapes instance ids (``labelId * 1000 + k``) -> int32 ids 1..n, 0 elsewhere."""
    out = np.zeros(instance_ids.shape, dtype=np.int32)
    is_instance = instance_ids >= first_instance_id
    if is_instance.any():
        _, inverse = np.unique(instance_ids[is_instance], return_inverse=True)
        out[is_instance] = inverse.astype(np.int32) + 1
    return out


@dataclass(frozen=True)
class _Frame:
    name: str
    image: Path
    semantic: Path
    semantic_is_train_ids: bool
    instances: Path | None


class CityscapesDataset:
    """Samples ``{"image", "semantic", "instances"?, "name"}`` of one split.

    ``classes_file``: a class list file; by default ``<root>/classes.json`` when it exists
    (the synthetic default writes one), else the 19 official Cityscapes classes.
    """

    def __init__(self, root: Path, split: str = "train", classes_file: Path | None = None) -> None:
        self.root = Path(root)
        if classes_file is None and (self.root / "classes.json").is_file():
            classes_file = self.root / "classes.json"
        self.class_list: ClassList = load_class_list(classes_file) if classes_file else CITYSCAPES
        self._lut = self.class_list.label_to_train()
        self._is_thing = np.zeros(256, dtype=bool)
        self._is_thing[: len(self.classes)] = [c.is_thing for c in self.classes]
        image_dir = require_dir(self.root / "leftImg8bit" / split, "Cityscapes image")
        label_dir = require_dir(self.root / "gtFine" / split, "Cityscapes label")
        images = sorted(image_dir.glob(f"*/*{IMAGE_SUFFIX}"))
        self.frames = tuple(self._frame(path, image_dir, label_dir) for path in images)
        if not self.frames:
            raise AnomaskError(f"{image_dir}: no <city>/*{IMAGE_SUFFIX} images")

    @property
    def classes(self) -> tuple[ClassInfo, ...]:
        return self.class_list.classes

    @staticmethod
    def _frame(image: Path, image_dir: Path, label_dir: Path) -> _Frame:
        name = image.name[: -len(IMAGE_SUFFIX)]
        labels = label_dir / image.parent.relative_to(image_dir)
        train_ids, label_ids = labels / f"{name}{TRAIN_IDS_SUFFIX}", labels / f"{name}{LABEL_IDS_SUFFIX}"
        if not train_ids.is_file() and not label_ids.is_file():
            raise AnomaskError(f"{train_ids}: label file not found (nor {label_ids.name}) for image {image}")
        instances = labels / f"{name}{INSTANCE_IDS_SUFFIX}"
        has_train_ids = train_ids.is_file()
        return _Frame(
            name,
            image,
            train_ids if has_train_ids else label_ids,
            has_train_ids,
            instances if instances.is_file() else None,
        )

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> dict[str, Any]:
        frame = self.frames[index]
        image = read_rgb(frame.image)
        semantic = read_label(frame.semantic)
        check_same_size(image, semantic, frame.image, frame.semantic)
        if frame.semantic_is_train_ids:
            if semantic.dtype != np.uint8:
                raise AnomaskError(f"{frame.semantic}: train-id maps must be 8-bit, this one is {semantic.dtype}")
            check_label_values(semantic, len(self.classes), frame.semantic)
        elif semantic.dtype != np.uint8:
            raise AnomaskError(f"{frame.semantic}: label-id maps must be 8-bit, this one is {semantic.dtype}")
        else:
            semantic = self._lut[semantic]
        sample: dict[str, Any] = {"image": image, "semantic": semantic, "name": frame.name}
        if frame.instances is not None:
            instance_ids = read_label(frame.instances)
            check_same_size(image, instance_ids, frame.image, frame.instances)
            instances = compact_instances(instance_ids)
            instances[~self._is_thing[semantic]] = 0  # e.g. caravans: instances of an unlisted class
            sample["instances"] = instances
        return sample
