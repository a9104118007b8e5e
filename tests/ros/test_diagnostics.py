"""/diagnostics content: status names, levels for budget, failure, the anomaly alarm and a
starved camera; every value."""

from __future__ import annotations

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus

from anomask_ros.diagnostics import NODE_DROP_REASONS, ModelInfo, Thresholds, device_of, diagnostic_array, task_of
from anomask_ros.stats import NodeStats

INFO = ModelInfo(
    node="/car/segmentation_node",
    backend="onnxruntime",
    device="cpu",
    model="/m/small.onnx",
    score="eam",
    input_size=(64, 128),
    threshold_source="model metadata eam@tpr95",
)
LIMITS = Thresholds(
    anomaly_threshold=0.4,
    latency_budget_ms=50.0,
    latency_budget_frames=3,
    anomaly_alarm_share=0.2,
    min_output_share=0.5,
)


def _statuses(stats: NodeStats) -> dict[str, DiagnosticStatus]:
    array = diagnostic_array(stats.snapshot(1.0), INFO, LIMITS, Time(sec=3))
    assert array.header.stamp.sec == 3
    assert all(s.name.startswith("/car/segmentation_node: ") for s in array.status)
    return {task_of(s.name): s for s in array.status}


def _values(status: DiagnosticStatus) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def test_ok_run_reports_model_latency_rates_and_every_drop_reason() -> None:
    stats = NodeStats(("front",))
    for i in range(10):
        stats.received("front", 0.1 * i)
        stats.stage("inference", 10.0 + i)
        stats.frame_total(20.0, LIMITS.latency_budget_ms)
        stats.published("front", 0.1 * i + 0.05, 0.1)
    stats.dropped("front", "truncated")
    stats.batch(1, None)
    statuses = _statuses(stats)
    inference = statuses["inference"]
    assert inference.level == DiagnosticStatus.OK and inference.hardware_id == "onnxruntime cpu"
    values = _values(inference)
    assert values["device"] == "cpu" and values["threshold source"] == "model metadata eam@tpr95"
    assert (
        values["backend"] == "onnxruntime" and values["model"] == "/m/small.onnx" and values["input size"] == "128x64"
    )
    assert float(values["inference p50 ms"]) == 14.5 and "total p99 ms" in values
    camera = statuses["camera front"]
    assert camera.level == DiagnosticStatus.OK and camera.hardware_id == "front"
    cam = _values(camera)
    assert cam["received"] == "10" and cam["dropped"] == "1" and cam["dropped truncated"] == "1"
    assert all(f"dropped {reason}" in cam for reason in NODE_DROP_REASONS)
    assert float(cam["input Hz"]) > 5.0


def test_warn_after_n_frames_over_budget_and_error_on_failure() -> None:
    stats = NodeStats(("front",))
    for _ in range(LIMITS.latency_budget_frames - 1):
        stats.frame_total(80.0, LIMITS.latency_budget_ms)
    assert _statuses(stats)["inference"].level == DiagnosticStatus.OK
    stats.frame_total(80.0, LIMITS.latency_budget_ms)
    warn = _statuses(stats)["inference"]
    assert warn.level == DiagnosticStatus.WARN and "3 frames in a row" in warn.message
    stats.batch(1, "RuntimeError: CUDA error")
    error = _statuses(stats)["inference"]
    assert error.level == DiagnosticStatus.ERROR and "CUDA error" in error.message


def test_whole_frame_anomaly_alarm() -> None:
    stats = NodeStats(("front", "rear"))
    stats.published("front", 0.0, 0.75)
    stats.published("rear", 0.0, 0.05)
    statuses = _statuses(stats)
    front = statuses["camera front"]
    assert front.level == DiagnosticStatus.WARN and "0.750" in front.message
    assert statuses["camera rear"].level == DiagnosticStatus.OK


def test_a_camera_whose_output_rate_falls_below_the_share_of_its_input_rate_warns() -> None:
    stats = NodeStats(("front", "rear"))
    for i in range(10):
        for camera in ("front", "rear"):
            stats.received(camera, 0.1 * i)
        stats.published("front", 0.1 * i, 0.0)
        if i % 4 == 0:  # rear: 3 outputs of 10 frames, below min_output_share 0.5
            stats.published("rear", 0.1 * i, 0.0)
    statuses = _statuses(stats)
    assert statuses["camera front"].level == DiagnosticStatus.OK
    rear = statuses["camera rear"]
    assert rear.level == DiagnosticStatus.WARN and "camera starved" in rear.message, rear.message
    idle = _statuses(NodeStats(("idle",)))["camera idle"]  # no input: nothing to judge
    assert idle.level == DiagnosticStatus.OK
    starting = NodeStats(("new",))
    for i in range(9):  # nine frames in, none out yet: the stream is starting
        starting.received("new", 0.1 * i)
    assert _statuses(starting)["camera new"].level == DiagnosticStatus.OK


def test_device_of_each_backend() -> None:
    class Onnx:
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]

    class Torch:
        device = "cuda:0"

    assert (device_of(Onnx()), device_of(Torch()), device_of(object())) == ("cuda", "cuda:0", "unknown")
