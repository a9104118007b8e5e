"""INT8 calibration frames from an image folder: size, channel order, batching."""

import cv2
import numpy as np
import pytest

from anomask.errors import AnomaskError
from anomask.export.calibration import calibration_batches
from anomask.export.export_info import ExportSettings


def _settings(fmt="RGB", batch=2):
    return ExportSettings(
        input_size=(12, 16), network_size=(12, 16), output_size=(12, 16), batch=batch, input_format=fmt
    )


@pytest.fixture
def folder(tmp_path):
    for i in range(5):
        image = np.zeros((24, 32, 3), np.uint8)
        image[..., 2] = 200 + i  # red in OpenCV's BGR order
        cv2.imwrite(str(tmp_path / f"img{i}.png"), image)
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_batches_have_the_graph_input_shape_and_order(folder):
    batches = list(calibration_batches(folder, _settings("RGB")))
    assert [b.shape for b in batches] == [(2, 12, 16, 3)] * 3
    assert batches[0].dtype == np.uint8
    assert np.all(batches[0][0, ..., 0] == 200) and np.all(batches[0][0, ..., 2] == 0)  # RGB: red first
    bgr = next(calibration_batches(folder, _settings("BGR")))
    assert np.all(bgr[1, ..., 2] == 201)
    # 5 images in batches of 2: the last batch repeats its own image instead of dropping it.
    assert np.all(batches[2][0, ..., 0] == 204) and np.all(batches[2][1, ..., 0] == 204)


def test_limit_and_errors(folder, tmp_path_factory):
    assert len(list(calibration_batches(folder, _settings(batch=1), max_images=3))) == 3
    with pytest.raises(AnomaskError, match="does not exist"):
        list(calibration_batches(folder / "missing", _settings()))
    with pytest.raises(AnomaskError, match="no calibration images"):
        list(calibration_batches(tmp_path_factory.mktemp("empty"), _settings()))
    (folder / "broken.png").write_bytes(b"not a png")
    with pytest.raises(AnomaskError, match="broken.png: missing or not a readable image"):
        list(calibration_batches(folder, _settings(batch=6)))


def test_a_truncated_calibration_image_is_refused_not_calibrated_on(tmp_path):
    """libjpeg decodes a truncated JPEG with its missing part grey and only warns: calibrating on
    it would set activation ranges from a grey block."""
    ok, jpeg = cv2.imencode(".jpg", np.full((24, 32, 3), 90, np.uint8))
    (tmp_path / "cut.jpg").write_bytes(jpeg.tobytes()[: len(jpeg) // 2])
    with pytest.raises(AnomaskError, match="cut.jpg: truncated JPEG"):
        list(calibration_batches(tmp_path, _settings(batch=1)))
