"""The frames of a bag written by ``anomask bag write``: per camera and stamp, the camera
message and the ground-truth maps.

Cameras are found from their topics (``/C/image`` or ``/C/image/compressed``); ground
truth is whatever of ``/C/gt/semantic``, ``/C/gt/anomaly`` and ``/C/gt/instances`` the bag
has. Messages of one frame share their header stamp (which is also their bag time), so a
frame is complete as soon as its camera's next stamp appears: one frame per camera is held
at a time, whatever the bag's length.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import Reader
from sensor_msgs.msg import CompressedImage, Image

from anomask.errors import AnomaskError
from anomask_ros.bag.io import connections_for, header_stamp_ns, read_raw
from anomask_ros.bag.write import GT_KINDS, camera_topics
from anomask_ros.image_codec import image_view

_SUFFIXES = (("/image/compressed", True), ("/image", False))


@dataclass(frozen=True)
class CameraTopics:
    camera: str
    image: str
    compressed: bool
    truth: dict[str, str]
    """Ground-truth kind (semantic, anomaly, instances) -> topic, those the bag has."""

    @property
    def message_type(self) -> type:
        return CompressedImage if self.compressed else Image


@dataclass
class BagFrame:
    camera: str
    stamp_ns: int
    image: bytes | None = None
    """The camera message's CDR bytes (when asked for)."""
    has_image: bool = False
    truth: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.camera}@{self.stamp_ns / 1e9:.3f}s"


def _topic_listing(reader: Reader) -> str:
    return ", ".join(f"{c.topic} ({c.msgtype}, {c.msgcount} msgs)" for c in reader.connections) or "none"


def find_cameras(reader: Reader, source: Path, cameras: list[str] | None = None) -> dict[str, CameraTopics]:
    """The bag's cameras (all, or ``cameras``); an error listing the topics when a camera
    has no image topic."""
    topics = {c.topic for c in reader.connections}
    found: dict[str, CameraTopics] = {}
    for topic in sorted(topics):
        for suffix, compressed in _SUFFIXES:
            if topic.endswith(suffix):
                camera = topic[: -len(suffix)].lstrip("/")
                if camera and (camera not in found or found[camera].compressed):  # raw wins over compressed
                    gt = camera_topics(camera, compressed)
                    truth = {kind: gt[kind] for kind in GT_KINDS if gt[kind] in topics}
                    found[camera] = CameraTopics(camera, topic, compressed, truth)
                break
    if cameras:
        missing = [c for c in cameras if c not in found]
        if missing:
            raise AnomaskError(
                f"bag {source} has no image topic for camera {', '.join(missing)} (/C/image or "
                f"/C/image/compressed); it has: {_topic_listing(reader)}"
            )
        found = {c: found[c] for c in cameras}
    if not found:
        raise AnomaskError(
            f"bag {source} has no camera topic (/C/image or /C/image/compressed); it has: {_topic_listing(reader)}"
        )
    return found


def read_frames(
    reader: Reader, source: Path, cameras: dict[str, CameraTopics], with_images: bool
) -> Iterator[BagFrame]:
    """The bag's frames in bag-time order (per camera: by stamp)."""
    kind_of: dict[str, tuple[str, str]] = {}
    for topics in cameras.values():
        kind_of[topics.image] = (topics.camera, "image")
        for kind, topic in topics.truth.items():
            kind_of[topic] = (topics.camera, kind)
    current: dict[str, BagFrame] = {}
    for connection, _, data in read_raw(reader, connections_for(reader, list(kind_of), source), source):
        camera, kind = kind_of[connection.topic]
        stamp = header_stamp_ns(data, connection.topic)
        frame = current.get(camera)
        if frame is None or frame.stamp_ns != stamp:
            if frame is not None:
                yield frame
            frame = current[camera] = BagFrame(camera, stamp)
        if kind == "image":
            frame.has_image = True
            frame.image = bytes(data) if with_images else None
        else:
            frame.truth[kind] = image_view(deserialize_message(bytes(data), Image))
    yield from sorted(current.values(), key=lambda f: f.stamp_ns)
