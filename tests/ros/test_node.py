"""segmentation_node with real rclpy (publisher node -> node -> subscriber node, one
process) and the runtime test double of tests/ros/fake_runtime.py."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from anomask.errors import AnomaskError
from anomask_ros.bag.eval import offline_frames
from anomask_ros.bag.metrics import ReplayCounts
from anomask_ros.bag.write import CameraSource, WriteOptions, write_bag
from anomask_ros.image_codec import image_view
from anomask_ros.params import OUTPUTS
from anomask_ros.segmentation_node import SegmentationNode
from anomask_ros.segmenter import Segmenter

QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


class Harness:
    """A SegmentationNode plus one node that publishes frames and records every output."""

    def __init__(self, context, spin_until, fake_runtime, **parameters) -> None:
        self.runtime = fake_runtime.FakeRuntime()
        overrides = [Parameter(name, value=value) for name, value in parameters.items()]
        self.node = SegmentationNode(
            lambda settings: Segmenter(self.runtime, fake_runtime.fake_panoptic),
            context=context,
            parameter_overrides=overrides,
            namespace="/t",
        )
        self.io = Node("io", context=context, namespace="/t")
        self.spin_until = spin_until
        self.received: dict[tuple[str, str], list[Image]] = {}
        self.diagnostics: list[DiagnosticArray] = []
        compressed = self.node.settings.input_transport == "compressed"
        self.pubs = {
            cam: self.io.create_publisher(
                CompressedImage if compressed else Image, f"{cam}/image" + ("/compressed" if compressed else ""), QOS
            )
            for cam in self.node.settings.cameras
        }
        for cam in self.node.settings.cameras:
            for name in self.node.settings.outputs:
                self.io.create_subscription(
                    Image,
                    f"{cam}/{name}",
                    lambda msg, key=(cam, name): self.received.setdefault(key, []).append(msg),
                    QOS,
                )
        self.io.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 10)
        self.wait(lambda: all(p.get_subscription_count() > 0 for p in self.pubs.values()))

    def wait(self, condition, timeout: float = 5.0) -> None:
        assert self.spin_until([self.node, self.io], condition, timeout), "timed out"

    def count(self, camera: str, name: str | None = None) -> int:
        """Frames of ``camera`` with output ``name`` received (every output when None)."""
        names = [name] if name else self.node.settings.outputs
        return min(len(self.received.get((camera, n), [])) for n in names)

    def send(self, camera: str, msg, expect_output: bool = True) -> None:
        before = self.count(camera)
        self.pubs[camera].publish(msg)
        if expect_output:
            self.wait(lambda: self.count(camera) > before)

    def drops(self, camera: str) -> dict[str, int]:
        return self.node.stats.snapshot(time.monotonic()).cameras[camera].drops

    def close(self) -> None:
        self.node.close()
        self.node.destroy_node()
        self.io.destroy_node()


def frame_msg(pixels_rgb: np.ndarray, encoding: str, stamp: int, padding: int = 0) -> Image:
    """An Image in ``encoding`` (from RGB pixels) with ``padding`` bytes per row."""
    convert = {
        "rgb8": None,
        "bgr8": cv2.COLOR_RGB2BGR,
        "rgba8": cv2.COLOR_RGB2RGBA,
        "bgra8": cv2.COLOR_RGB2BGRA,
        "mono8": cv2.COLOR_RGB2GRAY,
    }[encoding]
    pixels = pixels_rgb if convert is None else cv2.cvtColor(pixels_rgb, convert)
    rows = pixels.reshape(pixels.shape[0], -1)
    rows = np.concatenate([rows, np.zeros((rows.shape[0], padding), np.uint8)], axis=1)
    msg = Image(
        height=pixels.shape[0], width=pixels.shape[1], encoding=encoding, step=rows.shape[1], data=rows.tobytes()
    )
    msg.header = Header(stamp=Time(sec=stamp, nanosec=stamp * 1000), frame_id=f"frame{stamp}")
    return msg


def scene(height: int = 16, width: int = 24, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture
def harness(ros_context, spin_until, fake_runtime, request):
    made = []

    def make(**parameters) -> Harness:
        made.append(Harness(ros_context, spin_until, fake_runtime, **parameters))
        return made[-1]

    yield make
    for h in made:
        h.close()


def test_every_output_has_the_input_header_encoding_and_content(harness) -> None:
    h = harness(cameras=["front"], outputs=list(OUTPUTS), anomaly_threshold=0.5, calibrated_threshold="")
    pixels = scene()
    expected_semantic = (pixels[..., 0] // 64).astype(np.int32)
    expected_anomaly = pixels[..., 1].astype(np.float32) / 255
    for stamp, (encoding, padding) in enumerate([("rgb8", 0), ("bgr8", 5), ("rgba8", 3), ("bgra8", 0)], start=1):
        h.send("front", frame_msg(pixels, encoding, stamp, padding))
        out = {name: h.received[("front", name)][-1] for name in OUTPUTS}
        for name, msg in out.items():
            assert (
                msg.header.stamp == Time(sec=stamp, nanosec=stamp * 1000) and msg.header.frame_id == f"frame{stamp}"
            ), name
            assert (msg.height, msg.width) == (16, 24), name
        encodings = {name: msg.encoding for name, msg in out.items()}
        assert encodings == {
            "semantic": "mono8",
            "anomaly": "32FC1",
            "anomaly_mask": "mono8",
            "open_set": "mono8",
            "panoptic": "32SC1",
            "semantic_color": "rgb8",
            "panoptic_color": "rgb8",
            "anomaly_color": "rgb8",
        }
        np.testing.assert_array_equal(image_view(out["semantic"]), expected_semantic, err_msg=encoding)
        np.testing.assert_allclose(image_view(out["anomaly"]), expected_anomaly, err_msg=encoding)
        np.testing.assert_array_equal(image_view(out["anomaly_mask"]), np.where(expected_anomaly > 0.5, 255, 0))
        np.testing.assert_array_equal(
            image_view(out["open_set"]), np.where(expected_anomaly > 0.5, 254, expected_semantic)
        )
        np.testing.assert_array_equal(
            image_view(out["panoptic"]),
            np.where(expected_semantic >= 2, expected_semantic * 1000 + 1, expected_semantic),
        )
        palette = np.array(h.node.segmenter.metadata.palette, np.uint8)
        np.testing.assert_array_equal(image_view(out["semantic_color"]), palette[expected_semantic])
    grey = np.repeat(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    h.send("front", frame_msg(pixels, "mono8", 9, padding=2))
    np.testing.assert_array_equal(image_view(h.received[("front", "semantic")][-1]), grey[..., 0] // 64)


def test_resizing_and_output_resolution(harness) -> None:
    uniform = np.zeros((48, 64, 3), np.uint8)
    uniform[...] = (200, 100, 0)
    h_input = harness(cameras=["a"], outputs=["semantic", "anomaly"])
    h_input.send("a", frame_msg(uniform, "rgb8", 1))
    semantic = image_view(h_input.received[("a", "semantic")][-1])
    assert semantic.shape == (48, 64) and (semantic == 3).all()
    assert np.allclose(image_view(h_input.received[("a", "anomaly")][-1]), 100 / 255)
    h_network = harness(cameras=["b"], outputs=["semantic"], output_resolution="network")
    h_network.send("b", frame_msg(uniform, "rgb8", 1))
    assert image_view(h_network.received[("b", "semantic")][-1]).shape == (16, 24)


def test_compressed_input(harness) -> None:
    h = harness(cameras=["c"], outputs=["semantic", "open_set"], input_transport="compressed", label_encoding="16UC1")
    pixels = scene(seed=3)
    png = CompressedImage(format="png", data=cv2.imencode(".png", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))[1].tobytes())
    png.header = Header(stamp=Time(sec=4), frame_id="c")
    h.send("c", png)
    out = h.received[("c", "semantic")][-1]
    assert out.encoding == "16UC1" and out.header.stamp.sec == 4
    np.testing.assert_array_equal(image_view(out), pixels[..., 0] // 64)
    h.send("c", CompressedImage(format="jpeg", data=b"\xff\xd8\xff\xe0garbage"), expect_output=False)
    h.wait(lambda: sum(h.drops("c").values()) == 1)


def test_closing_the_node_closes_the_runtime(harness) -> None:
    h = harness(cameras=["d"], outputs=["semantic"])
    assert not h.runtime.closed
    h.node.close()
    assert h.runtime.closed


def test_bad_frames_are_counted_per_reason_and_the_next_good_one_is_processed(harness) -> None:
    h = harness(cameras=["front"], outputs=["semantic"], max_input_pixels=2000, input_encodings=["rgb8", "bgr8"])
    good = frame_msg(scene(), "rgb8", 1)
    bad = {
        "encoding": frame_msg(scene(), "mono8", 2),  # valid image, encoding not accepted
        "step": Image(height=4, width=6, encoding="rgb8", step=10, data=bytes(40)),
        "truncated": Image(height=4, width=6, encoding="rgb8", step=18, data=bytes(50)),
        "empty": Image(height=0, width=0, encoding="rgb8", step=0),
        "too_large": frame_msg(scene(50, 50), "rgb8", 3),
    }
    for reason, msg in bad.items():
        h.send("front", msg, expect_output=False)
        h.wait(lambda: h.drops("front").get(reason) == 1)
        h.send("front", good)
    assert h.count("front") == len(bad)
    h.node.publish_diagnostics()
    h.wait(lambda: h.diagnostics)
    camera = next(s for s in h.diagnostics[-1].status if s.name == "/t/segmentation_node: camera front")
    values = {kv.key: kv.value for kv in camera.values}
    assert all(values[f"dropped {reason}"] == "1" for reason in bad)
    assert values["published"] == str(len(bad))


def test_batching_superseded_frames_failure_budget_and_alarm(harness) -> None:
    # input_depth 5: both queued frames reach the callback (depth 1 would drop one in the middleware).
    h = harness(
        cameras=["a", "b"], outputs=["semantic"], latency_budget_frames=2, input_depth=5, latency_budget_ms=5000.0
    )
    h.runtime.delay_s = 0.4
    h.pubs["a"].publish(frame_msg(scene(), "rgb8", 1))
    h.wait(lambda: h.runtime.batch_sizes == [1])  # inference of frame 1 is running
    for stamp in (2, 3):
        h.pubs["a"].publish(frame_msg(scene(), "rgb8", stamp))
    h.pubs["b"].publish(frame_msg(scene(), "rgb8", 3))
    h.wait(lambda: h.count("a") == 2 and h.count("b") == 1)
    assert h.runtime.batch_sizes == [1, 2]
    assert [m.header.stamp.sec for m in h.received[("a", "semantic")]] == [1, 3]
    assert h.drops("a") == {"superseded": 1}

    def status(name: str) -> DiagnosticStatus:
        h.diagnostics.clear()
        h.node.publish_diagnostics()
        h.wait(lambda: h.diagnostics)
        return next(s for s in h.diagnostics[-1].status if s.name == f"/t/segmentation_node: {name}")

    h.runtime.delay_s = 0.0
    assert status("inference").level == DiagnosticStatus.OK
    h.node.set_parameters([Parameter("latency_budget_ms", value=0.0)])  # run-time change
    h.send("a", frame_msg(scene(), "rgb8", 4))
    h.send("a", frame_msg(scene(), "rgb8", 5))
    assert status("inference").level == DiagnosticStatus.WARN

    h.runtime.error = "device lost"
    h.send("a", frame_msg(scene(), "rgb8", 6), expect_output=False)
    h.wait(lambda: h.drops("a").get("inference") == 1)
    failed = status("inference")
    assert failed.level == DiagnosticStatus.ERROR and "device lost" in failed.message
    h.runtime.error = None
    bright = np.full((16, 24, 3), 255, np.uint8)  # anomaly 1.0 everywhere
    h.send("a", frame_msg(bright, "rgb8", 7))
    assert status("inference").level != DiagnosticStatus.ERROR
    alarm = status("camera a")
    assert alarm.level == DiagnosticStatus.WARN and "anomalous share 1.000" in alarm.message


def test_parameters_read_only_ranges_and_start_up_errors(harness, ros_context, fake_runtime) -> None:
    h = harness(cameras=["p"], outputs=["semantic"])  # calibrated_threshold auto: the model's eam@tpr95
    assert h.node.get_parameter("anomaly_threshold").value == 0.25 == h.node.limits.anomaly_threshold
    assert h.node.info.threshold_source == "model metadata eam@tpr95 (calibrated_threshold auto)"
    assert h.node.set_parameters([Parameter("anomaly_threshold", value=0.7)])[0].successful
    assert h.node.limits.anomaly_threshold == 0.7
    assert h.node.info.threshold_source == "anomaly_threshold (set at run time)"
    for calibrated, given, expected in (("eam@tpr95", 0.6, 0.25), ("", 0.6, 0.6)):
        node = harness(cameras=["p"], outputs=["semantic"], calibrated_threshold=calibrated, anomaly_threshold=given)
        assert node.node.limits.anomaly_threshold == expected, calibrated
    assert not h.node.set_parameters([Parameter("backend", value="pytorch")])[0].successful  # read-only
    assert not h.node.set_parameters([Parameter("anomaly_alarm_share", value=1.5)])[0].successful  # range
    result = h.node.set_parameters([Parameter("anomaly_color_range", value=[1.0, 0.0])])[0]
    assert not result.successful and "low < high" in result.reason

    def start(**parameters) -> None:
        SegmentationNode(
            fake_runtime.open_fake,
            context=ros_context,
            parameter_overrides=[Parameter(k, value=v) for k, v in parameters.items()],
        )

    with pytest.raises(AnomaskError, match="backend='cuda' is not one of"):
        start(backend="cuda")
    with pytest.raises(AnomaskError, match="outputs has unknown entries"):
        start(outputs=["semantic", "depth"])
    with pytest.raises(AnomaskError, match="bad parameter"):
        start(latency_budget_frames=0)
    with pytest.raises(AnomaskError, match="exported with score 'eam'"):
        start(score="uno")
    with pytest.raises(AnomaskError, match="it has: eam@tpr95"):
        start(calibrated_threshold="rba@tpr95")
    with pytest.raises(AnomaskError, match="has no panoptic intermediates .*remove panoptic and panoptic_color"):
        SegmentationNode(
            lambda settings: Segmenter(fake_runtime.FakeRuntime(panoptic=False), fake_runtime.fake_panoptic),
            context=ros_context,
            parameter_overrides=[Parameter("outputs", value=["semantic", "panoptic_color"])],
        )
    with pytest.raises(AnomaskError, match="model file not found: /nowhere/m.onnx"):
        SegmentationNode(context=ros_context, parameter_overrides=[Parameter("model_path", value="/nowhere/m.onnx")])


def test_use_sim_time_measures_output_age_on_the_bag_clock(harness) -> None:
    from rosgraph_msgs.msg import Clock

    h = harness(cameras=["s"], outputs=["semantic"], use_sim_time=True)
    clock_pub = h.io.create_publisher(Clock, "/clock", 10)
    h.wait(lambda: clock_pub.get_subscription_count() > 0)
    clock_pub.publish(Clock(clock=Time(sec=1000, nanosec=500_000_000)))
    h.wait(lambda: h.node.get_clock().now().nanoseconds == 1_000_500_000_000)
    h.send("s", frame_msg(scene(), "rgb8", 1000))  # stamp 1000.001 s: 499 ms old on the bag clock
    p50, _ = h.node.stats.snapshot(time.monotonic()).latency["age"]
    assert p50 == pytest.approx(499.0, abs=1e-6)


def test_the_node_and_the_offline_bag_evaluation_give_the_same_maps_through_one_call(
    harness, fake_runtime, monkeypatch, tmp_path
) -> None:
    """The node (decode -> Segmenter.run -> published at the frame's size) and ``anomask bag
    eval --offline`` (``offline_frames``) on the frames of one bag: identical maps, and every
    batch of either went through ``Segmenter.run``. Frames 32x40 against the runtime's 16x24,
    so both resizes are exercised."""
    images = tmp_path / "images"
    images.mkdir()
    for index in range(3):
        cv2.imwrite(str(images / f"f{index}.png"), cv2.cvtColor(scene(32, 40, seed=index), cv2.COLOR_RGB2BGR))
    write_bag(tmp_path / "bag", [CameraSource("front", images)], WriteOptions())
    calls = []
    run = Segmenter.run

    def recorded(self, frames, threshold, panoptic_method=None):
        calls.append((self.runtime, len(frames), threshold, panoptic_method))
        return run(self, frames, threshold, panoptic_method)

    monkeypatch.setattr(Segmenter, "run", recorded)
    names = ("semantic", "anomaly", "open_set", "panoptic")
    h = harness(
        cameras=["front"], outputs=list(names), anomaly_threshold=0.4, calibrated_threshold="", panoptic_method="mining"
    )
    offline = Segmenter(fake_runtime.FakeRuntime(), fake_runtime.fake_panoptic)
    counts = ReplayCounts()
    for frame, maps in offline_frames(tmp_path / "bag", offline, 0.4, "mining", None, counts):
        h.send("front", deserialize_message(frame.image, Image))
        for name in names:
            published = image_view(h.received[("front", name)][-1])
            assert published.shape == (32, 40), name
            np.testing.assert_array_equal(published, getattr(maps, name), err_msg=name)
    assert counts.to_dict()["frames_out"] == 3
    assert [(runtime is h.runtime, size, threshold, method) for runtime, size, threshold, method in calls] == [
        (False, 1, 0.4, "mining"),
        (True, 1, 0.4, "mining"),
    ] * 3
