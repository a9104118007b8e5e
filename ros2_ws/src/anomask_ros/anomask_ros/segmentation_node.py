"""``segmentation_node``: camera images in; semantic, anomaly, open-set and panoptic images out.

Threads: the executor runs the subscription callbacks, which only store the message in
its camera's newest-frame slot (never blocking on inference), and the diagnostics timer
(on the steady clock, so it runs under ``use_sim_time`` before any ``/clock``). One worker
thread handles every batch the same way: take the waiting frames (``frame_slots``: newest
frame per camera, cameras served round robin), decode
them (``image_codec.decode``), run them (``Segmenter.run``: everything to publish plus its
timings) and publish (messages from ``OutputBuilder``). The offline bag evaluation
(``anomask_ros.bag.eval``) runs the same decode and ``Segmenter.run``.
Once spinning, the node publishes ``~/ready`` (latched) and logs ``running: ...``.
SIGINT / SIGTERM shut the context down (rclpy's handlers); the worker is then stopped and
joined and the runtime dropped before the process exits.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.subscription import MessageInfo
from rclpy.time import Time
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Bool

from anomask.errors import AnomaskError
from anomask_ros import params
from anomask_ros.diagnostics import ModelInfo, Thresholds, device_of, diagnostic_array
from anomask_ros.frame_slots import LatestFrameSlots, Waiting
from anomask_ros.image_codec import Frame, ImageError, decode
from anomask_ros.outputs import FrameOutputs, OutputBuilder
from anomask_ros.segmenter import Segmenter, Timings, open_segmenter
from anomask_ros.shutdown import until_shutdown
from anomask_ros.stats import NodeStats, ScoreRange, SequenceGaps

NODE_NAME = "segmentation_node"
OpenModel = Callable[[params.Settings], Segmenter]
_LOG_THROTTLE_S = 5.0
_THRESHOLD_THROTTLE_S = 60.0
READY_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
"""``~/ready`` (std_msgs/Bool): latched, so a supervisor that subscribes later still gets it."""
READY_LINE = "running: "
"""What the node logs once it is spinning, with ``~/ready`` true."""


def _topic(camera: str, name: str) -> str:
    return f"{camera.rstrip('/')}/{name}"


def open_model(settings: params.Settings) -> Segmenter:
    # A checkpoint has no batch of its own: max_batch, else one frame per camera.
    batch = settings.max_batch or len(settings.cameras)
    return open_segmenter(settings.model_path, settings.backend, settings.runtime_threads, batch)


class SegmentationNode(Node):
    def __init__(self, open_model: OpenModel = open_model, **node_options) -> None:
        """``open_model(settings)`` loads the model; tests pass a stand-in.
        Raises AnomaskError for bad parameters or a model that cannot be opened."""
        super().__init__(NODE_NAME, **node_options)
        try:
            params.declare(self)
        except (InvalidParameterValueException, InvalidParameterTypeException) as error:
            raise AnomaskError(f"bad parameter: {error}") from error
        self.settings = params.read_settings(self)
        self.segmenter = open_model(self.settings)
        metadata = self.segmenter.metadata
        if self.settings.score and self.settings.score != metadata.score:
            raise AnomaskError(
                f"parameter score={self.settings.score!r} but {self.settings.model_path} was exported with score "
                f"{metadata.score!r}"
            )
        threshold, source = params.choose_threshold(
            metadata,
            self.segmenter.runtime.info.settings.refine,
            self.settings.calibrated_threshold,
            self.get_parameter("anomaly_threshold").value,
        )
        self.set_parameters([Parameter("anomaly_threshold", value=threshold)])
        self.get_logger().info(f"anomaly threshold {threshold:.4g} from {source}")
        self.info = ModelInfo(
            node=self.get_fully_qualified_name(),
            backend=self.segmenter.backend,
            device=device_of(self.segmenter.runtime),
            model=self.settings.model_path,
            score=metadata.score,
            input_size=self.segmenter.input_size,
            threshold_source=source,
        )
        self.limits = Thresholds(
            anomaly_threshold=threshold,
            latency_budget_ms=self.get_parameter("latency_budget_ms").value,
            latency_budget_frames=self.get_parameter("latency_budget_frames").value,
            anomaly_alarm_share=self.get_parameter("anomaly_alarm_share").value,
            min_output_share=self.get_parameter("min_output_share").value,
        )
        self.score_range = ScoreRange()
        self.color_range = tuple(self.get_parameter("anomaly_color_range").value)
        self.add_on_set_parameters_callback(self._on_set_parameters)

        cameras = self.settings.cameras
        self.stats = NodeStats(cameras)
        self.gaps = SequenceGaps()
        self.slots: LatestFrameSlots[Image | CompressedImage] = LatestFrameSlots(cameras)
        self.builder = OutputBuilder(metadata, self.settings.outputs, self.settings.label_encoding)
        if self.builder.needs_panoptic() and not self.segmenter.has_panoptic:
            raise AnomaskError(
                f"{self.settings.model_path} has no panoptic intermediates (a per-pixel model?): remove panoptic "
                f"and panoptic_color from outputs"
            )
        # What Segmenter.run is asked for: None skips the panoptic step when no output needs it.
        self.panoptic_method = self.settings.panoptic_method if self.builder.needs_panoptic() else None
        self.max_batch = min(self.settings.max_batch or self.segmenter.max_batch, self.segmenter.max_batch)
        self.publishers_ = {
            camera: {
                name: self.create_publisher(Image, _topic(camera, name), self.settings.output_qos)
                for name in self.settings.outputs
            }
            for camera in cameras
        }
        compressed = self.settings.input_transport == "compressed"
        msg_type, suffix = (CompressedImage, "image/compressed") if compressed else (Image, "image")
        self.subscriptions_ = [
            self.create_subscription(msg_type, _topic(camera, suffix), self._callback(camera), self.settings.input_qos)
            for camera in cameras
        ]
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.ready_pub = self.create_publisher(Bool, "~/ready", READY_QOS)
        self.diagnostics_timer = self.create_timer(
            self.settings.diagnostics_period_s, self.publish_diagnostics, clock=Clock(clock_type=ClockType.STEADY_TIME)
        )
        self._stopping = threading.Event()
        self._worker = threading.Thread(target=self._work, name="anomask-inference", daemon=True)
        self._worker.start()

    def describe(self) -> str:
        metadata = self.segmenter.metadata
        return (
            f"model {self.settings.model_path} ({metadata.score}, {metadata.num_classes} classes) on "
            f"{self.segmenter.backend}; "
            f"cameras {', '.join(self.settings.cameras)} ({self.settings.input_transport}); outputs "
            f"{', '.join(self.settings.outputs)}"
        )

    def announce_ready(self) -> None:
        """Model loaded, topics created: ``~/ready`` true (latched) and the ``running:`` log line."""
        self.ready_pub.publish(Bool(data=True))
        self.get_logger().info(f"{READY_LINE}{self.describe()}")

    def _on_set_parameters(self, changed: list[Parameter]) -> SetParametersResult:
        limits, color_range = self.limits, self.color_range
        for parameter in changed:
            if parameter.name == "anomaly_color_range":
                try:
                    params.check_color_range(parameter.value)
                except AnomaskError as error:
                    return SetParametersResult(successful=False, reason=str(error))
                color_range = tuple(parameter.value)
            elif parameter.name in Thresholds.__dataclass_fields__:
                limits = replace(limits, **{parameter.name: parameter.value})
        if limits.anomaly_threshold != self.limits.anomaly_threshold:
            self.info = replace(self.info, threshold_source="anomaly_threshold (set at run time)")
        self.limits, self.color_range = limits, color_range
        return SetParametersResult(successful=True)

    def _callback(self, camera: str) -> Callable[[Image | CompressedImage, MessageInfo], None]:
        def store(msg: Image | CompressedImage, info: MessageInfo) -> None:
            now = time.monotonic()
            self.stats.received(camera, now)
            missed = self.gaps.missed(camera, info)
            if missed:
                self.stats.missed(camera, missed)
            if self.slots.put(camera, msg, now):
                self.stats.dropped(camera, "superseded")

        return store

    def _work(self) -> None:
        """take -> decode -> run -> publish, batch after batch, until :meth:`close`."""
        while not self._stopping.is_set():
            waiting = self.slots.take(self.max_batch, timeout=0.2)
            try:
                if waiting:
                    self._process(waiting)
            except Exception as error:  # keep serving the next frames whatever one batch did
                if self._stopping.is_set():
                    return
                self.get_logger().error(
                    f"frame processing failed: {type(error).__name__}: {error}", throttle_duration_sec=_LOG_THROTTLE_S
                )

    def _process(self, waiting: list[Waiting]) -> None:
        """One batch: decode -> run -> publish (``waiting`` is what the worker took)."""
        start = time.monotonic()
        taken = self._decode(waiting)
        if not taken:
            return
        decoded = time.monotonic()
        limits = self.limits  # one set of limits for the whole batch, whatever changes meanwhile
        try:
            outputs, timings = self.segmenter.run(
                [frame for _, frame in taken], limits.anomaly_threshold, self.panoptic_method
            )
        except Exception as error:  # any backend failure: report, drop the batch, keep running
            self._failed(taken, error)
            return
        self.stats.batch(len(taken), None)
        self._check_threshold(outputs, limits.anomaly_threshold)
        self.stats.stage("decode", (decoded - start) * 1e3 + timings.batch_ms)
        self.stats.stage("inference", timings.inference_ms)
        self._publish(taken, outputs, timings, start, limits)

    def _check_threshold(self, outputs: list[FrameOutputs], threshold: float) -> None:
        for maps in outputs:
            self.score_range.add(maps.anomaly)
        problem = self.score_range.outside(threshold)
        if problem:
            self.get_logger().warning(problem, throttle_duration_sec=_THRESHOLD_THROTTLE_S)

    def _decode(self, waiting: list[Waiting]) -> list[tuple[Waiting, Frame]]:
        """The decodable frames with their slot entries; the others are counted and logged."""
        taken = []
        for item in waiting:
            try:
                frame = decode(
                    item.item, self.segmenter.input_format, self.settings.limits, self.settings.input_encodings
                )
            except ImageError as error:
                self.stats.dropped(item.camera, error.reason)
                self.get_logger().warning(
                    f"camera {item.camera}: frame dropped ({error.reason}): {error}",
                    throttle_duration_sec=_LOG_THROTTLE_S,
                )
                continue
            taken.append((item, frame))
        return taken

    def _failed(self, taken: list[tuple[Waiting, Frame]], error: Exception) -> None:
        self.stats.batch(len(taken), f"{type(error).__name__}: {error}")
        for item, _ in taken:
            self.stats.dropped(item.camera, "inference")
        self.get_logger().error(
            f"inference failed: {type(error).__name__}: {error}", throttle_duration_sec=_LOG_THROTTLE_S
        )

    def _publish(
        self,
        taken: list[tuple[Waiting, Frame]],
        outputs: list[FrameOutputs],
        timings: Timings,
        start: float,
        limits: Thresholds,
    ) -> None:
        """Each frame's messages, published and measured; ``start``: when the worker took the batch."""
        previous = time.monotonic()
        post_ms = timings.panoptic_ms  # the batch's panoptic step counts as postprocessing of its first frame
        for (item, frame), maps in zip(taken, outputs):
            size = frame.size if self.settings.output_resolution == "input" else maps.semantic.shape[:2]
            messages, share = self.builder.messages(
                maps, size, item.item.header, limits.anomaly_threshold, self.color_range
            )
            built = time.monotonic()
            publishers = self.publishers_[item.camera]
            for name, message in messages.items():
                publishers[name].publish(message)
            done = time.monotonic()
            self.stats.stage("wait", (start - item.received) * 1e3)
            self.stats.stage("postprocess", post_ms + (built - previous) * 1e3)
            self.stats.stage("publish", (done - built) * 1e3)
            total_ms = (done - item.received) * 1e3
            self.stats.frame_total(total_ms, limits.latency_budget_ms)
            self.stats.stage("overhead", total_ms - timings.inference_ms)
            age = self.get_clock().now() - Time.from_msg(item.item.header.stamp, clock_type=self.get_clock().clock_type)
            self.stats.stage("age", age.nanoseconds / 1e6)
            self.stats.published(item.camera, done, share)
            previous, post_ms = done, 0.0

    def publish_diagnostics(self) -> None:
        snapshot = self.stats.snapshot(time.monotonic())
        self.diagnostics_pub.publish(
            diagnostic_array(snapshot, self.info, self.limits, self.get_clock().now().to_msg())
        )

    def close(self) -> None:
        """Stops and joins the worker, then releases the model."""
        self._stopping.set()
        self.slots.close()
        self._worker.join(timeout=30.0)
        self.segmenter.close()


def main(argv: list[str] | None = None, open_model: OpenModel = open_model) -> int:
    """Runs the node until SIGINT/SIGTERM; 0 on a clean stop, 2 when it cannot start."""
    rclpy.init(args=argv)
    try:
        node = SegmentationNode(open_model)
    except AnomaskError as error:
        print(f"{NODE_NAME}: error: {error}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    try:
        with until_shutdown():  # a stop signal may come as soon as "running" is logged, or during it
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            node.announce_ready()
            executor.spin()
    finally:
        node.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
