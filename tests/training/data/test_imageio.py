"""Image reading refuses what OpenCV would decode partly grey or refuse noisily: truncated
JPEGs, truncated or damaged PNGs, naming the file, with nothing from libjpeg/libpng on stderr."""

import cv2
import numpy as np
import pytest

from anomask.errors import AnomaskError
from anomask.training.data.imageio import read_array, read_rgb

RGB = np.random.default_rng(0).integers(0, 256, (24, 40, 3), np.uint8)


def encoded(suffix: str, array: np.ndarray = RGB) -> bytes:
    return cv2.imencode(suffix, array)[1].tobytes()


def test_complete_files_decode_as_opencv_reads_them(tmp_path):
    for suffix in (".png", ".jpg"):
        (tmp_path / f"a{suffix}").write_bytes(encoded(suffix) + b"\0" * 10)  # zero padding is accepted
        expected = cv2.cvtColor(cv2.imread(str(tmp_path / f"a{suffix}")), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(read_rgb(tmp_path / f"a{suffix}"), expected)
    label = np.arange(24 * 40, dtype=np.uint16).reshape(24, 40)
    (tmp_path / "label.png").write_bytes(encoded(".png", label))
    np.testing.assert_array_equal(read_array(tmp_path / "label.png"), label)


def damaged_png() -> bytes:
    data = bytearray(encoded(".png"))
    data[60] ^= 0xFF  # inside the IDAT chunk
    return bytes(data)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("cut.jpg", encoded(".jpg")[:-300], r"truncated JPEG \(\d+ bytes, no end-of-image marker\), refused"),
        ("cut.png", encoded(".png")[:-300], r"truncated PNG \(\d+ bytes, no IEND chunk\), refused"),
        ("crc.png", damaged_png(), r"damaged PNG \(\d+ bytes, its IDAT chunk fails its CRC check\), refused"),
        ("empty.png", b"", "empty file, not an image"),
        ("text.png", b"not an image", "missing or not a readable image"),
    ],
)
def test_bad_files_are_refused_quietly_naming_the_file(tmp_path, capfd, name, data, message):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(AnomaskError, match=f"^{tmp_path / name}: {message}"):
        read_rgb(tmp_path / name)
    assert capfd.readouterr().err == "", "libjpeg/libpng printed to stderr"


def test_missing_file_and_folder_are_named(tmp_path):
    with pytest.raises(AnomaskError, match=r"nowhere.png: missing or not a readable image \(No such file"):
        read_rgb(tmp_path / "nowhere.png")
    with pytest.raises(AnomaskError, match=r"missing or not a readable image \(Is a directory\)"):
        read_rgb(tmp_path)
