"""``/diagnostics`` content from a :class:`~anomask_ros.stats.Snapshot`.

Status names follow diagnostic_updater's ``<node>: <task>``, with the node's fully qualified
name so that two instances differ (``/front/segmentation_node: inference``,
``/front/segmentation_node: camera left``); ``hardware_id`` is the backend and its device
(``onnxruntime cpu``, ``tensorrt cuda:0``) for inference, the camera for a camera status.

One status for inference (backend, model, per-stage latency p50/p99; WARN after
``latency_budget_frames`` frames in a row over ``latency_budget_ms``; ERROR while the last
inference failed) and one per camera (input and output rate, counts, drops per reason;
WARN when the last frame's share of anomalous pixels exceeds ``anomaly_alarm_share``: a
blinded camera or an unknown domain; WARN when the camera's output rate is below
``min_output_share`` of its input rate: a starved camera).
"""

from __future__ import annotations

from dataclasses import dataclass

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from anomask_ros.image_codec import DROP_REASONS
from anomask_ros.stats import STAGES, CameraSnapshot, Snapshot

NODE_DROP_REASONS = (*DROP_REASONS, "superseded", "inference")
"""Every reason a received frame is dropped: a malformed message (image_codec), replaced by a
newer frame before the worker took it, or lost to a failed inference. Frames that never
reached the node are counted apart (``missed``)."""


INFERENCE = "inference"
MIN_FRAMES_FOR_SHARE = 10
"""A camera's output share is judged from its 10th frame on (not while its stream starts)."""


def camera_task(camera: str) -> str:
    return f"camera {camera}"


def status_name(node: str, task: str) -> str:
    """``<fully qualified node name>: <task>``."""
    return f"{node}: {task}"


def task_of(name: str) -> str:
    """The task part of a status name (``inference``, ``camera front``); node names hold no ``": "``."""
    return name.split(": ", 1)[-1]


def device_of(runtime: object) -> str:
    """The device a runtime computes on: ONNX Runtime's first execution provider (cpu, cuda,
    tensorrt), the torch device of the PyTorch and TensorRT backends."""
    providers = getattr(runtime, "providers", None)
    if providers:
        return providers[0].removesuffix("ExecutionProvider").lower()
    device = getattr(runtime, "device", None)
    return str(device) if device is not None else "unknown"


@dataclass(frozen=True)
class ModelInfo:
    node: str
    """Fully qualified node name."""
    backend: str
    device: str
    model: str
    score: str
    input_size: tuple[int, int]
    threshold_source: str
    """Where the anomaly threshold came from (``metadata eam@tpr95``, ``anomaly_threshold``)."""

    @property
    def hardware_id(self) -> str:
        return f"{self.backend} {self.device}"


@dataclass(frozen=True)
class Thresholds:
    """The run-time-changeable limits the statuses are judged by."""

    anomaly_threshold: float
    latency_budget_ms: float
    latency_budget_frames: int
    anomaly_alarm_share: float
    min_output_share: float


def _kv(key: str, value: object) -> KeyValue:
    text = f"{value:.3f}" if isinstance(value, float) else str(value)
    return KeyValue(key=key, value=text)


def inference_status(snapshot: Snapshot, info: ModelInfo, limits: Thresholds) -> DiagnosticStatus:
    values = [
        _kv("backend", info.backend),
        _kv("device", info.device),
        _kv("model", info.model),
        _kv("score", info.score),
        _kv("input size", f"{info.input_size[1]}x{info.input_size[0]}"),
        _kv("anomaly threshold", limits.anomaly_threshold),
        _kv("threshold source", info.threshold_source),
        _kv("batches", snapshot.batches),
        _kv("frames per batch", snapshot.frames_per_batch),
        _kv("latency budget ms", limits.latency_budget_ms),
        _kv("frames over budget in a row", snapshot.over_budget_streak),
    ]
    for stage in STAGES:
        if stage in snapshot.latency:
            p50, p99 = snapshot.latency[stage]
            values += [_kv(f"{stage} p50 ms", p50), _kv(f"{stage} p99 ms", p99)]
    if snapshot.inference_error is not None:
        level, message = DiagnosticStatus.ERROR, f"inference failed: {snapshot.inference_error}"
    elif snapshot.over_budget_streak >= limits.latency_budget_frames:
        level = DiagnosticStatus.WARN
        message = (
            f"latency over budget ({limits.latency_budget_ms:.1f} ms) for {snapshot.over_budget_streak} frames in a row"
        )
    else:
        level, message = DiagnosticStatus.OK, "running"
    return DiagnosticStatus(
        level=level,
        name=status_name(info.node, INFERENCE),
        message=message,
        hardware_id=info.hardware_id,
        values=values,
    )


def camera_status(camera: str, snap: CameraSnapshot, info: ModelInfo, limits: Thresholds) -> DiagnosticStatus:
    values = [
        _kv("input Hz", snap.input_hz),
        _kv("output Hz", snap.output_hz),
        _kv("received", snap.received),
        _kv("missed", snap.missed),
        _kv("published", snap.published),
        _kv("dropped", sum(snap.drops.values())),
    ]
    values += [_kv(f"dropped {reason}", snap.drops.get(reason, 0)) for reason in NODE_DROP_REASONS]
    share = snap.anomalous_share
    values.append(_kv("anomalous share", share if share is not None else "n/a"))
    warnings = []
    judged = snap.received >= MIN_FRAMES_FOR_SHARE and snap.input_hz > 0
    if judged and snap.output_hz < limits.min_output_share * snap.input_hz:
        warnings.append(
            f"output {snap.output_hz:.1f} Hz < {limits.min_output_share:.2f} x input {snap.input_hz:.1f} Hz: "
            f"camera starved or model too slow"
        )
    if share is not None and share > limits.anomaly_alarm_share:
        warnings.append(
            f"anomalous share {share:.3f} > {limits.anomaly_alarm_share:.3f}: camera blinded or unknown domain?"
        )
    level = DiagnosticStatus.WARN if warnings else DiagnosticStatus.OK
    return DiagnosticStatus(
        level=level,
        name=status_name(info.node, camera_task(camera)),
        message="; ".join(warnings) or "ok",
        hardware_id=camera,
        values=values,
    )


def diagnostic_array(snapshot: Snapshot, info: ModelInfo, limits: Thresholds, stamp: Time) -> DiagnosticArray:
    statuses = [inference_status(snapshot, info, limits)]
    statuses += [camera_status(camera, snap, info, limits) for camera, snap in snapshot.cameras.items()]
    array = DiagnosticArray(status=statuses)
    array.header.stamp = stamp
    return array
