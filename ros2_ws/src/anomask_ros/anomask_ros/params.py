"""The node's parameters: one table of declarations (type, default, range, read-only,
description) and the validated settings read from them.

``launch/anomask.yaml`` lists every parameter here with its default; a test keeps the two
in step (and the launch file's ``backend`` choices with ``BACKENDS``), and the README's
parameter table is written from the same facts.
"""

from __future__ import annotations

from dataclasses import dataclass

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from anomask.errors import AnomaskError
from anomask.export import runtime
from anomask.models.heads import threshold_key
from anomask.models.metadata import ModelMetadata
from anomask.models.panoptic_methods import PANOPTIC_METHODS
from anomask_ros.image_codec import COLOR_ENCODINGS, ImageLimits

BACKENDS = ("auto", *runtime.BACKENDS)
"""``auto`` picks the backend from the model file's extension (``anomask.export.runtime``)."""
TRANSPORTS = ("raw", "compressed")
RELIABILITIES = ("reliable", "best_effort")
RESOLUTIONS = ("input", "network")
AUTO_THRESHOLD = "auto"
"""``calibrated_threshold: auto``: the model's calibrated threshold for its own score."""
LABEL_ENCODINGS = ("mono8", "16UC1")
OUTPUTS = (
    "semantic",
    "anomaly",
    "anomaly_mask",
    "open_set",
    "panoptic",
    "semantic_color",
    "panoptic_color",
    "anomaly_color",
)
DEFAULT_OUTPUTS = ("semantic", "anomaly", "anomaly_mask", "open_set", "panoptic")


@dataclass(frozen=True)
class Spec:
    name: str
    default: object
    description: str
    read_only: bool = True
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()


SPECS: tuple[Spec, ...] = (
    Spec("model_path", "", "exported model (.onnx, .engine or checkpoint); required"),
    Spec("backend", "auto", "runtime backend; auto picks from the model file's extension", choices=BACKENDS),
    Spec(
        "score",
        "",
        "expected anomaly score method (eam, uno, msp, rba, ...); empty accepts the model's own, otherwise a "
        "mismatch is a start-up error",
    ),
    Spec(
        "anomaly_threshold",
        0.5,
        "anomaly score threshold for anomaly_mask and open-set unknowns; used when calibrated_threshold is empty, "
        "or auto and the model has no calibrated threshold for its score",
        read_only=False,
        low=-1.0e6,
        high=1.0e6,
    ),
    Spec(
        "panoptic_method",
        "eam",
        "how panoptic finds unknown instances: closed-set = Mask2Former's known classes only; mining, eam, "
        "components = open-set methods of anomask.models.heads",
        choices=PANOPTIC_METHODS,
    ),
    Spec(
        "calibrated_threshold",
        AUTO_THRESHOLD,
        "auto: the model's calibrated threshold for its score (e.g. uno@tpr95) when its metadata has one, "
        "anomaly_threshold otherwise; a key of the metadata's thresholds: that one; empty: anomaly_threshold. "
        "It replaces anomaly_threshold at start-up",
    ),
    Spec(
        "cameras",
        ["camera"],
        "camera namespaces; each subscribes <camera>/image (or image/compressed) and publishes <camera>/<output>",
    ),
    Spec(
        "input_transport",
        "raw",
        "raw: sensor_msgs/Image on <camera>/image; compressed: CompressedImage on <camera>/image/compressed",
        choices=TRANSPORTS,
    ),
    Spec(
        "input_encodings", list(COLOR_ENCODINGS), "accepted raw image encodings; others are dropped (reason encoding)"
    ),
    Spec(
        "input_reliability",
        "reliable",
        "input QoS reliability; best_effort loses frames above ~0.5 MB on Fast DDS's default transports (docs/ros.md)",
        choices=RELIABILITIES,
    ),
    Spec("input_depth", 1, "input QoS history depth", low=1, high=100),
    Spec("output_reliability", "reliable", "output QoS reliability", choices=RELIABILITIES),
    Spec(
        "output_depth",
        2,
        "output QoS history depth: outputs a subscriber has not taken yet beyond this many are overwritten",
        low=1,
        high=100,
    ),
    Spec(
        "output_resolution",
        "input",
        "input: outputs resized to each frame's size; network: at the graph's output size (fixed at export)",
        choices=RESOLUTIONS,
    ),
    Spec(
        "outputs",
        list(DEFAULT_OUTPUTS),
        f"outputs to publish, any of: {', '.join(OUTPUTS)} (colour views off by default)",
    ),
    Spec("label_encoding", "mono8", "encoding of semantic and open_set", choices=LABEL_ENCODINGS),
    Spec(
        "max_input_pixels", 4096 * 4096, "frames with more pixels are dropped (reason too_large)", low=1, high=2**31 - 1
    ),
    Spec(
        "max_input_bytes",
        64 * 1024 * 1024,
        "messages with more data bytes are dropped (reason too_large)",
        low=1,
        high=2**31 - 1,
    ),
    Spec(
        "runtime_threads",
        0,
        "ONNX Runtime intra-op threads; 0 = one per core (other backends ignore it)",
        low=0,
        high=256,
    ),
    Spec("max_batch", 0, "most frames per inference; 0 = the runtime's max_batch", low=0, high=64),
    Spec("latency_budget_ms", 100.0, "receive-to-publish budget per frame", read_only=False, low=0.0, high=1.0e5),
    Spec(
        "latency_budget_frames",
        5,
        "diagnostics WARN after this many frames in a row over budget",
        read_only=False,
        low=1,
        high=10000,
    ),
    Spec(
        "anomaly_alarm_share",
        0.5,
        "diagnostics WARN when a frame's share of anomalous pixels exceeds this",
        read_only=False,
        low=0.0,
        high=1.0,
    ),
    Spec(
        "min_output_share",
        0.1,
        "diagnostics WARN when a camera's output rate falls below this share of its input rate (a starved "
        "camera; 0 never)",
        read_only=False,
        low=0.0,
        high=1.0,
    ),
    Spec("anomaly_color_range", [0.0, 1.0], "score mapped to the ends of the anomaly_color heat map", read_only=False),
    Spec("diagnostics_period_s", 1.0, "period of /diagnostics", low=0.05, high=60.0),
)


def _descriptor(spec: Spec) -> ParameterDescriptor:
    text = spec.description + (f" (one of: {', '.join(spec.choices)})" if spec.choices else "")
    descriptor = ParameterDescriptor(description=text, read_only=spec.read_only)
    if spec.choices:
        descriptor.additional_constraints = f"one of: {', '.join(spec.choices)}"
    if spec.low is not None and isinstance(spec.default, int):
        descriptor.integer_range = [IntegerRange(from_value=int(spec.low), to_value=int(spec.high), step=0)]
    elif spec.low is not None:
        descriptor.floating_point_range = [
            FloatingPointRange(from_value=float(spec.low), to_value=float(spec.high), step=0.0)
        ]
    return descriptor


def declare(node: Node) -> None:
    for spec in SPECS:
        node.declare_parameter(spec.name, spec.default, _descriptor(spec))


def qos_profile(reliability: str, depth: int) -> QoSProfile:
    policy = ReliabilityPolicy.RELIABLE if reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=policy)


@dataclass(frozen=True)
class Settings:
    """The read-only parameters, validated once at start-up."""

    model_path: str
    backend: str
    score: str
    panoptic_method: str
    calibrated_threshold: str
    cameras: tuple[str, ...]
    input_transport: str
    input_encodings: tuple[str, ...]
    input_qos: QoSProfile
    output_qos: QoSProfile
    output_resolution: str
    outputs: tuple[str, ...]
    label_encoding: str
    limits: ImageLimits
    runtime_threads: int
    max_batch: int
    diagnostics_period_s: float


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise AnomaskError(f"parameter {name}={value!r} is not one of: {', '.join(choices)}")


def _check_subset(name: str, values: list[str], choices: tuple[str, ...]) -> None:
    if not values:
        raise AnomaskError(f"parameter {name} is empty; allowed entries: {', '.join(choices)}")
    unknown = [v for v in values if v not in choices]
    if unknown:
        raise AnomaskError(f"parameter {name} has unknown entries {unknown}; allowed: {', '.join(choices)}")


def read_settings(node: Node) -> Settings:
    """Validated read-only settings; a bad value is an AnomaskError naming the parameter."""
    value = {spec.name: node.get_parameter(spec.name).value for spec in SPECS}
    for spec in SPECS:
        if spec.choices:
            _check_choice(spec.name, value[spec.name], spec.choices)
    _check_subset("input_encodings", value["input_encodings"], COLOR_ENCODINGS)
    _check_subset("outputs", value["outputs"], OUTPUTS)
    cameras = tuple(value["cameras"])
    if not cameras or any(not c.strip("/") for c in cameras) or len(set(cameras)) != len(cameras):
        raise AnomaskError(f"parameter cameras={list(cameras)} must list distinct, non-empty namespaces")
    check_color_range(value["anomaly_color_range"])
    return Settings(
        model_path=value["model_path"],
        backend=value["backend"],
        score=value["score"],
        panoptic_method=value["panoptic_method"],
        calibrated_threshold=value["calibrated_threshold"],
        cameras=cameras,
        input_transport=value["input_transport"],
        input_encodings=tuple(value["input_encodings"]),
        input_qos=qos_profile(value["input_reliability"], value["input_depth"]),
        output_qos=qos_profile(value["output_reliability"], value["output_depth"]),
        output_resolution=value["output_resolution"],
        outputs=tuple(value["outputs"]),
        label_encoding=value["label_encoding"],
        limits=ImageLimits(max_pixels=value["max_input_pixels"], max_bytes=value["max_input_bytes"]),
        runtime_threads=value["runtime_threads"],
        max_batch=value["max_batch"],
        diagnostics_period_s=value["diagnostics_period_s"],
    )


def choose_threshold(
    metadata: ModelMetadata, refine: bool, calibrated: str, given: float, name: str = "parameter calibrated_threshold"
) -> tuple[float, str]:
    """The anomaly threshold to use and where it came from, following ``calibrated_threshold``
    (``name``: how the caller's user set it, for the error): ``auto``, a key of
    ``metadata.thresholds`` or empty (the ``given`` number). A key the metadata lacks is an
    AnomaskError."""
    thresholds = metadata.thresholds
    if calibrated == AUTO_THRESHOLD:
        key = threshold_key(metadata.score, refine)
        if key in thresholds:
            return float(thresholds[key]), f"model metadata {key} (calibrated_threshold auto)"
        return given, f"anomaly_threshold (calibrated_threshold auto: the model metadata has no {key})"
    if not calibrated:
        return given, "anomaly_threshold"
    if calibrated not in thresholds:
        known = ", ".join(sorted(thresholds)) or "none"
        raise AnomaskError(f"{name}={calibrated!r} is not in the model's thresholds (it has: {known})")
    return float(thresholds[calibrated]), f"model metadata {calibrated}"


def check_color_range(values: list[float]) -> None:
    if len(values) != 2 or not values[0] < values[1]:
        raise AnomaskError(f"parameter anomaly_color_range={list(values)} must be [low, high] with low < high")
