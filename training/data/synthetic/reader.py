"""Reader of the anomaly splits (Fishyscapes layout plus panoptic ground truth): the test
split ``anomaly`` or the validation split ``anomaly_val``.

``<root>/<split>/images/*.png`` with ``labels_masks/`` (0 inlier, 1 anomaly, 255 void)
and, when present, ``semantic/`` (train ids, 254 on anomalies) and ``instances/``
(uint16 ids of thing and anomaly instances) and ``objects.json`` (each image's group).
Classes come from ``<root>/classes.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from anomask.errors import AnomaskError
from anomask.models.classes import load_class_list
from anomask.models.metadata import IGNORE_ID, UNKNOWN_ID, ClassInfo
from anomask.training.data.cityscapes import require_dir
from anomask.training.data.imageio import check_label_values, check_same_size, read_label, read_rgb
from anomask.training.data.synthetic.writer import ANOMALY_TEST


class SyntheticAnomalyDataset:
    """Samples ``{"image", "anomaly", "semantic"?, "instances"?, "name"}`` of an anomaly
    split: ``anomaly`` (the test split) or ``anomaly_val`` (validation, seen objects only)."""

    def __init__(self, root: Path, split: str = ANOMALY_TEST) -> None:
        root = Path(root)
        self.split = split
        self.folder = require_dir(root / split, f"{split} split")
        self.class_list = load_class_list(root / "classes.json")
        images = require_dir(self.folder / "images", "anomaly image")
        require_dir(self.folder / "labels_masks", "anomaly label")
        self.names = [p.stem for p in sorted(images.glob("*.png"))]
        if not self.names:
            raise AnomaskError(f"{images}: no PNG images")
        self.has_panoptic = (self.folder / "semantic").is_dir() and (self.folder / "instances").is_dir()
        self.records: dict[str, dict[str, Any]] = {}
        manifest = self.folder / "objects.json"
        if manifest.is_file():
            try:
                self.records = {r["name"]: r for r in json.loads(manifest.read_text())["images"]}
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise AnomaskError(f"{manifest}: not an anomaly object list ({error!r})") from error

    @property
    def classes(self) -> tuple[ClassInfo, ...]:
        return self.class_list.classes

    def __len__(self) -> int:
        return len(self.names)

    def group(self, index: int) -> str | None:
        """``seen`` or ``unseen``: where this image's anomalies come from (None if unknown)."""
        return self.records.get(self.names[index], {}).get("group")

    def objects(self, index: int) -> list[dict[str, Any]]:
        """The image's anomaly objects: instance id, object name, visible pixels."""
        return list(self.records.get(self.names[index], {}).get("objects", []))

    def __getitem__(self, index: int) -> dict[str, Any]:
        name = self.names[index]
        image_path = self.folder / "images" / f"{name}.png"
        image = read_rgb(image_path)
        mask_path = self.folder / "labels_masks" / f"{name}.png"
        anomaly = read_label(mask_path)
        check_same_size(image, anomaly, image_path, mask_path)
        check_label_values(anomaly, 2, mask_path)
        sample: dict[str, Any] = {"image": image, "anomaly": anomaly.astype(np.uint8), "name": name}
        if self.has_panoptic:
            semantic_path = self.folder / "semantic" / f"{name}.png"
            instances_path = self.folder / "instances" / f"{name}.png"
            semantic, instances = read_label(semantic_path), read_label(instances_path)
            check_same_size(image, semantic, image_path, semantic_path)
            check_same_size(image, instances, image_path, instances_path)
            check_label_values(semantic, len(self.classes), semantic_path, allowed=(UNKNOWN_ID, IGNORE_ID))
            sample["semantic"] = semantic.astype(np.uint8)
            sample["instances"] = instances.astype(np.int32)
        return sample
