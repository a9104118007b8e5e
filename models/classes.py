"""Class lists: names, thing flags and palettes, and the JSON class-list file.

A class list file is ``{"classes": [{"name", "is_thing", "color", "label_id"?}, ...]}``;
the position of a class is its train id (the value in label maps). ``label_id`` is the
Cityscapes-style id used in ``*_labelIds.png`` and ``*_instanceIds.png``; when a file
gives none, label ids equal train ids.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anomask.errors import AnomaskError
from anomask.files import write_bytes_atomic
from anomask.models.metadata import IGNORE_ID, ClassInfo


@dataclass(frozen=True)
class ClassList:
    classes: tuple[ClassInfo, ...]
    label_ids: tuple[int, ...]
    """Cityscapes label id of each class, indexed by train id."""

    def __post_init__(self) -> None:
        if len(self.label_ids) != len(self.classes):
            raise AnomaskError(f"class list has {len(self.classes)} classes but {len(self.label_ids)} label ids")
        if not 0 < len(self.classes) < 254:
            raise AnomaskError(f"class list must have 1..253 classes, not {len(self.classes)} (254/255 are reserved)")

    @classmethod
    def identity(cls, classes: Sequence[ClassInfo]) -> ClassList:
        return cls(tuple(classes), tuple(range(len(classes))))

    def label_to_train(self) -> np.ndarray:
        """Lookup table ``[256] uint8``: label id -> train id, 255 for ids not in the list."""
        lut = np.full(256, IGNORE_ID, dtype=np.uint8)
        for train_id, label_id in enumerate(self.label_ids):
            if not 0 <= label_id < 256:
                raise AnomaskError(f"label id {label_id} of class {self.classes[train_id].name!r} is outside 0..255")
            lut[label_id] = train_id
        return lut

    def to_json(self) -> str:
        entries = [
            {"name": c.name, "is_thing": c.is_thing, "color": list(c.color), "label_id": label_id}
            for c, label_id in zip(self.classes, self.label_ids)
        ]
        return json.dumps({"classes": entries}, indent=1)

    def save(self, path: Path) -> None:
        write_bytes_atomic(Path(path), (self.to_json() + "\n").encode())


def load_class_list(path: Path) -> ClassList:
    """Read a class list file; every problem names the file."""
    path = Path(path)
    if not path.is_file():
        raise AnomaskError(f"{path}: class list file not found")
    try:
        data = json.loads(path.read_text())
        entries = data["classes"]
        classes = tuple(
            ClassInfo(str(e["name"]), bool(e["is_thing"]), tuple(int(v) for v in e["color"])) for e in entries
        )
        label_ids = tuple(int(e.get("label_id", i)) for i, e in enumerate(entries))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise AnomaskError(
            f"{path}: not a class list ({error!r}); expected "
            '{"classes": [{"name": ..., "is_thing": ..., "color": [r, g, b]}, ...]}'
        ) from error
    if any(len(c.color) != 3 or not all(0 <= v <= 255 for v in c.color) for c in classes):
        raise AnomaskError(f"{path}: every class colour must be three values in 0..255")
    try:
        return ClassList(classes, label_ids)
    except AnomaskError as error:
        raise AnomaskError(f"{path}: {error}") from error


def _cityscapes() -> ClassList:
    # (name, label id, is thing, colour): the 19 evaluated Cityscapes classes in train-id
    # order, as in cityscapesscripts' labels table.
    table = (
        ("road", 7, False, (128, 64, 128)),
        ("sidewalk", 8, False, (244, 35, 232)),
        ("building", 11, False, (70, 70, 70)),
        ("wall", 12, False, (102, 102, 156)),
        ("fence", 13, False, (190, 153, 153)),
        ("pole", 17, False, (153, 153, 153)),
        ("traffic light", 19, False, (250, 170, 30)),
        ("traffic sign", 20, False, (220, 220, 0)),
        ("vegetation", 21, False, (107, 142, 35)),
        ("terrain", 22, False, (152, 251, 152)),
        ("sky", 23, False, (70, 130, 180)),
        ("person", 24, True, (220, 20, 60)),
        ("rider", 25, True, (255, 0, 0)),
        ("car", 26, True, (0, 0, 142)),
        ("truck", 27, True, (0, 0, 70)),
        ("bus", 28, True, (0, 60, 100)),
        ("train", 31, True, (0, 80, 100)),
        ("motorcycle", 32, True, (0, 0, 230)),
        ("bicycle", 33, True, (119, 11, 32)),
    )
    return ClassList(tuple(ClassInfo(n, t, c) for n, _, t, c in table), tuple(i for _, i, _, _ in table))


CITYSCAPES = _cityscapes()
"""The 19 Cityscapes classes with their official label ids, colours and thing flags."""

STREETHAZARDS = ClassList.identity(
    (
        ClassInfo("building", False, (70, 70, 70)),
        ClassInfo("fence", False, (190, 153, 153)),
        ClassInfo("other", False, (250, 170, 160)),
        ClassInfo("pedestrian", True, (220, 20, 60)),
        ClassInfo("pole", False, (153, 153, 153)),
        ClassInfo("road line", False, (157, 234, 50)),
        ClassInfo("road", False, (128, 64, 128)),
        ClassInfo("sidewalk", False, (244, 35, 232)),
        ClassInfo("vegetation", False, (107, 142, 35)),
        ClassInfo("car", True, (0, 0, 142)),
        ClassInfo("wall", False, (102, 102, 156)),
        ClassInfo("traffic sign", False, (220, 220, 0)),
    )
)
"""The 12 known StreetHazards classes (the 13th label, anomaly, is held out)."""
