"""Image conversion: cv_bridge's semantics, zero-copy views, every malformed input."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from anomask_ros import image_codec as codec

RNG = np.random.default_rng(7)

# cv_bridge's documented rules (sensor_msgs/image_encodings + cv_bridge's conversion
# table), written independently of image_codec: dtype and channels per encoding, row r at
# byte r*step, big-endian when is_bigendian, then OpenCV's cvtColor code for the
# conversion to the desired encoding.
REFERENCE_TYPES = {
    "rgb8": ("u1", 3),
    "bgr8": ("u1", 3),
    "rgba8": ("u1", 4),
    "bgra8": ("u1", 4),
    "mono8": ("u1", 1),
    "16UC1": ("u2", 1),
    "32FC1": ("f4", 1),
    "32SC1": ("i4", 1),
}
TO_RGB = {
    "bgr8": cv2.COLOR_BGR2RGB,
    "rgba8": cv2.COLOR_RGBA2RGB,
    "bgra8": cv2.COLOR_BGRA2RGB,
    "mono8": cv2.COLOR_GRAY2RGB,
}


def cv_bridge_reference(msg: Image, desired: str = "passthrough") -> np.ndarray:
    code, channels = REFERENCE_TYPES[msg.encoding]
    dtype = np.dtype((">" if msg.is_bigendian else "<") + code)
    raw = bytes(msg.data)
    rows = [np.frombuffer(raw, dtype=dtype, count=msg.width * channels, offset=r * msg.step) for r in range(msg.height)]
    image = np.stack(rows).astype(dtype.newbyteorder("="))
    image = image.reshape(msg.height, msg.width, channels) if channels > 1 else image.reshape(msg.height, msg.width)
    if desired == "passthrough" or desired == msg.encoding:
        return image
    assert desired == "rgb8"
    return cv2.cvtColor(np.ascontiguousarray(image), TO_RGB[msg.encoding])


def make_msg(pixels: np.ndarray, encoding: str, padding: int = 0, bigendian: bool = False) -> Image:
    """An Image message with ``padding`` extra bytes per row, through a real CDR round
    trip, so ``data`` is what a subscriber gets."""
    height, width = pixels.shape[:2]
    dtype = pixels.dtype.newbyteorder(">" if bigendian else "<")
    row = pixels.astype(dtype).reshape(height, -1).view(np.uint8)
    padded = np.concatenate([row, np.full((height, padding), 0xAB, np.uint8)], axis=1)
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=bigendian, step=padded.shape[1])
    msg.header = Header(stamp=Time(sec=12, nanosec=345), frame_id="cam")
    msg.data = padded.tobytes()
    return deserialize_message(serialize_message(msg), Image)


def random_pixels(encoding: str, height: int = 5, width: int = 7) -> np.ndarray:
    dtype, channels = codec.ENCODINGS[encoding]
    shape = (height, width, channels) if channels > 1 else (height, width)
    if dtype.kind == "f":
        return RNG.normal(size=shape).astype(dtype)
    info = np.iinfo(dtype)
    return RNG.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)


@pytest.mark.parametrize("encoding", list(codec.ENCODINGS))
@pytest.mark.parametrize("padding", [0, 1, 5, 8])
@pytest.mark.parametrize("bigendian", [False, True])
def test_view_equals_cv_bridge_rules(encoding: str, padding: int, bigendian: bool) -> None:
    pixels = random_pixels(encoding)
    msg = make_msg(pixels, encoding, padding, bigendian)
    view = codec.image_view(msg)
    np.testing.assert_array_equal(view, cv_bridge_reference(msg))
    np.testing.assert_array_equal(view, pixels)
    assert view.dtype.isnative
    if encoding in codec.COLOR_ENCODINGS:
        np.testing.assert_array_equal(codec.convert_channels(view, encoding, "RGB"), cv_bridge_reference(msg, "rgb8"))
        out = np.zeros((*view.shape[:2], 3), np.uint8)
        assert codec.convert_channels(view, encoding, "BGR", out=out) is out
        np.testing.assert_array_equal(out, cv_bridge_reference(msg, "rgb8")[..., ::-1])


@pytest.mark.parametrize("encoding", ["rgb8", "bgra8", "mono8", "32FC1"])
def test_views_share_the_message_buffer(encoding: str) -> None:
    msg = make_msg(random_pixels(encoding), encoding, padding=3, bigendian=sys.byteorder == "big")
    assert type(msg.data).__name__ == "array"  # what rclpy hands a subscriber
    buffer = np.frombuffer(msg.data, np.uint8)
    view = codec.image_view(msg)
    assert np.shares_memory(view, buffer)
    if encoding == "rgb8":  # already in the wanted order: still the message's buffer
        assert np.shares_memory(codec.convert_channels(view, encoding, "RGB"), buffer)


def test_foreign_byte_order_is_converted_not_viewed() -> None:
    msg = make_msg(random_pixels("32FC1"), "32FC1", bigendian=sys.byteorder == "little")
    view = codec.image_view(msg)
    assert not np.shares_memory(view, np.frombuffer(msg.data, np.uint8))
    np.testing.assert_array_equal(view, cv_bridge_reference(msg))


def _bad(encoding="rgb8", height=4, width=6, step=None, data_len=None) -> Image:
    step = width * 3 if step is None else step
    size = step * height if data_len is None else data_len
    return Image(height=height, width=width, encoding=encoding, step=step, data=bytes(size))


@pytest.mark.parametrize(
    ("msg", "error", "text"),
    [
        (_bad(encoding="yuv422"), codec.UnsupportedEncoding, "yuv422"),
        (_bad(step=17), codec.RowStepError, "> step 17"),
        (_bad(data_len=40), codec.TruncatedImage, "40 data bytes"),
        (_bad(height=0, step=18, data_len=0), codec.EmptyImage, "zero size"),
        (_bad(width=0, step=0), codec.EmptyImage, "zero size"),
        (_bad(height=100, width=100, step=300), codec.ImageTooLarge, "10000 pixels"),
    ],
)
def test_malformed_images_raise_their_reason(msg: Image, error: type, text: str) -> None:
    with pytest.raises(error, match=text) as caught:
        codec.image_view(msg, codec.ImageLimits(max_pixels=5000))
    assert caught.value.reason in codec.DROP_REASONS


def test_accepted_encodings_restrict_the_view() -> None:
    with pytest.raises(codec.UnsupportedEncoding, match="16UC1"):
        codec.image_view(make_msg(random_pixels("16UC1"), "16UC1"), accepted=codec.COLOR_ENCODINGS)


def _compressed(pixels_rgb: np.ndarray, ext: str) -> CompressedImage:
    ok, data = cv2.imencode(ext, cv2.cvtColor(pixels_rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return CompressedImage(format=ext.strip("."), data=data.tobytes())


def test_png_decodes_exactly_in_both_orders() -> None:
    pixels = random_pixels("rgb8", 9, 11)
    msg = _compressed(pixels, ".png")
    np.testing.assert_array_equal(codec.decode_compressed(msg, "RGB"), pixels)
    np.testing.assert_array_equal(codec.decode_compressed(msg, "BGR"), pixels[..., ::-1])


def test_jpeg_and_grey_png_decode_to_three_channels() -> None:
    smooth = np.tile(np.linspace(0, 255, 32, dtype=np.uint8)[None, :, None], (16, 1, 3))
    decoded = codec.decode_compressed(_compressed(smooth, ".jpg"), "RGB")
    assert decoded.shape == (16, 32, 3) and np.abs(decoded.astype(int) - smooth).max() <= 8
    grey = CompressedImage(format="png", data=cv2.imencode(".png", smooth[..., 0])[1].tobytes())
    np.testing.assert_array_equal(codec.decode_compressed(grey, "RGB"), smooth)


def test_malformed_compressed_images_raise_their_reason() -> None:
    pixels = random_pixels("rgb8", 40, 50)
    jpeg = _compressed(pixels, ".jpg").data.tobytes()
    png = _compressed(pixels, ".png").data.tobytes()
    limits = codec.ImageLimits(max_pixels=1000, max_bytes=len(png) - 1)
    cases = [
        (b"", codec.EmptyImage, "no data"),
        (b"GIF89a" + bytes(30), codec.CorruptImage, "neither JPEG nor PNG"),
        (jpeg[: len(jpeg) // 2], codec.TruncatedImage, "truncated"),
        (png[: len(png) - 20], codec.TruncatedImage, "IEND"),
        (jpeg[:200] + bytes(range(256)) * 4 + b"\xff\xd9", codec.CorruptImage, "could not be decoded"),
    ]
    for data, error, text in cases:
        with pytest.raises(error, match=text):
            codec.decode_compressed(CompressedImage(format="jpeg", data=data), "RGB")
    with pytest.raises(codec.ImageTooLarge, match="2000 pixels"):
        codec.decode_compressed(CompressedImage(format="jpeg", data=jpeg), "RGB", codec.ImageLimits(max_pixels=1000))
    with pytest.raises(codec.ImageTooLarge, match="bytes"):
        codec.decode_compressed(CompressedImage(format="png", data=png), "RGB", limits)


@pytest.mark.parametrize("encoding", ["mono8", "16UC1", "32FC1", "32SC1", "rgb8"])
def test_array_to_image_is_cv2_to_imgmsg(encoding: str) -> None:
    pixels = random_pixels(encoding, 3, 4)
    header = Header(stamp=Time(sec=5, nanosec=6), frame_id="front")
    msg = codec.array_to_image(pixels, encoding, header)
    dtype, channels = codec.ENCODINGS[encoding]
    assert (msg.height, msg.width, msg.step) == (3, 4, 4 * channels * dtype.itemsize)
    assert msg.is_bigendian == (sys.byteorder == "big")
    assert msg.header == header and msg.header is not header
    assert bytes(msg.data) == np.ascontiguousarray(pixels).tobytes()
    received = deserialize_message(serialize_message(msg), Image)
    np.testing.assert_array_equal(codec.image_view(received), pixels)


def test_array_to_image_refuses_a_mismatched_array() -> None:
    with pytest.raises(codec.UnsupportedEncoding, match="does not fit encoding 32FC1"):
        codec.array_to_image(np.zeros((2, 2), np.uint8), "32FC1", Header())
