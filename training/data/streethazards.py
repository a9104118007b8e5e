"""StreetHazards reader (Hendrycks et al., 2022; the open-set semantic benchmark of
Mask2Anomaly (Rai et al., 2024), §7.1).

Layout as distributed: ``train/images/training/t*/*.png`` with
``train/annotations/training/...`` (``validation`` for val) and
``test/images/test/t5|t6/*.png`` with ``test/annotations/test/...``. Annotation PNGs hold
1-based labels: 1 unlabelled, 2..13 the 12 known classes, 14 anomaly — 13 labels besides
"unlabelled". The anomaly label is held out of training (255 in train/val) and becomes
the unknown class 254 with ``anomaly`` = 1 in the test split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from anomask.errors import AnomaskError
from anomask.models.classes import STREETHAZARDS
from anomask.models.metadata import IGNORE_ID, UNKNOWN_ID, ClassInfo
from anomask.training.data.cityscapes import require_dir
from anomask.training.data.imageio import check_label_values, check_same_size, read_label, read_rgb

_LAYOUT = {
    "train": ("train", "training"),
    "val": ("train", "validation"),
    "test": ("test", "test"),
}
UNLABELLED, ANOMALY = 1, 14
"""Raw annotation values (1-based, as distributed)."""


class StreetHazardsDataset:
    """Samples ``{"image", "semantic", "anomaly" (test only), "name"}``."""

    def __init__(self, root: Path, split: str = "train") -> None:
        if split not in _LAYOUT:
            raise AnomaskError(f"StreetHazards split must be one of {', '.join(_LAYOUT)}, not {split!r}")
        top, sub = _LAYOUT[split]
        image_dir = require_dir(Path(root) / top / "images" / sub, "StreetHazards image")
        label_dir = require_dir(Path(root) / top / "annotations" / sub, "StreetHazards annotation")
        self.split = split
        self.pairs: list[tuple[Path, Path]] = []
        self.names: list[str] = []
        for image in sorted(image_dir.rglob("*.png")):
            relative = image.relative_to(image_dir)
            label = label_dir / relative
            if not label.is_file():
                raise AnomaskError(f"{label}: annotation not found for image {image}")
            self.pairs.append((image, label))
            self.names.append("_".join(relative.with_suffix("").parts))  # t5/300.png -> t5_300
        if not self.pairs:
            raise AnomaskError(f"{image_dir}: no PNG images")
        self._lut = np.full(256, IGNORE_ID, dtype=np.uint8)
        self._lut[2:ANOMALY] = np.arange(len(STREETHAZARDS.classes), dtype=np.uint8)
        self._lut[ANOMALY] = UNKNOWN_ID if split == "test" else IGNORE_ID

    @property
    def classes(self) -> tuple[ClassInfo, ...]:
        return STREETHAZARDS.classes

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image_path, label_path = self.pairs[index]
        image = read_rgb(image_path)
        raw = read_label(label_path)
        check_same_size(image, raw, image_path, label_path)
        if raw.dtype != np.uint8 or raw.min() < UNLABELLED:
            raise AnomaskError(f"{label_path}: StreetHazards labels are 8-bit values 1..{ANOMALY}, found {raw.min()}")
        check_label_values(raw, ANOMALY + 1, label_path, allowed=())
        sample: dict[str, Any] = {"image": image, "semantic": self._lut[raw], "name": self.names[index]}
        if self.split == "test":
            anomaly = (raw == ANOMALY).astype(np.uint8)
            anomaly[raw == UNLABELLED] = IGNORE_ID
            sample["anomaly"] = anomaly
        return sample
