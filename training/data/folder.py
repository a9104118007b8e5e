"""Any folder of image/label pairs with a class list file.

``images/<stem>.(png|jpg|jpeg)`` pairs with ``labels/<stem>.png`` holding train ids
(0..K-1, 255 ignore); the class list file gives names, thing flags and colours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anomask.errors import AnomaskError
from anomask.models.classes import load_class_list
from anomask.models.metadata import ClassInfo
from anomask.training.data.cityscapes import require_dir
from anomask.training.data.imageio import check_label_values, check_same_size, read_label, read_rgb

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


class FolderDataset:
    """Samples ``{"image", "semantic", "name"}`` from paired folders."""

    def __init__(self, image_dir: Path, label_dir: Path, classes_file: Path) -> None:
        self.class_list = load_class_list(Path(classes_file))
        image_dir = require_dir(Path(image_dir), "image")
        label_dir = require_dir(Path(label_dir), "label")
        images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not images:
            raise AnomaskError(f"{image_dir}: no images ({', '.join(IMAGE_EXTENSIONS)})")
        self.pairs: list[tuple[Path, Path]] = []
        for image in images:
            label = label_dir / f"{image.stem}.png"
            if not label.is_file():
                raise AnomaskError(f"{label}: label file not found for image {image}")
            self.pairs.append((image, label))

    @property
    def classes(self) -> tuple[ClassInfo, ...]:
        return self.class_list.classes

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image_path, label_path = self.pairs[index]
        image = read_rgb(image_path)
        semantic = read_label(label_path)
        check_same_size(image, semantic, image_path, label_path)
        if semantic.dtype.itemsize != 1:
            raise AnomaskError(f"{label_path}: label maps must be 8-bit, this one is {semantic.dtype}")
        check_label_values(semantic, len(self.classes), label_path)
        return {"image": image, "semantic": semantic, "name": image_path.stem}
