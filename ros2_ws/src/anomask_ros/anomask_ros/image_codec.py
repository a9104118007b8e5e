"""``sensor_msgs/Image`` and ``CompressedImage`` <-> numpy, with cv_bridge's semantics.

Reading follows the message definition as the C++ cv_bridge does (``toCvShare``): row ``r``
starts at byte ``r * step``, pixels are ``encoding``'s dtype and channel count, multi-byte
values are big-endian when ``is_bigendian`` is set. Where ``cv_bridge`` is importable (a
vehicle with ROS installed), ``CvBridge().imgmsg_to_cv2(msg, "rgb8")`` returns the same
pixels as ``convert_channels(image_view(msg), msg.encoding, "RGB")`` for every encoding here,
and ``cv2_to_imgmsg(array, encoding)`` the same ``height``/``width``/``step``/``data`` as
:func:`array_to_image` (tests/ros/test_image_codec.py checks a reference written from those
rules). One deliberate difference: Python cv_bridge computes the row length as
``step // itemsize // channels`` pixels, which misreads rows whose padding is not a whole
number of pixels; we honour ``step`` exactly, like C++ cv_bridge.

Zero copy, measured with rclpy (Kilted): a received message's ``data`` is an
``array.array('B')`` (one copy out of the middleware, unavoidable), and
:func:`image_view` returns a numpy view of that buffer (``np.shares_memory`` holds) for
every 8-bit encoding, with or without row padding. Reordering channels is the one copy
the node makes anyway, into its network-input batch (:func:`convert_channels`). Only a
multi-byte image whose byte order
differs from the machine's is copied. For outputs, rclpy's ``data`` setter copies whatever
it is given into a new ``array.array`` (from ``bytes``: ~10 ms for a 1080p RGB frame), except
an ``array.array('B')`` when the message checks its fields (``check_fields=True``; always in
Humble's generated code): that it keeps, so output messages are built without that copy, and
:func:`allocate_image` hands back a numpy view of a zeroed buffer the message owns, to write
(resize) into.

Every malformed input raises a subclass of :class:`ImageError` whose ``reason`` the node
counts in its diagnostics. :func:`decode` is the one entry for camera messages (the node and
the offline bag evaluation call it); the functions below it are its parts.
"""

from __future__ import annotations

import array
import sys
from dataclasses import dataclass

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from anomask.errors import AnomaskError

ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
    "32SC1": (np.dtype(np.int32), 1),
}
"""encoding -> (element dtype, channels), names as in sensor_msgs/image_encodings.hpp."""

COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")
"""Camera encodings the node accepts."""

NATIVE_BIG_ENDIAN = sys.byteorder == "big"


class ImageError(AnomaskError):
    """A camera message that cannot be turned into a frame; ``reason`` names the count."""

    reason = "invalid"


class UnsupportedEncoding(ImageError):
    reason = "encoding"


class RowStepError(ImageError):
    reason = "step"


class TruncatedImage(ImageError):
    reason = "truncated"


class EmptyImage(ImageError):
    reason = "empty"


class ImageTooLarge(ImageError):
    reason = "too_large"


class CorruptImage(ImageError):
    reason = "corrupt"


DROP_REASONS: tuple[str, ...] = tuple(
    cls.reason for cls in (UnsupportedEncoding, RowStepError, TruncatedImage, EmptyImage, ImageTooLarge, CorruptImage)
)


@dataclass(frozen=True)
class ImageLimits:
    """Frames above these are refused before any pixel is touched."""

    max_pixels: int = 4096 * 4096
    max_bytes: int = 64 * 1024 * 1024


def _check_size(height: int, width: int, limits: ImageLimits, what: str) -> None:
    if height <= 0 or width <= 0:
        raise EmptyImage(f"{what} has zero size ({width}x{height})")
    if height * width > limits.max_pixels:
        raise ImageTooLarge(
            f"{what} is {width}x{height} = {height * width} pixels, over the limit of {limits.max_pixels}"
        )


def image_view(
    msg: Image, limits: ImageLimits = ImageLimits(), accepted: tuple[str, ...] = tuple(ENCODINGS)
) -> np.ndarray:
    """The pixels of ``msg`` as ``[H, W]`` (one channel) or ``[H, W, C]``, a view of
    ``msg.data`` wherever the byte order allows (see the module docstring)."""
    if msg.encoding not in ENCODINGS or msg.encoding not in accepted:
        raise UnsupportedEncoding(f"image encoding {msg.encoding!r} is not one of {', '.join(accepted)}")
    dtype, channels = ENCODINGS[msg.encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    _check_size(height, width, limits, f"{msg.encoding} image")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise RowStepError(
            f"{msg.encoding} image: width {width} x {channels} channels x {dtype.itemsize} bytes = {row_bytes} > "
            f"step {step}"
        )
    if step * height > limits.max_bytes:
        raise ImageTooLarge(f"{msg.encoding} image: {step * height} bytes, over the limit of {limits.max_bytes}")
    data = np.frombuffer(msg.data, dtype=np.uint8) if not isinstance(msg.data, list) else np.asarray(msg.data, np.uint8)
    if data.size < step * height:
        raise TruncatedImage(
            f"{msg.encoding} image {width}x{height}: {data.size} data bytes, step x height needs {step * height}"
        )
    rows = data[: step * height].reshape(height, step)[:, :row_bytes]
    ordered = dtype.newbyteorder(">" if msg.is_bigendian else "<")
    pixels = rows.view(ordered) if dtype.itemsize > 1 else rows
    if dtype.itemsize > 1 and bool(msg.is_bigendian) != NATIVE_BIG_ENDIAN:
        pixels = pixels.astype(dtype)
    return pixels.reshape(height, width, channels) if channels > 1 else pixels.reshape(height, width)


_CONVERSIONS = {
    ("rgb8", "BGR"): cv2.COLOR_RGB2BGR,
    ("bgr8", "RGB"): cv2.COLOR_BGR2RGB,
    ("rgba8", "RGB"): cv2.COLOR_RGBA2RGB,
    ("rgba8", "BGR"): cv2.COLOR_RGBA2BGR,
    ("bgra8", "RGB"): cv2.COLOR_BGRA2RGB,
    ("bgra8", "BGR"): cv2.COLOR_BGRA2BGR,
    ("mono8", "RGB"): cv2.COLOR_GRAY2RGB,
    ("mono8", "BGR"): cv2.COLOR_GRAY2BGR,
}
"""The cvtColor codes cv_bridge uses for these conversions (alpha dropped, grey repeated)."""


def convert_channels(pixels: np.ndarray, encoding: str, order: str, out: np.ndarray | None = None) -> np.ndarray:
    """``[H, W, 3]`` uint8 in ``order`` ("RGB" or "BGR"), written into ``out`` when given.

    An image already in ``order`` comes back as is (a view, without ``out``) or is copied
    into ``out``; any other is converted by ``cv2.cvtColor`` in one pass straight into
    ``out`` (a strided numpy copy of a channel swap is ~25x slower at 1080p)."""
    if order not in ("RGB", "BGR") or encoding not in COLOR_ENCODINGS:
        raise UnsupportedEncoding(f"cannot convert {encoding!r} to {order!r}")
    code = _CONVERSIONS.get((encoding, order))
    if code is None:
        if out is None:
            return pixels
        np.copyto(out, pixels)
        return out
    converted = cv2.cvtColor(pixels, code, dst=out)
    if out is not None and not np.shares_memory(converted, out):
        np.copyto(out, converted)
        return out
    return converted


_JPEG_START = b"\xff\xd8"
_JPEG_END = b"\xff\xd9"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: np.ndarray) -> tuple[int, int]:
    """(height, width) from the first start-of-frame segment, walking segment headers
    only (a handful of steps), so an oversized frame is refused before decoding."""
    pos = 2
    while pos + 9 <= data.size:
        if data[pos] != 0xFF:
            raise CorruptImage(f"JPEG segment marker missing at byte {pos}")
        marker = int(data[pos + 1])
        if marker == 0xFF:
            pos += 1
            continue
        length = int(data[pos + 2]) << 8 | int(data[pos + 3])
        if marker in _JPEG_SOF:
            height = int(data[pos + 5]) << 8 | int(data[pos + 6])
            width = int(data[pos + 7]) << 8 | int(data[pos + 8])
            return height, width
        pos += 2 + length
    raise TruncatedImage(f"JPEG ends after {data.size} bytes before its frame header")


def _compressed_size(data: np.ndarray) -> tuple[str, int, int]:
    head = data[:24].tobytes()
    if head.startswith(_PNG_SIGNATURE):
        if data.size < 24:
            raise TruncatedImage(f"PNG of {data.size} bytes ends inside its header")
        width = int.from_bytes(head[16:20], "big")
        height = int.from_bytes(head[20:24], "big")
        return "png", height, width
    if head.startswith(_JPEG_START):
        height, width = _jpeg_size(data)
        return "jpeg", height, width
    raise CorruptImage(f"compressed image is neither JPEG nor PNG (starts with {head[:8].hex()})")


def _check_complete(kind: str, data: np.ndarray) -> None:
    # libjpeg pads a truncated JPEG with grey and only warns; refuse it instead.
    tail = data[-64:].tobytes().rstrip(b"\x00")
    if kind == "jpeg" and not tail.endswith(_JPEG_END):
        raise TruncatedImage(f"JPEG of {data.size} bytes has no end-of-image marker (truncated)")
    if kind == "png" and b"IEND" not in tail:
        raise TruncatedImage(f"PNG of {data.size} bytes has no IEND chunk (truncated)")


def decode_compressed(msg: CompressedImage, order: str, limits: ImageLimits = ImageLimits()) -> np.ndarray:
    """``[H, W, 3]`` uint8 in ``order`` from a JPEG or PNG ``CompressedImage``.

    The format is read from the data's signature (``format`` strings vary between
    publishers: "jpeg", "png", "bgr8; jpeg compressed bgr8"); grey and alpha images come
    out as three channels, as cv_bridge's ``compressed_imgmsg_to_cv2(msg, "rgb8")``."""
    data = np.frombuffer(msg.data, dtype=np.uint8) if not isinstance(msg.data, list) else np.asarray(msg.data, np.uint8)
    if data.size == 0:
        raise EmptyImage(f"compressed image ({msg.format!r}) has no data")
    if data.size > limits.max_bytes:
        raise ImageTooLarge(f"compressed image of {data.size} bytes, over the limit of {limits.max_bytes}")
    kind, height, width = _compressed_size(data)
    _check_size(height, width, limits, f"{kind.upper()} image")
    _check_complete(kind, data)
    flag = cv2.IMREAD_COLOR_RGB if order == "RGB" else cv2.IMREAD_COLOR
    decoded = cv2.imdecode(data, flag)
    if decoded is None:
        raise CorruptImage(f"{kind.upper()} image of {data.size} bytes ({width}x{height}) could not be decoded")
    return decoded


@dataclass(frozen=True)
class Frame:
    """A decoded camera frame: ``pixels`` in ``encoding``'s channel layout, usually a view
    of the message's buffer."""

    pixels: np.ndarray
    encoding: str

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[0], self.pixels.shape[1]


def decode(
    msg: Image | CompressedImage,
    order: str,
    limits: ImageLimits = ImageLimits(),
    accepted: tuple[str, ...] = COLOR_ENCODINGS,
) -> Frame:
    """A camera message as a :class:`Frame`: an ``Image`` as a view of its buffer in its own
    encoding (one of ``accepted``), a ``CompressedImage`` decoded into ``order`` ("RGB" or
    "BGR", the runtime's channel order). Raises an :class:`ImageError` subclass for a
    malformed message."""
    if isinstance(msg, CompressedImage):
        return Frame(decode_compressed(msg, order, limits), "rgb8" if order == "RGB" else "bgr8")
    return Frame(image_view(msg, limits, accepted), msg.encoding)


_KEEP_DATA = {"check_fields": True} if "_check_fields" in Image.__slots__ else {}
"""Constructor option with which ``Image.data = array.array('B', ...)`` keeps the buffer
instead of copying it (Iron and later; Humble keeps it anyway)."""


def _new_image(header: Header, height: int, width: int, encoding: str, data: array.array) -> Image:
    dtype, channels = ENCODINGS[encoding]
    step = width * channels * dtype.itemsize
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=NATIVE_BIG_ENDIAN, step=step, **_KEEP_DATA)
    msg.header = Header(stamp=header.stamp, frame_id=header.frame_id)
    msg.data = data
    return msg


def allocate_image(header: Header, height: int, width: int, encoding: str) -> tuple[Image, np.ndarray]:
    """A new zeroed ``Image`` with ``header`` copied, and a writable numpy view of its
    ``data`` (``[H, W]`` or ``[H, W, C]``), for producers that can write in place."""
    dtype, channels = ENCODINGS[encoding]
    msg = _new_image(
        header, height, width, encoding, array.array("B", [0]) * (height * width * channels * dtype.itemsize)
    )
    view = np.frombuffer(msg.data, dtype=dtype)  # the buffer the message holds
    return msg, view.reshape(height, width, channels) if channels > 1 else view.reshape(height, width)


def array_to_image(pixels: np.ndarray, encoding: str, header: Header) -> Image:
    """``Image`` holding ``pixels`` (dtype and channels must match ``encoding``), as
    cv_bridge's ``cv2_to_imgmsg``: dense rows, machine byte order, ``header`` copied.
    One memory pass, into the ``array.array`` the message keeps."""
    if encoding not in ENCODINGS:
        raise UnsupportedEncoding(f"image encoding {encoding!r} is not one of {', '.join(ENCODINGS)}")
    dtype, channels = ENCODINGS[encoding]
    shape_channels = pixels.shape[2] if pixels.ndim == 3 else 1
    if pixels.dtype != dtype or shape_channels != channels or pixels.ndim not in (2, 3):
        raise UnsupportedEncoding(
            f"array {pixels.dtype}{list(pixels.shape)} does not fit encoding {encoding} ({dtype}, {channels} channels)"
        )
    data = array.array("B")
    data.frombytes(np.ascontiguousarray(pixels, dtype=dtype.newbyteorder("=")).reshape(-1).view(np.uint8))
    return _new_image(header, pixels.shape[0], pixels.shape[1], encoding, data)
