"""``anomask bag write``: image folders (with optional semantic and anomaly ground truth)
-> a rosbag2 of camera topics and ground-truth topics with equal stamps.

Topics per camera ``C``: ``/C/image`` (``sensor_msgs/Image`` rgb8) or
``/C/image/compressed`` (``CompressedImage`` jpeg/png), ``/C/gt/semantic`` and
``/C/gt/anomaly`` (mono8: class ids 0..K-1 / 254 unknown / 255 ignore; 0 inlier,
1 anomaly, 255 ignore) and ``/C/gt/instances`` (16UC1: a distinct id per thing or unknown
instance, 0 none; with semantic it is the panoptic ground truth). Frame ``k`` of every camera is
stamped ``start + k / rate`` (header and bag time), so the node's outputs match their ground
truth by stamp.

Ground truth pairs with an image by name, independent of any dataset reader: the image's
key is its file stem without ``_leftImg8bit``; a label file belongs to the image whose key
is its own stem, or its stem with trailing ``_word`` parts removed (Cityscapes'
``aachen_000000_000019_gtFine_labelTrainIds`` -> ``aachen_000000_000019``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Header

from anomask.errors import AnomaskError
from anomask.images import check_complete, read_image
from anomask_ros.bag.io import add_topic, bag_writer, stamp
from anomask_ros.image_codec import array_to_image

IMAGE_PATTERNS = ("*.png", "*.jpg", "*.jpeg")
IMAGE_SUFFIX = "_leftImg8bit"
ENCODE_EXT = {"jpeg": ".jpg", "png": ".png"}


@dataclass(frozen=True)
class CameraSource:
    name: str
    images: Path
    semantic: Path | None = None
    anomaly: Path | None = None
    instances: Path | None = None


@dataclass(frozen=True)
class WriteOptions:
    rate_hz: float = 10.0
    start_s: float = 0.0
    compression: str | None = None
    """None: raw rgb8; "jpeg" or "png": CompressedImage."""
    jpeg_quality: int = 95
    storage: str = "mcap"
    image_glob: tuple[str, ...] = IMAGE_PATTERNS
    semantic_glob: str = "*.png"
    anomaly_glob: str = "*.png"
    instances_glob: str = "*.png"
    limit: int | None = None


def camera_topics(camera: str, compressed: bool) -> dict[str, str]:
    return {
        "image": f"/{camera}/image" + ("/compressed" if compressed else ""),
        "semantic": f"/{camera}/gt/semantic",
        "anomaly": f"/{camera}/gt/anomaly",
        "instances": f"/{camera}/gt/instances",
    }


GT_KINDS = {"semantic": "mono8", "anomaly": "mono8", "instances": "16UC1"}
"""Ground-truth topics and their encodings."""


def _files(folder: Path, patterns: tuple[str, ...] | str, what: str) -> list[Path]:
    if not folder.is_dir():
        raise AnomaskError(f"{what} folder not found: {folder}")
    patterns = (patterns,) if isinstance(patterns, str) else patterns
    files = sorted({p for pattern in patterns for p in folder.rglob(pattern) if p.is_file()})
    if not files:
        raise AnomaskError(f"no {what} files matching {', '.join(patterns)} under {folder}")
    return files


def _image_key(path: Path) -> str:
    return path.stem.removesuffix(IMAGE_SUFFIX)


def pair_labels(images: list[Path], labels: list[Path], what: str) -> list[Path]:
    """For each image, its label file (see the module docstring); every image must have
    exactly one."""
    by_key = {_image_key(p): p for p in images}
    if len(by_key) != len(images):
        raise AnomaskError(f"image names are not unique after removing {IMAGE_SUFFIX}: cannot pair {what} ground truth")
    found: dict[Path, Path] = {}
    for label in labels:
        key = label.stem
        while key and key not in by_key:
            key = key.rpartition("_")[0]
        if not key:
            continue
        image = by_key[key]
        if image in found:
            raise AnomaskError(
                f"{what} ground truth {found[image].name} and {label.name} both match {image.name}: narrow the "
                f"{what} glob"
            )
        found[image] = label
    missing = [p for p in images if p not in found]
    if missing:
        raise AnomaskError(f"{len(missing)} of {len(images)} images have no {what} ground truth, e.g. {missing[0]}")
    return [found[p] for p in images]


def _read_label(path: Path, kind: str) -> np.ndarray:
    """A one-channel label: 8-bit for semantic and anomaly, 8- or 16-bit for instances."""
    label = read_image(path, cv2.IMREAD_UNCHANGED)
    allowed = (np.uint8, np.uint16) if kind == "instances" else (np.uint8,)
    if label.ndim != 2 or label.dtype not in allowed:
        bits = "8- or 16-bit" if kind == "instances" else "8-bit"
        raise AnomaskError(
            f"{kind} label {path} must be a one-channel {bits} image, not {label.dtype} {list(label.shape)}"
        )
    return label.astype(np.uint16) if kind == "instances" else label


def _image_message(path: Path, header: Header, options: WriteOptions) -> bytes:
    compression = options.compression
    if compression is None:
        return serialize_message(array_to_image(read_image(path, cv2.IMREAD_COLOR_RGB), "rgb8", header))
    if (
        path.suffix.lower() in (".jpg", ".jpeg")
        and compression == "jpeg"
        or path.suffix.lower() == ".png"
        and compression == "png"
    ):
        data = path.read_bytes()  # already in the wanted format: stored as is, when complete
        check_complete(data, path)
    else:
        params = [cv2.IMWRITE_JPEG_QUALITY, options.jpeg_quality] if compression == "jpeg" else []
        data = cv2.imencode(ENCODE_EXT[compression], read_image(path, cv2.IMREAD_COLOR), params)[1].tobytes()
    return serialize_message(CompressedImage(header=header, format=compression, data=data))


def write_bag(out: Path, cameras: list[CameraSource], options: WriteOptions) -> dict[str, int]:
    """Writes the bag; returns messages per topic."""
    if options.rate_hz <= 0:
        raise AnomaskError(f"rate must be positive, got {options.rate_hz}")
    if options.compression not in (None, *ENCODE_EXT):
        raise AnomaskError(f"unknown compression {options.compression!r}; valid: {', '.join(ENCODE_EXT)}")
    if len({c.name for c in cameras}) != len(cameras):
        raise AnomaskError(f"camera names must be distinct: {[c.name for c in cameras]}")
    plans = []
    for camera in cameras:
        images = _files(camera.images, options.image_glob, f"camera {camera.name} image")[: options.limit]
        globs = {
            "semantic": options.semantic_glob,
            "anomaly": options.anomaly_glob,
            "instances": options.instances_glob,
        }
        labels = {
            kind: pair_labels(images, _files(getattr(camera, kind), globs[kind], kind), kind)
            for kind in GT_KINDS
            if getattr(camera, kind) is not None
        }
        plans.append((camera, images, labels))
    counts: dict[str, int] = {}
    period_ns = round(1e9 / options.rate_hz)
    start_ns = round(options.start_s * 1e9)
    with bag_writer(out, options.storage) as writer:
        connections = {}
        for camera, _, labels in plans:
            topics = camera_topics(camera.name, options.compression is not None)
            image_type = "sensor_msgs/msg/CompressedImage" if options.compression else "sensor_msgs/msg/Image"
            connections[(camera.name, "image")] = add_topic(writer, topics["image"], image_type)
            for kind in labels:
                connections[(camera.name, kind)] = add_topic(writer, topics[kind], "sensor_msgs/msg/Image")
        frames = max(len(images) for _, images, _ in plans)
        for index in range(frames):
            stamp_ns = start_ns + index * period_ns
            for camera, images, labels in plans:
                if index >= len(images):
                    continue
                header = Header(stamp=stamp(stamp_ns), frame_id=camera.name)
                records = [("image", _image_message(images[index], header, options))]
                for kind, files in labels.items():
                    label = _read_label(files[index], kind)
                    records.append((kind, serialize_message(array_to_image(label, GT_KINDS[kind], header))))
                for kind, data in records:
                    connection = connections[(camera.name, kind)]
                    writer.write(connection, stamp_ns, data)
                    counts[connection.topic] = counts.get(connection.topic, 0) + 1
    return counts
