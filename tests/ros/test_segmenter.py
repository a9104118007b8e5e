"""``Segmenter.run``: decoded frames -> every frame's maps and the stage timings, with the
runtime test double of tests/ros/fake_runtime.py (semantic = R // 64, anomaly = G / 255 of the
network-input batch), so each map can be predicted from the frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from anomask.errors import AnomaskError
from anomask.export.frames import fit_frame
from anomask_ros.image_codec import Frame
from anomask_ros.segmenter import Segmenter


def frame(height: int, width: int, encoding: str = "rgb8", seed: int = 0) -> tuple[Frame, np.ndarray]:
    """A frame in ``encoding`` and its pixels as RGB."""
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    pixels = rgb if encoding == "rgb8" else np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return Frame(pixels, encoding), rgb


def expected_maps(rgb: np.ndarray, size: tuple[int, int], threshold: float) -> dict[str, np.ndarray]:
    """What the fake runtime gives for ``rgb`` fitted to its input ``size``."""
    fitted = fit_frame(rgb, size)
    semantic = fitted[..., 0] // 64
    anomaly = fitted[..., 1].astype(np.float32) / 255
    return {
        "semantic": semantic,
        "anomaly": anomaly,
        "open_set": np.where(anomaly > threshold, 254, semantic),
        "panoptic": np.where(semantic >= 2, semantic.astype(np.int32) * 1000 + 1, semantic),
    }


@pytest.mark.parametrize("input_format", ["RGB", "BGR"])
def test_a_batch_gives_every_frames_maps_in_order(fake_runtime, input_format: str) -> None:
    runtime = fake_runtime.FakeRuntime(input_format=input_format)
    methods = []
    segmenter = Segmenter(
        runtime,
        lambda outputs, metadata, method: (
            methods.append(method) or fake_runtime.fake_panoptic(outputs, metadata, method)
        ),
    )
    # at the input size, shrunk (area), enlarged (bilinear); resizing commutes with the channel order
    frames = [frame(16, 24, "rgb8", 1), frame(32, 48, "bgr8", 2), frame(8, 12, "rgb8", 3)]
    outputs, _ = segmenter.run([f for f, _ in frames], 0.4, "components")
    assert runtime.batch_sizes == [3] and methods == ["components"]
    assert len(outputs) == 3
    for maps, (_, rgb) in zip(outputs, frames):
        expected = expected_maps(rgb, (16, 24), 0.4)
        for name, value in expected.items():
            np.testing.assert_array_equal(getattr(maps, name), value, err_msg=name)
    no_panoptic, timings = segmenter.run([frames[0][0]], 0.4)
    assert no_panoptic[0].panoptic is None and timings.panoptic_ms == 0.0 and methods == ["components"]


def test_bad_requests_and_bad_runtimes_are_clear_errors(fake_runtime) -> None:
    image, _ = frame(16, 24)
    per_pixel = Segmenter(fake_runtime.FakeRuntime(panoptic=False), fake_runtime.fake_panoptic)
    assert not per_pixel.has_panoptic
    assert per_pixel.run([image], 0.5)[0][0].panoptic is None
    with pytest.raises(AnomaskError, match="no panoptic intermediates"):
        per_pixel.run([image], 0.5, "eam")
    segmenter = Segmenter(fake_runtime.FakeRuntime(), fake_runtime.fake_panoptic)
    with pytest.raises(AnomaskError, match="unknown panoptic method 'known'; valid: closed-set, mining, eam"):
        segmenter.run([image], 0.5, "known")

    class Partial(fake_runtime.FakeRuntime):
        def run(self, frames, threshold):
            outputs = super().run(frames, threshold)
            del outputs["anomaly"]
            return outputs

    with pytest.raises(AnomaskError, match="runtime returned no anomaly"):
        Segmenter(Partial(), fake_runtime.fake_panoptic).run([image], 0.5)


def test_warm_up_runs_one_black_frame_and_close_releases_the_runtime(fake_runtime) -> None:
    runtime = fake_runtime.FakeRuntime(input_format="BGR")
    methods = []
    segmenter = Segmenter(runtime, lambda outputs, metadata, method: methods.append(method) or outputs["semantic"])
    segmenter.warm_up()
    assert runtime.batch_sizes == [1] and methods == ["closed-set"]
    segmenter.close()
    assert runtime.closed and segmenter.runtime is None
