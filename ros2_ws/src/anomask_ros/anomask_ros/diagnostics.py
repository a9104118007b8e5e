"""``/diagnostics`` content from a :class:`~anomask_ros.stats.Snapshot`.

One status for inference (backend, model, per-stage latency p50/p99; WARN after
``latency_budget_frames`` frames in a row over ``latency_budget_ms``; ERROR while the last
inference failed) and one per camera (input and output rate, counts, drops per reason;
WARN when the last frame's share of anomalous pixels exceeds ``anomaly_alarm_share``:
a blinded camera or an unknown domain).
"""

from __future__ import annotations

from dataclasses import dataclass

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from anomask_ros.image_codec import DROP_REASONS
from anomask_ros.stats import STAGES, CameraSnapshot, Snapshot

NODE_DROP_REASONS = (*DROP_REASONS, "superseded", "inference")
"""Every reason a frame is dropped: a malformed message (image_codec), replaced by a newer
frame before the worker took it, or lost to a failed inference."""


@dataclass(frozen=True)
class ModelInfo:
    backend: str
    model: str
    score: str
    input_size: tuple[int, int]


@dataclass(frozen=True)
class Thresholds:
    """The run-time-changeable limits the statuses are judged by."""

    anomaly_threshold: float
    latency_budget_ms: float
    latency_budget_frames: int
    anomaly_alarm_share: float


def _kv(key: str, value: object) -> KeyValue:
    text = f"{value:.3f}" if isinstance(value, float) else str(value)
    return KeyValue(key=key, value=text)


def inference_status(snapshot: Snapshot, info: ModelInfo, limits: Thresholds) -> DiagnosticStatus:
    values = [
        _kv("backend", info.backend),
        _kv("model", info.model),
        _kv("score", info.score),
        _kv("input size", f"{info.input_size[1]}x{info.input_size[0]}"),
        _kv("anomaly threshold", limits.anomaly_threshold),
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
        level=level, name="anomask: inference", message=message, hardware_id=info.backend, values=values
    )


def camera_status(camera: str, snap: CameraSnapshot, limits: Thresholds) -> DiagnosticStatus:
    values = [
        _kv("input Hz", snap.input_hz),
        _kv("output Hz", snap.output_hz),
        _kv("received", snap.received),
        _kv("published", snap.published),
        _kv("dropped", sum(snap.drops.values())),
    ]
    values += [_kv(f"dropped {reason}", snap.drops.get(reason, 0)) for reason in NODE_DROP_REASONS]
    share = snap.anomalous_share
    values.append(_kv("anomalous share", share if share is not None else "n/a"))
    if share is not None and share > limits.anomaly_alarm_share:
        level = DiagnosticStatus.WARN
        message = f"anomalous share {share:.3f} > {limits.anomaly_alarm_share:.3f}: camera blinded or unknown domain?"
    else:
        level, message = DiagnosticStatus.OK, "ok"
    return DiagnosticStatus(
        level=level, name=f"anomask: camera {camera}", message=message, hardware_id=camera, values=values
    )


def diagnostic_array(snapshot: Snapshot, info: ModelInfo, limits: Thresholds, stamp: Time) -> DiagnosticArray:
    statuses = [inference_status(snapshot, info, limits)]
    statuses += [camera_status(camera, snap, limits) for camera, snap in snapshot.cameras.items()]
    array = DiagnosticArray(status=statuses)
    array.header.stamp = stamp
    return array
