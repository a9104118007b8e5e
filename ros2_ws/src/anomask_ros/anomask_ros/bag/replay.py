"""A bag replayed through the real node, as separate processes: the Python entry point that
``make demo`` (and the replay tests) call, and the same steps a shell runs by hand:

    python -m anomask_ros.segmentation_node --ros-args -p model_path:=M -p cameras:=[C] -p use_sim_time:=true
    anomask bag record OUT --topics /C/semantic:sensor_msgs/msg/Image ... /C/image:sensor_msgs/msg/Image \
        /clock:rosgraph_msgs/msg/Clock /diagnostics:diagnostic_msgs/msg/DiagnosticArray
    anomask bag play BAG --topics /C/image --clock --wait-for-subscribers 120 --min-subscribers 2

:func:`run_replay` starts the node and waits until it is ready, starts the recorder (typed
topics: it subscribes at once) and waits until it is subscribed to the node's outputs, then
starts the player (it waits for both the node and the recorder on every topic, and at the end
for their acknowledgements, so no frame is missed); it counts the node's outputs itself, and
once the player is done and every frame has its outputs (or none came for ``settle_s``), stops
the recorder and the node with SIGINT. The node runs with ``use_sim_time``, so its output age is
measured on the bag clock.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from anomask.errors import AnomaskError
from anomask_ros.bag.eval import EVAL_OUTPUTS, output_topic
from anomask_ros.bag.frames import find_cameras
from anomask_ros.bag.io import open_bag
from anomask_ros.bag.record import EXPECTED_LINE
from anomask_ros.segmentation_node import READY_LINE


def ros_arguments(parameters: dict[str, object]) -> list[str]:
    """``--ros-args -p name:=value ...``; values as JSON, which ROS reads as YAML."""
    args = ["--ros-args"]
    for name, value in parameters.items():
        args += ["-p", f"{name}:={json.dumps(value)}"]
    return args


def node_command(parameters: dict[str, object]) -> list[str]:
    return [sys.executable, "-m", "anomask_ros.segmentation_node", *ros_arguments(parameters)]


def bag_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "anomask", "bag", *args]


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start_logged(command: list[str], log: Path) -> subprocess.Popen:
    """A process with stdout and stderr into ``log``."""
    handle = open(log, "w")  # noqa: SIM115 - closed by the process owner via stop()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
    finally:
        handle.close()


def wait_for_line(process: subprocess.Popen, log: Path, text: str, timeout_s: float, what: str) -> None:
    """Until ``text`` appears in ``log``; an AnomaskError with the log's tail when the
    process exits first or the time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise AnomaskError(f"{what} exited with status {process.returncode} before it was ready:\n{_tail(log)}")
        time.sleep(0.1)
    raise AnomaskError(f"{what} was not ready within {timeout_s:.0f} s:\n{_tail(log)}")


def stop(process: subprocess.Popen, timeout_s: float = 30.0) -> int:
    """SIGINT, then SIGKILL after ``timeout_s``; the exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


class SpinningNode:
    """An rclpy node in a context of its own, spun by a daemon thread until :meth:`close`
    (callbacks run in that thread)."""

    def __init__(self, name: str) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while rclpy.ok(context=self.context):
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # the context was shut down under the executor
                return

    def close(self) -> None:
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=5)


class OutputCounter(SpinningNode):
    """Counts, per camera, the frames whose every watched output arrived."""

    def __init__(self, topics: dict[str, str]) -> None:
        super().__init__("anomask_replay_counter")
        self.counts: dict[str, dict[str, int]] = {}
        self.last_output = time.monotonic()
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        for topic, camera in topics.items():
            self.node.create_subscription(Image, topic, lambda msg, t=topic, c=camera: self._got(c, t), qos, raw=True)

    def _got(self, camera: str, topic: str) -> None:
        per_topic = self.counts.setdefault(camera, {})
        per_topic[topic] = per_topic.get(topic, 0) + 1
        self.last_output = time.monotonic()

    def frames(self, camera: str, topics: int) -> int:
        per_topic = self.counts.get(camera, {})
        return min(per_topic.values()) if len(per_topic) == topics else 0


@dataclass(frozen=True)
class ReplayRun:
    recording: Path
    """The bag of the node's outputs (+ the played camera topics, /clock, /diagnostics)."""
    frames_in: dict[str, int]
    frames_out: dict[str, int]
    logs: Path
    """Folder with node.log, play.log and record.log."""
    node_status: int = 0
    parameters: dict[str, object] = field(default_factory=dict)


def run_replay(
    bag: Path,
    model: Path,
    out: Path,
    *,
    rate: float = 1.0,
    cameras: list[str] | None = None,
    parameters: dict[str, object] | None = None,
    storage: str = "mcap",
    settle_s: float = 10.0,
    start_timeout_s: float = 120.0,
    logs: Path | None = None,
    log=print,
) -> ReplayRun:
    """Plays ``bag`` into a ``segmentation_node`` process running ``model`` and records its
    outputs to ``out``; returns when the recording is closed. ``parameters`` are extra node
    parameters (e.g. ``{"anomaly_threshold": 0.3}``)."""
    bag, out = Path(bag), Path(out)
    if out.exists():
        raise AnomaskError(f"{out} already exists: choose a new recording path")
    with open_bag(bag) as reader:
        topics = find_cameras(reader, bag, cameras)
        frames_in = {c: next(x.msgcount for x in reader.connections if x.topic == t.image) for c, t in topics.items()}
    transports = {t.compressed for t in topics.values()}
    if len(transports) > 1:
        raise AnomaskError(
            f"bag {bag} mixes raw and compressed cameras; one node takes one input transport: pass --cameras"
        )
    node_parameters: dict[str, object] = {
        "model_path": str(model),
        "cameras": list(topics),
        "input_transport": "compressed" if transports.pop() else "raw",
        "input_reliability": "reliable",
        # Frames wait in DDS while the node's executor is busy; the node still keeps only the
        # newest per camera and counts the others as superseded (depth 1 would lose them unseen).
        "input_depth": 10,
        "output_depth": 100,  # outputs are kept until the recorder acknowledged them
        "outputs": list(EVAL_OUTPUTS),
        "use_sim_time": True,
        **(parameters or {}),
    }
    outputs = [name for name in node_parameters["outputs"] if name in EVAL_OUTPUTS]
    output_topics = {output_topic("", c, n): c for c in topics for n in outputs}
    logs = Path(logs) if logs else Path(tempfile.mkdtemp(prefix="anomask-replay-"))
    logs.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen] = []
    counter = None
    try:
        log(f"replay: starting the node on {model}")
        node = start_logged(node_command(node_parameters), logs / "node.log")
        processes.append(node)
        wait_for_line(node, logs / "node.log", READY_LINE, start_timeout_s, "segmentation_node")
        counter = OutputCounter(output_topics)
        image_topics = [t.image for t in topics.values()]
        image_types = {t.image: "sensor_msgs/msg/" + t.message_type.__name__ for t in topics.values()}
        # Typed topics: the recorder subscribes to everything before the player exists.
        recorded = [
            *(f"{t}:sensor_msgs/msg/Image" for t in output_topics),
            *(f"{t}:{image_types[t]}" for t in image_topics),
            "/clock:rosgraph_msgs/msg/Clock",
            "/diagnostics:diagnostic_msgs/msg/DiagnosticArray",
        ]
        # Every output the node can publish: the recorder says when it has them all (a SIGINT
        # before that loses those still queued in it when the machine is busy).
        expect = [f"{t}={frames_in[c]}" for t, c in output_topics.items()]
        recorder = start_logged(
            bag_command("record", str(out), "--topics", *recorded, "--storage", storage, "--expect", *expect),
            logs / "record.log",
        )
        processes.append(recorder)
        wait_for_line(recorder, logs / "record.log", "recording ", start_timeout_s, "anomask bag record")
        deadline = time.monotonic() + start_timeout_s
        while any(counter.node.count_subscribers(t) < 2 for t in output_topics):  # the counter and the recorder
            if time.monotonic() > deadline or recorder.poll() is not None:
                raise AnomaskError(
                    f"the recorder did not subscribe to the node's outputs within {start_timeout_s:.0f} "
                    f"s:\n{_tail(logs / 'record.log')}"
                )
            time.sleep(0.05)
        time.sleep(0.5)  # the node's side of the match
        # The player waits for two subscribers per topic (the node and the recorder; /clock: the
        # node under use_sim_time and the recorder) before its first message.
        player = start_logged(
            bag_command(
                "play",
                str(bag),
                "--topics",
                *image_topics,
                "--rate",
                str(rate),
                "--clock",
                "--wait-for-subscribers",
                str(start_timeout_s),
                "--min-subscribers",
                "2",
            ),
            logs / "play.log",
        )
        processes.append(player)
        log(f"replay: playing {sum(frames_in.values())} frames of {bag} at rate {rate}")
        while player.poll() is None:
            if node.poll() is not None:
                raise AnomaskError(
                    f"segmentation_node exited with status {node.returncode} during the "
                    f"replay:\n{_tail(logs / 'node.log')}"
                )
            time.sleep(0.1)
        if player.returncode != 0:
            raise AnomaskError(f"anomask bag play failed (status {player.returncode}):\n{_tail(logs / 'play.log')}")
        done = lambda: all(counter.frames(c, len(outputs)) >= n for c, n in frames_in.items())  # noqa: E731
        while not done() and time.monotonic() - counter.last_output < settle_s and node.poll() is None:
            time.sleep(0.1)
        if done():
            with contextlib.suppress(AnomaskError):  # frames the node superseded never come
                wait_for_line(recorder, logs / "record.log", EXPECTED_LINE, settle_s, "anomask bag record")
        time.sleep(0.5)  # the recorder's copies of the last outputs and /diagnostics
        if stop(recorder) != 0:
            raise AnomaskError(
                f"anomask bag record failed (status {recorder.returncode}):\n{_tail(logs / 'record.log')}"
            )
        frames_out = {c: counter.frames(c, len(outputs)) for c in frames_in}
        node_status = stop(node)
        log(f"replay: {sum(frames_out.values())} of {sum(frames_in.values())} frames have outputs; recorded {out}")
        return ReplayRun(out, frames_in, frames_out, logs, node_status, node_parameters)
    finally:
        if counter is not None:
            counter.close()
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
