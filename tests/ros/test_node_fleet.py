"""segmentation_node on a vehicle, as real processes with the small ONNX model (``small_model``):
HD frames with the shipped parameters, fair service of several cameras, and two node
instances told apart on /diagnostics.

Two node processes serve the module, started together (start-up dominates):
``/hd/segmentation_node`` runs ``launch/anomask.yaml`` as shipped (only ``model_path`` set,
the namespace remapped); ``/fleet/segmentation_node`` has four cameras and ``max_batch: 1``.
The test process publishes like a camera driver (reliable, depth 10: rclpy's and
image_transport's default) at rates the assertions do not depend on: they count frames and
outputs, never time."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, Header

from anomask_ros.bag.replay import SpinningNode, ros_arguments, start_logged, stop, wait_for_line
from anomask_ros.segmentation_node import READY_LINE, READY_QOS

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "launch" / "anomask.yaml"
DRIVER_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
FLEET = ("c0", "c1", "c2", "c3")


def node_command(namespace: str, parameters: dict[str, object], params_file: Path | None = None) -> list[str]:
    args = ros_arguments(parameters)
    if params_file is not None:
        args[1:1] = ["--params-file", str(params_file)]
    return [sys.executable, "-m", "anomask_ros.segmentation_node", *args, "-r", f"__ns:={namespace}"]


def frame(height: int, width: int, index: int) -> Image:
    pixels = np.full((height, width * 3), index % 256, np.uint8)
    msg = Image(height=height, width=width, encoding="rgb8", step=width * 3, data=pixels.tobytes())
    msg.header = Header(stamp=Time(sec=index), frame_id=f"{height}p")
    return msg


class Io(SpinningNode):
    """Publishes camera frames; counts each camera's semantic outputs by stamp; keeps
    /diagnostics and the nodes' ready signals."""

    def __init__(self, topics: dict[str, str]) -> None:
        super().__init__("driver")
        self.lock = threading.Lock()
        self.outputs: dict[str, list[int]] = {camera: [] for camera in topics}
        self.pubs = {
            camera: self.node.create_publisher(Image, f"{ns}/image", DRIVER_QOS) for camera, ns in topics.items()
        }
        for camera, ns in topics.items():
            self.node.create_subscription(
                Image, f"{ns}/semantic", lambda msg, c=camera: self._output(c, msg), DRIVER_QOS
            )
        self.diagnostics: dict[str, object] = {}
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._diagnostics, 50)
        self.ready: dict[str, bool] = {}
        for node in ("/hd/segmentation_node", "/fleet/segmentation_node"):
            self.node.create_subscription(
                Bool, f"{node}/ready", lambda msg, n=node: self.ready.__setitem__(n, msg.data), READY_QOS
            )

    def _output(self, camera: str, msg: Image) -> None:
        with self.lock:
            self.outputs[camera].append(msg.header.stamp.sec)

    def _diagnostics(self, msg: DiagnosticArray) -> None:
        with self.lock:
            for status in msg.status:
                self.diagnostics[status.name] = status

    def count(self, camera: str) -> int:
        with self.lock:
            return len(self.outputs[camera])

    def values(self, name: str) -> dict[str, str]:
        with self.lock:
            return {kv.key: kv.value for kv in self.diagnostics[name].values}


def wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def fleet(small_model, tmp_path_factory):
    logs = tmp_path_factory.mktemp("fleet")
    commands = {
        "hd": node_command("/hd", {"model_path": str(small_model.onnx)}, SHIPPED),
        "fleet": node_command(
            "/fleet",
            {
                "model_path": str(small_model.onnx),
                "cameras": list(FLEET),
                "max_batch": 1,
                "runtime_threads": 1,
                "input_depth": 1,
                "outputs": ["semantic"],
                "diagnostics_period_s": 0.2,
            },
        ),
    }
    procs: dict[str, subprocess.Popen] = {n: start_logged(c, logs / f"{n}.log") for n, c in commands.items()}
    io = None
    try:
        for name, proc in procs.items():
            wait_for_line(proc, logs / f"{name}.log", READY_LINE, 180, f"{name} node")
        io = Io({"camera": "/hd/camera", **{c: f"/fleet/{c}" for c in FLEET}})
        wait(lambda: all(p.get_subscription_count() > 0 for p in io.pubs.values()), 30, "the nodes' subscriptions")
        wait(lambda: all(io.node.count_publishers(f"/fleet/{c}/semantic") for c in FLEET), 30, "the nodes' outputs")
        wait(lambda: io.node.count_publishers("/hd/camera/semantic") > 0, 30, "the HD node's outputs")
        yield io, logs
    finally:
        if io is not None:
            io.close()
        statuses = {name: stop(proc) for name, proc in procs.items()}
        assert statuses == {"hd": 0, "fleet": 0}, {n: (logs / f"{n}.log").read_text()[-2000:] for n in statuses}


def test_hd_frames_with_the_shipped_parameters_each_get_an_output(fleet) -> None:
    io, logs = fleet
    sizes = [(720, 1280)] * 5 + [(1080, 1920)] * 5
    for index, (height, width) in enumerate(sizes, start=1):
        # At most 2 Hz, and never before the previous frame's output: a rate the model keeps
        # up with on a loaded machine, so a missing output can only be a lost frame.
        io.pubs["camera"].publish(frame(height, width, index))
        time.sleep(0.5)
        wait(lambda i=index: io.count("camera") >= i, 60, f"the output of frame {index} ({height}p)")
    with io.lock:
        assert io.outputs["camera"] == list(range(1, len(sizes) + 1))
    name = "/hd/segmentation_node: camera camera"
    wait(lambda: name in io.diagnostics and io.values(name)["published"] == "10", 10, "the HD node's counts")
    values = io.values(name)
    assert (values["received"], values["missed"], values["dropped"]) == ("10", "0", "0"), values
    print(f"HD, shipped YAML: sent 5 at 1280x720 and 5 at 1920x1080, outputs {io.count('camera')}, node {values}")
    log = (logs / "hd.log").read_text()
    # The small model has no calibrated threshold and scores <= 0: the start-up line says so,
    # and a WARN that 0.5 can never fire.
    assert "anomaly threshold 0.5 from anomaly_threshold (calibrated_threshold auto: the model metadata has no " in log
    assert "is outside the score range" in log and "no pixel can be anomalous" in log


@pytest.mark.parametrize("cameras", [2, 4])
def test_every_camera_gets_its_share_at_batch_1_whatever_the_publishing_order(fleet, cameras: int) -> None:
    """Publishers in a fixed order, faster than the model: each camera's share of outputs
    lies within 10 % of equal."""
    io, _ = fleet
    names = FLEET[:cameras]
    before = {c: io.count(c) for c in names}
    for tick in range(150):
        for camera in names:  # always the same order: the first camera's callback runs first
            io.pubs[camera].publish(frame(64, 128, tick))
        time.sleep(1 / 15)
    time.sleep(2.0)  # the last frames through
    outputs = {c: io.count(c) - before[c] for c in names}
    shares = {c: n / sum(outputs.values()) for c, n in outputs.items()}
    print(f"{cameras} cameras, max_batch 1, 15 Hz each: outputs {outputs}, shares {shares}")
    assert all(abs(share * cameras - 1) <= 0.1 for share in shares.values()), outputs


def test_two_nodes_in_different_namespaces_publish_distinct_status_names_and_are_ready(fleet) -> None:
    io, _ = fleet
    names = {
        "/hd/segmentation_node: inference",
        "/hd/segmentation_node: camera camera",
        "/fleet/segmentation_node: inference",
        *(f"/fleet/segmentation_node: camera {c}" for c in FLEET),
    }
    wait(lambda: names <= set(io.diagnostics), 10, f"statuses {names}")
    inference = io.diagnostics["/fleet/segmentation_node: inference"]
    assert inference.hardware_id == "onnxruntime cpu", inference.hardware_id
    assert io.ready == {"/hd/segmentation_node": True, "/fleet/segmentation_node": True}
