"""rosbag2 files through ``rosbags`` (no ROS installation needed), with rclpy messages.

Messages are stored as CDR, the bytes rclpy's ``serialize_message`` produces and a raw
subscription receives, so writing, recording and playing never convert a message;
``rosbags`` only reads and writes the container (mcap or sqlite3) and its metadata.yaml.
Bags are metadata version 8 (readable by ``ros2 bag`` from Iron on).
"""

from __future__ import annotations

import importlib
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from builtin_interfaces.msg import Time
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer, WriterError
from rosbags.typesys import Stores, get_typestore

from anomask.errors import AnomaskError

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
BAG_VERSION = 8
TYPESTORE = get_typestore(Stores.ROS2_KILTED)


def stamp(nanoseconds: int) -> Time:
    """``builtin_interfaces/Time`` of a bag timestamp."""
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def header_stamp_ns(data: bytes | memoryview, topic: str) -> int:
    """The ``header.stamp`` of a CDR-serialised message that starts with a
    ``std_msgs/Header`` (Image, CompressedImage), without deserialising the rest."""
    if len(data) < 12 or data[0] != 0 or data[1] not in (0, 1):
        raise AnomaskError(f"topic {topic}: a message is not CDR with a header ({len(data)} bytes)")
    sec, nanosec = struct.unpack_from("<iI" if data[1] == 1 else ">iI", data, 4)
    return sec * 1_000_000_000 + nanosec


def message_class(type_name: str) -> type:
    """The rclpy class of ``pkg/msg/Name``."""
    package, kind, name = type_name.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ImportError, AttributeError) as error:
        raise AnomaskError(f"message type {type_name} is not importable here ({error})") from error


@contextmanager
def bag_writer(path: Path, storage: str) -> Iterator[Writer]:
    """A rosbags Writer for a new bag at ``path``, built in a temporary folder beside it
    and moved into place only when the block finishes: a failed run leaves nothing."""
    path = Path(path)
    if path.exists():
        raise AnomaskError(f"{path} already exists: choose a new bag path")
    if storage not in STORAGES:
        raise AnomaskError(f"unknown bag storage {storage!r}; valid: {', '.join(STORAGES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        # The bag folder keeps its final name inside the staging folder: rosbag2 names the
        # storage file after it (<name>_0.mcap).
        writer = Writer(staging / path.name, version=BAG_VERSION, storage_plugin=STORAGES[storage])
        writer.open()
        try:
            yield writer
        finally:
            writer.close()
        os.replace(staging / path.name, path)
    except WriterError as error:
        raise AnomaskError(f"cannot write bag {path}: {error}") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def add_topic(writer: Writer, topic: str, type_name: str):
    """A connection for ``topic`` with its message definition from the ROS 2 Kilted types."""
    if type_name not in TYPESTORE.fielddefs:
        raise AnomaskError(f"topic {topic}: message type {type_name} has no known definition to store in the bag")
    return writer.add_connection(topic, type_name, typestore=TYPESTORE)


@contextmanager
def open_bag(path: Path) -> Iterator[Reader]:
    """An open rosbags Reader; a missing, truncated or corrupt bag is an AnomaskError."""
    path = Path(path)
    if not (path / "metadata.yaml").is_file():
        raise AnomaskError(f"{path} is not a rosbag2 folder (no metadata.yaml)")
    try:
        reader = Reader(path)
        reader.open()
    except ReaderError as error:
        raise AnomaskError(f"cannot read bag {path} (truncated or corrupt?): {error}") from error
    try:
        yield reader
    finally:
        reader.close()


def connections_for(reader: Reader, topics: list[str] | None, source: Path) -> list:
    """The connections of ``topics`` (all when None); a missing topic is an AnomaskError
    listing the topics the bag has."""
    if not topics:
        return list(reader.connections)
    available = {c.topic: c for c in reader.connections}
    missing = [t for t in topics if t not in available]
    if missing:
        listing = ", ".join(f"{c.topic} ({c.msgtype}, {c.msgcount} msgs)" for c in reader.connections) or "none"
        raise AnomaskError(f"bag {source} has no topic {', '.join(missing)}; it has: {listing}")
    return [available[t] for t in topics]


def read_raw(reader: Reader, connections: list, source: Path) -> Iterator[tuple[object, int, bytes]]:
    """(connection, timestamp ns, CDR bytes) in time order; truncation is an AnomaskError."""
    try:
        yield from reader.messages(connections=connections)
    except (ReaderError, ValueError, KeyError) as error:
        raise AnomaskError(f"cannot read bag {source} (truncated or corrupt?): {error}") from error
