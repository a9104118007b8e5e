"""Reading and writing images and label maps; every failure names the file.

Reads refuse truncated files (which OpenCV would decode partly grey, or refuse after libpng
noise on stderr). Writes are atomic (``anomask.files.write_bytes_atomic``), so a failed run
never leaves a half-written PNG behind.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from anomask.errors import AnomaskError
from anomask.files import write_bytes_atomic

PNG_COMPRESSION = 1
"""zlib level for written PNGs: nearly the size of level 3 at two thirds of the time."""


JPEG_START, JPEG_END = b"\xff\xd8", b"\xff\xd9"
PNG_START = b"\x89PNG\r\n\x1a\n"


def _png_problem(data: bytes) -> str | None:
    """What is wrong with a PNG's chunk sequence (each chunk's length and CRC, up to
    ``IEND``), or None: found here, libpng never gets to print its error."""
    view, offset = memoryview(data), len(PNG_START)
    while offset + 12 <= len(data):
        length, kind = struct.unpack(">I4s", view[offset : offset + 8])
        end = offset + 12 + length
        if end > len(data):
            break
        if zlib.crc32(view[offset + 4 : end - 4]) != int.from_bytes(view[end - 4 : end], "big"):
            return f"damaged PNG ({len(data)} bytes, its {kind.decode('latin-1')} chunk fails its CRC check)"
        if kind == b"IEND":
            return None
        offset = end
    return f"truncated PNG ({len(data)} bytes, no IEND chunk)"


def check_complete(data: bytes, path: Path) -> None:
    """Refuse a truncated JPEG or a truncated or damaged PNG. libjpeg decodes a truncated JPEG
    with the missing part grey and only warns on stderr, naming no file; libpng prints an
    error on stderr before OpenCV gives up. A complete JPEG ends with its end-of-image marker
    ``FFD9`` (possibly followed by zero padding)."""
    if data.startswith(JPEG_START) and not data[-64:].rstrip(b"\x00").endswith(JPEG_END):
        raise AnomaskError(f"{path}: truncated JPEG ({len(data)} bytes, no end-of-image marker), refused")
    if data.startswith(PNG_START) and (problem := _png_problem(data)):
        raise AnomaskError(f"{path}: {problem}, refused")


def read_image(path: Path, flags: int) -> np.ndarray:
    """The decoded image (``cv2.IMREAD_*`` ``flags``) of a complete image file; a missing,
    empty, truncated or undecodable file is refused naming it."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise AnomaskError(f"{path}: missing or not a readable image ({error.strerror})") from error
    if not data:
        raise AnomaskError(f"{path}: empty file, not an image")
    check_complete(data, path)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None:
        raise AnomaskError(f"{path}: missing or not a readable image")
    return image


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
