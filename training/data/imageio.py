"""Reading and writing images and label maps; every failure names the file.

Reads refuse truncated files (``anomask.images.read_image``). Writes are atomic
(``anomask.files.write_bytes_atomic``), so a failed run never leaves a half-written PNG behind.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from anomask.errors import AnomaskError
from anomask.files import write_bytes_atomic
from anomask.images import read_image

PNG_COMPRESSION = 1
"""zlib level for written PNGs: nearly the size of level 3 at two thirds of the time."""


def read_rgb(path: Path) -> np.ndarray:
    """An image file as uint8 ``[H, W, 3]`` RGB (grey and RGBA files are converted)."""
    return read_image(path, cv2.IMREAD_COLOR_RGB)


def read_array(path: Path) -> np.ndarray:
    """A PNG as stored: ``[H, W]`` for label maps (8 or 16 bit), ``[H, W, 3]`` RGB for colour."""
    array = read_image(path, cv2.IMREAD_UNCHANGED)
    if array.ndim == 3:
        array = cv2.cvtColor(array[..., :3], cv2.COLOR_BGR2RGB)
    return array


def read_label(path: Path) -> np.ndarray:
    """A single-channel label PNG (8 or 16 bit)."""
    array = read_array(path)
    if array.ndim != 2:
        raise AnomaskError(f"{path}: a label map must have one channel, this file has {array.shape[2]}")
    return array


def encode_png(array: np.ndarray, path: Path) -> bytes:
    """PNG bytes of a uint8/uint16 ``[H, W]`` map or a uint8 ``[H, W, 3]`` RGB image."""
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".png", array, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    if not ok:
        raise AnomaskError(f"{path}: could not encode PNG from a {array.dtype} array of shape {array.shape}")
    return buffer.tobytes()


def write_png(path: Path, array: np.ndarray) -> None:
    write_bytes_atomic(Path(path), encode_png(array, Path(path)))


def check_same_size(reference: np.ndarray, other: np.ndarray, image_path: Path, other_path: Path) -> None:
    if reference.shape[:2] != other.shape[:2]:
        raise AnomaskError(
            f"{other_path}: size {other.shape[1]}x{other.shape[0]} does not match its image "
            f"{image_path} ({reference.shape[1]}x{reference.shape[0]})"
        )


def check_label_values(label: np.ndarray, num_classes: int, path: Path, allowed: Iterable[int] = (255,)) -> None:
    """Every value must be a class id ``0..num_classes-1`` or one of ``allowed``."""
    counts = np.bincount(label.ravel(), minlength=256) if label.dtype == np.uint8 else None
    if counts is None:
        values = np.unique(label)
    else:
        values = np.flatnonzero(counts)
    bad = [int(v) for v in values if v >= num_classes and int(v) not in set(allowed)]
    if bad:
        extra = ", ".join(str(v) for v in sorted(set(allowed)))
        raise AnomaskError(
            f"{path}: label values {bad[:8]} out of range (classes 0..{num_classes - 1}, special {extra})"
        )
