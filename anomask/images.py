"""Reading image files whole: a truncated or damaged file is refused, naming it.

OpenCV decodes a truncated JPEG with the missing part grey (libjpeg only warns on stderr,
naming no file) and gives up on a broken PNG after libpng's noise on stderr. Every reader of
image files (datasets, bags, INT8 calibration frames) goes through ``read_image``.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np

from anomask.errors import AnomaskError

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
