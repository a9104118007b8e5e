"""``anomask bag eval``: the node's recorded outputs (or the runtime run offline) against the
ground truth of a bag written by ``anomask bag write``.

Replay mode (``evaluate_replay``) reads two bags: the played bag (camera frames + ground
truth) and the recording of the node's outputs (``anomask bag record`` of ``/C/semantic``,
``/C/anomaly``, ``/C/open_set``, ``/C/panoptic``, optionally the played ``/C/image`` topics,
``/clock`` and ``/diagnostics``). Outputs are matched to frames by header stamp. Per frame:

* end-to-end latency = receive time of the frame's last output - receive time of its camera
  frame, both on the recorder's clock (needs the camera topic in the recording);
* output age = the node-side clock at the last output's receipt - header stamp: the last
  ``/clock`` value received by then when ``/clock`` was recorded (bag replay with
  ``use_sim_time``; resolution one ``/clock`` period), else the receive time itself (live
  cameras stamp with the system clock).

Offline mode (``evaluate_offline``) reads the played bag alone and runs each camera frame
through the node's own calls, without ROS: ``image_codec.decode`` -> ``Segmenter.run`` ->
``maps_at`` (what ``output_resolution: input`` publishes), so both modes give the same
metrics on the same frames.

Replay mode with an offline model (``OfflineModel``, ``anomask bag eval --recording REC
--model M --compare``) scores the node and the model run here on the SAME frames: only the
frames the node answered, on both sides; the frames it dropped are counted on their own. Each
compared frame's maps are checked for equality (identical on the same backend and thread
count: the node's frame path is ``Segmenter.run`` too).

Outputs travel one frame at a time: per camera the recorded outputs are consumed in stamp
order (the node publishes each camera's frames in order), and only outputs not yet matched
are held.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image

from anomask.errors import AnomaskError
from anomask_ros.bag.frames import BagFrame, CameraTopics, find_cameras, read_frames
from anomask_ros.bag.io import connections_for, header_stamp_ns, open_bag, read_raw
from anomask_ros.bag.metrics import QualityMetrics, ReplayCounts
from anomask_ros.diagnostics import task_of
from anomask_ros.image_codec import ImageError, decode, image_view
from anomask_ros.outputs import FrameOutputs, maps_at
from anomask_ros.segmenter import Segmenter

EVAL_OUTPUTS = ("semantic", "anomaly", "open_set", "panoptic")
"""The node outputs an evaluation reads."""


def output_topic(namespace: str, camera: str, name: str) -> str:
    """The node's output topic: ``<namespace>/<camera>/<name>`` (absolute)."""
    return "/" + "/".join(part.strip("/") for part in (namespace, camera, name) if part.strip("/"))


def needed_outputs(truth_kinds: set[str]) -> tuple[str, ...]:
    """Outputs the metrics of this ground truth need; ``semantic`` always (it counts frames out)."""
    needed = {"semantic"}
    if "anomaly" in truth_kinds:
        needed.add("anomaly")
    if "semantic" in truth_kinds:
        needed.add("open_set")
        if "instances" in truth_kinds:
            needed.add("panoptic")
    return tuple(name for name in EVAL_OUTPUTS if name in needed)


class RecordedOutputs:
    """The recorded output messages of one recording, taken frame by frame."""

    def __init__(self, reader, source: Path, topics: dict[str, tuple[str, str]]) -> None:
        self._messages = read_raw(reader, connections_for(reader, list(topics), source), source)
        self._topics = topics
        self._pending: dict[tuple[str, int], dict[str, tuple[int, bytes]]] = {}
        self._latest: dict[tuple[str, str], int] = {}
        self._names: dict[str, set[str]] = {}
        for camera, name in topics.values():
            self._names.setdefault(camera, set()).add(name)
        self.unmatched = 0

    def _read_one(self) -> bool:
        try:
            connection, received, data = next(self._messages)
        except StopIteration:
            return False
        camera, name = self._topics[connection.topic]
        stamp = header_stamp_ns(data, connection.topic)
        self._pending.setdefault((camera, stamp), {})[name] = (received, bytes(data))
        self._latest[(camera, name)] = stamp
        return True

    def take(self, camera: str, stamp: int) -> dict[str, tuple[int, bytes]] | None:
        """The frame's outputs (name -> (receive time ns, CDR)), or None when the recording
        has moved past it on some topic without it (the node dropped the frame)."""
        for key in [k for k in self._pending if k[0] == camera and k[1] < stamp]:
            del self._pending[key]  # outputs of frames the played bag does not have
            self.unmatched += 1
        names = self._names[camera]
        while True:
            if set(self._pending.get((camera, stamp), ())) == names:
                return self._pending.pop((camera, stamp))
            passed = all(self._latest.get((camera, n), -1) >= stamp for n in names)
            if passed or not self._read_one():
                self._pending.pop((camera, stamp), None)
                return None


def _maps(messages: dict[str, tuple[int, bytes]]) -> FrameOutputs:
    arrays = {name: image_view(deserialize_message(data, Image)) for name, (_, data) in messages.items()}
    return FrameOutputs(
        semantic=arrays["semantic"],
        anomaly=arrays.get("anomaly"),
        open_set=arrays.get("open_set"),
        panoptic=arrays.get("panoptic"),
    )


def _truth_size(frame: BagFrame) -> tuple[int, int] | None:
    return next((tuple(t.shape[:2]) for t in frame.truth.values()), None)


def _side_topics(
    reader, source: Path, cameras: dict[str, CameraTopics]
) -> tuple[dict[tuple[str, int], int], list[tuple[int, int]], bytes | None]:
    """From the recording: camera-frame receive times by (camera, stamp), the /clock
    samples (receive ns, clock ns) and the last /diagnostics message."""
    available = {c.topic for c in reader.connections}
    image_topics = {t.image: t.camera for t in cameras.values() if t.image in available}
    wanted = [*image_topics, *(t for t in ("/clock", "/diagnostics") if t in available)]
    received: dict[tuple[str, int], int] = {}
    clock: list[tuple[int, int]] = []
    diagnostics = None
    if not wanted:
        return received, clock, diagnostics
    for connection, when, data in read_raw(reader, connections_for(reader, wanted, source), source):
        if connection.topic == "/clock":
            # rosgraph_msgs/Clock is a bare builtin_interfaces/Time: read like a header stamp
            clock.append((when, header_stamp_ns(data, "/clock")))
        elif connection.topic == "/diagnostics":
            diagnostics = bytes(data)
        else:
            received.setdefault((image_topics[connection.topic], header_stamp_ns(data, connection.topic)), when)
    clock.sort()
    return received, clock, diagnostics


def _diagnostics_summary(data: bytes | None) -> dict | None:
    """The node's last /diagnostics: every status's level, message and values, by task
    (``inference``, ``camera C``: the name without the node's)."""
    if data is None:
        return None
    from diagnostic_msgs.msg import DiagnosticArray

    array = deserialize_message(data, DiagnosticArray)
    return {
        task_of(s.name): {
            "level": s.level[0] if isinstance(s.level, bytes) else int(s.level),
            "message": s.message,
            "values": {kv.key: kv.value for kv in s.values},
        }
        for s in array.status
    }


@dataclass(frozen=True)
class OfflineModel:
    """The model run here beside a replay, as the node ran it."""

    segmenter: Segmenter
    threshold: float
    panoptic_method: str = "eam"

    def maps(self, frame: BagFrame, message_type: type) -> FrameOutputs:
        """The frame's maps at its own size, by the node's calls (ImageError when undecodable)."""
        method = self.panoptic_method if self.segmenter.has_panoptic else None
        decoded = decode(deserialize_message(frame.image, message_type), self.segmenter.input_format)
        (outputs,), _ = self.segmenter.run([decoded], self.threshold, method)
        return maps_at(outputs, decoded.size)


class FrameComparison:
    """Per-frame equality of the node's maps and the offline model's, on the compared frames."""

    def __init__(self) -> None:
        self.frames = 0
        self.differing: dict[str, list[str]] = {}
        self.anomaly_max_abs_diff = 0.0

    def add(self, node: FrameOutputs, offline: FrameOutputs, name: str) -> None:
        self.frames += 1
        node = maps_at(node, offline.semantic.shape[:2])
        differs = []
        for output in ("semantic", "anomaly", "open_set", "panoptic"):
            mine, theirs = getattr(node, output), getattr(offline, output)
            if mine is None or theirs is None:
                continue
            if output == "anomaly":
                diff = np.abs(mine.astype(np.float64) - theirs.astype(np.float64))
                self.anomaly_max_abs_diff = max(self.anomaly_max_abs_diff, float(diff.max(initial=0.0)))
            if not np.array_equal(mine, theirs):
                differs.append(output)
        if differs:
            self.differing[name] = differs

    def to_dict(self, offline_backend: str, node_backend: str | None) -> dict:
        return {
            "frames": self.frames,
            "equal_frames": self.frames - len(self.differing),
            "differing": self.differing,
            "anomaly_max_abs_diff": self.anomaly_max_abs_diff,
            "offline_backend": offline_backend,
            "node_backend": node_backend,
            "same_backend": node_backend == offline_backend,
        }


def _node_backend(diagnostics: dict | None) -> str | None:
    """The backend the node reported in /diagnostics (its inference status)."""
    for status in (diagnostics or {}).values():
        if "backend" in status["values"]:
            return status["values"]["backend"]
    return None


def evaluate_replay(
    bag: Path,
    recording: Path,
    metadata,
    cameras: list[str] | None = None,
    namespace: str = "",
    offline: OfflineModel | None = None,
) -> dict:
    """Metrics of the node's recorded outputs against ``bag``'s ground truth; ``metadata``
    (classes) may be None for a bag without ground truth. With ``offline``, the same frames
    (those the node answered) are also run through it: ``offline_metrics`` and the per-frame
    ``comparison``."""
    counts = ReplayCounts()
    with open_bag(bag) as reader:
        topics = find_cameras(reader, Path(bag), cameras)
    truth_kinds = {kind for t in topics.values() for kind in t.truth}
    if truth_kinds and metadata is None:
        raise AnomaskError(
            f"bag {bag} has ground truth ({', '.join(sorted(truth_kinds))}): pass the model (--model) for its classes"
        )
    names = needed_outputs(truth_kinds)
    if offline is not None:
        with open_bag(recording) as out_reader:
            recorded = {c.topic for c in out_reader.connections}
        names = tuple(
            n for n in EVAL_OUTPUTS if n in names or all(output_topic(namespace, c, n) in recorded for c in topics)
        )
    output_topics = {output_topic(namespace, c, n): (c, n) for c in topics for n in names}
    metrics = QualityMetrics(metadata) if truth_kinds else None
    offline_metrics = QualityMetrics(metadata) if truth_kinds and offline is not None else None
    comparison = FrameComparison()
    try:
        with open_bag(recording) as side_reader:
            received, clock, diagnostics = _side_topics(side_reader, Path(recording), topics)
        clock_times = [when for when, _ in clock]
        with open_bag(bag) as reader, open_bag(recording) as out_reader:
            outputs = RecordedOutputs(out_reader, Path(recording), output_topics)
            for frame in read_frames(reader, Path(bag), topics, with_images=offline is not None):
                if not frame.has_image:
                    continue
                counts.frame_in(frame.camera)
                messages = outputs.take(frame.camera, frame.stamp_ns)
                if messages is None:
                    counts.drop(frame.camera, "no output")
                    continue
                last = max(when for when, _ in messages.values())
                sent = received.get((frame.camera, frame.stamp_ns))
                if clock:
                    index = bisect.bisect_right(clock_times, last) - 1
                    age = (clock[index][1] - frame.stamp_ns) / 1e6 if index >= 0 else None
                else:
                    age = (last - frame.stamp_ns) / 1e6
                counts.frame_out(
                    frame.camera, frame.stamp_ns, latency_ms=None if sent is None else (last - sent) / 1e6, age_ms=age
                )
                size = _truth_size(frame)
                node_maps = _maps(messages)
                if metrics is not None and size is not None:
                    metrics.add(maps_at(node_maps, size), frame.truth, frame.name)
                if offline is not None:
                    offline_maps = offline.maps(frame, topics[frame.camera].message_type)
                    comparison.add(node_maps, offline_maps, frame.name)
                    if offline_metrics is not None and size is not None:
                        offline_metrics.add(maps_at(offline_maps, size), frame.truth, frame.name)
        result = {
            "mode": "replay",
            "bag": str(bag),
            "recording": str(recording),
            "cameras": list(topics),
            **counts.to_dict(),
        }
        result["unmatched_outputs"] = outputs.unmatched
        result["node_diagnostics"] = _diagnostics_summary(diagnostics)
        result["per_frame"] = counts.per_frame
        result["metrics"] = metrics.result() if metrics else None
        if offline is not None:
            result["offline_metrics"] = offline_metrics.result() if offline_metrics else None
            result["comparison"] = comparison.to_dict(
                offline.segmenter.backend, _node_backend(result["node_diagnostics"])
            )
        return result
    finally:
        for accumulator in (metrics, offline_metrics):
            if accumulator is not None:
                accumulator.close()


def offline_frames(
    bag: Path,
    segmenter: Segmenter,
    threshold: float,
    panoptic_method: str,
    cameras: list[str] | None,
    counts: ReplayCounts,
) -> Iterator[tuple[BagFrame, FrameOutputs]]:
    """Each decodable camera frame of ``bag`` with its maps at the frame's size, computed by
    the node's calls (``decode`` with the node's default limits and encodings,
    ``Segmenter.run``, ``output_resolution: input``); undecodable frames are counted as
    dropped with the node's reasons. A model without panoptic intermediates gives no
    panoptic map (the node refuses the panoptic output for it)."""
    model = OfflineModel(segmenter, threshold, panoptic_method)
    with open_bag(bag) as reader:
        topics = find_cameras(reader, Path(bag), cameras)
        for frame in read_frames(reader, Path(bag), topics, with_images=True):
            if not frame.has_image:
                continue
            counts.frame_in(frame.camera)
            start = time.perf_counter()
            try:
                maps = model.maps(frame, topics[frame.camera].message_type)
            except ImageError as error:
                counts.drop(frame.camera, error.reason)
                continue
            counts.frame_out(frame.camera, frame.stamp_ns, processing_ms=(time.perf_counter() - start) * 1e3)
            yield frame, maps


def evaluate_offline(
    bag: Path, segmenter: Segmenter, threshold: float, panoptic_method: str = "eam", cameras: list[str] | None = None
) -> dict:
    """Metrics of ``segmenter`` run directly on ``bag``'s frames (no ROS)."""
    counts = ReplayCounts()
    metrics = QualityMetrics(segmenter.metadata)
    try:
        for frame, maps in offline_frames(bag, segmenter, threshold, panoptic_method, cameras, counts):
            size = _truth_size(frame)
            if size is not None:
                metrics.add(maps_at(maps, size), frame.truth, frame.name)
        has_truth = any(metrics.frames.values())
        result = {"mode": "offline", "bag": str(bag), "cameras": list(counts.frames_in), **counts.to_dict()}
        result["threshold"] = threshold
        result["panoptic_method"] = panoptic_method
        result["per_frame"] = counts.per_frame
        result["metrics"] = metrics.result() if has_truth else None
        return result
    finally:
        metrics.close()


def model_metadata(path: Path):
    """A model file's metadata without running it: ONNX metadata_props, an engine's
    sidecar, or a checkpoint's header."""
    suffix = Path(path).suffix.lower()
    if not Path(path).is_file():
        raise AnomaskError(f"model file not found: {path}")
    if suffix == ".onnx":
        from anomask.export.onnx_export import read_export_info_file

        return read_export_info_file(path).metadata
    if suffix in (".engine", ".plan"):
        from anomask.export.runtime_tensorrt import open_engine_info

        return open_engine_info(path)[0].metadata
    from anomask.models.checkpoint import load_metadata

    return load_metadata(path)
