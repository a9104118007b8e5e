"""COCO panoptic reader with the open-set splits of Mask2Anomaly (Rai et al., 2024), §7.1.

Layout: ``panoptic_<split>.json`` (images, annotations with ``segments_info``,
categories), a folder of panoptic PNGs (segment id = R + 256 G + 256^2 B, 0 = unlabelled)
and the image folder. Category ids map to contiguous train ids in id order.

Open-set splits (Mask2Anomaly, §7.1, after EOPSN (Hwang et al., 2021)): 5 %, 10 % and 20 %
of the 80 thing classes are removed *cumulatively*, so the 20 % split removes all 16 classes
listed there. EAM (Grcić et al., 2023), §4.2, names only the last eight for its "20 %"
setting; eight of 80 would be 10 %, so we follow Mask2Anomaly's cumulative reading. Removed
classes are not among the known classes: in ``mode="train"`` their pixels are void (255)
with no instance; in ``mode="eval"`` they are the unknown class (254) with their instance
ids and ``anomaly`` = 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from anomask.errors import AnomaskError
from anomask.models.metadata import IGNORE_ID, UNKNOWN_ID, ClassInfo
from anomask.training.data.cityscapes import require_dir
from anomask.training.data.imageio import check_same_size, read_array, read_rgb

_SPLIT_5 = ("car", "cow", "pizza", "toilet")
_SPLIT_10 = _SPLIT_5 + ("boat", "tie", "zebra", "stop sign")
_SPLIT_20 = _SPLIT_10 + ("dining table", "banana", "bicycle", "cake", "sink", "cat", "keyboard", "bear")
OPEN_SET_SPLITS: dict[str, tuple[str, ...]] = {"5": _SPLIT_5, "10": _SPLIT_10, "20": _SPLIT_20}
"""Thing classes removed (treated as unknown) in each open-set split, Mask2Anomaly (Rai et al., 2024), §7.1."""


def rgb_to_segment_id(rgb: np.ndarray) -> np.ndarray:
    """COCO panoptic PNG colour -> segment id, ``R + 256 G + 256^2 B``."""
    rgb = rgb.astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


@dataclass(frozen=True)
class _Entry:
    name: str
    image: Path
    panoptic: Path
    segments: tuple[dict[str, Any], ...]


class CocoPanopticDataset:
    """Samples ``{"image", "semantic", "instances", "anomaly"? , "name"}``.

    ``open_set``: ``None`` (closed set) or a key of :data:`OPEN_SET_SPLITS`.
    ``panoptic_dir``: default the folder next to the JSON with the same stem.
    """

    def __init__(
        self,
        annotation_file: Path,
        image_dir: Path,
        panoptic_dir: Path | None = None,
        open_set: str | None = None,
        mode: Literal["train", "eval"] = "train",
    ) -> None:
        annotation_file = Path(annotation_file)
        if open_set is not None and open_set not in OPEN_SET_SPLITS:
            raise AnomaskError(f"unknown open-set split {open_set!r}; choose one of {', '.join(OPEN_SET_SPLITS)}")
        if mode not in ("train", "eval"):
            raise AnomaskError(f"mode must be 'train' or 'eval', not {mode!r}")
        self.mode = mode
        data = self._load_json(annotation_file)
        image_dir = require_dir(Path(image_dir), "COCO image")
        panoptic_dir = require_dir(
            Path(panoptic_dir) if panoptic_dir else annotation_file.with_suffix(""), "COCO panoptic PNG"
        )
        removed = set(OPEN_SET_SPLITS[open_set]) if open_set else set()
        categories = sorted(data["categories"], key=lambda c: c["id"])
        kept = [c for c in categories if c["name"] not in removed]
        self.removed_names = tuple(c["name"] for c in categories if c["name"] in removed)
        self.classes: tuple[ClassInfo, ...] = tuple(
            ClassInfo(c["name"], bool(c.get("isthing", 0)), tuple(c.get("color", (128, 128, 128)))) for c in kept
        )
        self._train_id = {c["id"]: i for i, c in enumerate(kept)}
        self._removed_ids = {c["id"] for c in categories if c["name"] in removed}
        self._is_thing = {c["id"]: bool(c.get("isthing", 0)) for c in categories}
        images = {image["id"]: image for image in data["images"]}
        self.entries: list[_Entry] = []
        for annotation in data["annotations"]:
            image = images.get(annotation["image_id"])
            if image is None:
                raise AnomaskError(
                    f"{annotation_file}: annotation {annotation['file_name']} names unknown image id "
                    f"{annotation['image_id']}"
                )
            for info in annotation["segments_info"]:
                if info["category_id"] not in self._is_thing:
                    raise AnomaskError(
                        f"{annotation_file}: segment {info['id']} has unknown category id {info['category_id']}"
                    )
            self.entries.append(
                _Entry(
                    Path(image["file_name"]).stem,
                    image_dir / image["file_name"],
                    panoptic_dir / annotation["file_name"],
                    tuple(annotation["segments_info"]),
                )
            )

    @staticmethod
    def _load_json(path: Path) -> dict[str, Any]:
        if not path.is_file():
            raise AnomaskError(f"{path}: COCO panoptic annotation file not found")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise AnomaskError(f"{path}: not valid JSON ({error})") from error
        missing = [key for key in ("images", "annotations", "categories") if key not in data]
        if missing:
            raise AnomaskError(f"{path}: not a COCO panoptic file (lacks {', '.join(missing)})")
        return data

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> dict[str, Any]:
        entry = self.entries[index]
        image = read_rgb(entry.image)
        colours = read_array(entry.panoptic)
        if colours.ndim != 3:
            raise AnomaskError(f"{entry.panoptic}: a COCO panoptic PNG must be RGB")
        check_same_size(image, colours, entry.image, entry.panoptic)
        segment_ids = rgb_to_segment_id(colours)
        semantic = np.full(segment_ids.shape, IGNORE_ID, dtype=np.uint8)
        instances = np.zeros(segment_ids.shape, dtype=np.int32)
        anomaly = np.zeros(segment_ids.shape, dtype=np.uint8)
        known_ids = {0} | {info["id"] for info in entry.segments}
        present = np.unique(segment_ids)
        stray = [int(v) for v in present if int(v) not in known_ids]
        if stray:
            raise AnomaskError(f"{entry.panoptic}: segment ids {stray[:8]} are not in the annotation's segments_info")
        next_instance = 1
        for info in entry.segments:
            pixels = segment_ids == info["id"]
            category = info["category_id"]
            is_instance = self._is_thing[category] and not info.get("iscrowd", 0)
            if category in self._removed_ids:
                if self.mode == "train":
                    continue  # void: stays 255, no instance
                semantic[pixels] = UNKNOWN_ID
                anomaly[pixels] = 1
            else:
                semantic[pixels] = self._train_id[category]
            if is_instance:
                instances[pixels] = next_instance
                next_instance += 1
        sample: dict[str, Any] = {"image": image, "semantic": semantic, "instances": instances, "name": entry.name}
        if self.mode == "eval" and self._removed_ids:
            anomaly[segment_ids == 0] = IGNORE_ID
            sample["anomaly"] = anomaly
        return sample
