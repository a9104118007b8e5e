"""INT8 calibration data: camera-like frames from a folder of images, in graph input form.

Both INT8 paths read it: TensorRT 10's entropy calibrator (``IInt8EntropyCalibrator2``) and,
for TensorRT 11 (which removed implicit INT8 calibration), the min/max-calibrated Q/DQ
quantization in ``precision.quantize_int8``. Frames are resized to the graph's input (camera) size and
put in its channel order, so calibration sees exactly what the deployed graph sees. Batches are
read one at a time as they are consumed: memory holds one batch, whatever ``max_images``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from anomask.errors import AnomaskError
from anomask.export.export_info import ExportSettings
from anomask.export.frames import fit_frame
from anomask.images import read_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp")


def calibration_images(folder: str | os.PathLike, limit: int) -> list[Path]:
    """The first ``limit`` images of ``folder`` (sorted, recursive); an error when none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AnomaskError(f"{folder}: calibration image folder does not exist")
    images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not images:
        raise AnomaskError(f"{folder}: no calibration images ({', '.join(IMAGE_SUFFIXES)})")
    return images[:limit]


def load_frame(path: Path, settings: ExportSettings) -> np.ndarray:
    """One image as a graph input frame: uint8 [H, W, 3] at the input size, input channel order."""
    image = fit_frame(read_image(path, cv2.IMREAD_COLOR), settings.input_size)  # BGR
    if settings.input_format == "RGB":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(image)


def calibration_batches(
    folder: str | os.PathLike, settings: ExportSettings, max_images: int = 256
) -> Iterator[np.ndarray]:
    """uint8 batches ``[batch, H, W, 3]`` of the graph's batch size. The last partial batch is
    filled by repeating its images, so every image is seen and the shape stays static."""
    images = calibration_images(folder, max_images)
    batch = settings.batch
    for start in range(0, len(images), batch):
        chunk = [load_frame(p, settings) for p in images[start : start + batch]]
        while len(chunk) < batch:
            chunk.append(chunk[len(chunk) % len(images[start : start + batch])])
        yield np.stack(chunk)
