"""``anomask bag write``: round trip (identical images and stamps, mcap and sqlite3), pairing
of ground truth by name, and clear errors for bad input and bad bags."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from rclpy.serialization import deserialize_message

from anomask.cli import main as anomask_main
from anomask.errors import AnomaskError
from anomask_ros.bag.io import connections_for, message_class, open_bag, read_raw
from anomask_ros.bag.write import CameraSource, WriteOptions, write_bag
from anomask_ros.image_codec import decode_compressed, image_view

RNG = np.random.default_rng(11)


def read_bag(path: Path, topics: list[str] | None = None) -> dict[str, list[tuple[int, object]]]:
    """topic -> [(bag timestamp ns, rclpy message)]."""
    out: dict[str, list] = {}
    with open_bag(path) as reader:
        connections = connections_for(reader, topics, path)
        for connection, timestamp, data in read_raw(reader, connections, path):
            out.setdefault(connection.topic, []).append(
                (timestamp, deserialize_message(data, message_class(connection.msgtype)))
            )
    return out


def stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


@pytest.fixture(scope="module")
def cityscapes(tmp_path_factory) -> tuple[Path, list[np.ndarray], list[np.ndarray]]:
    """leftImg8bit/val/<city>/*_leftImg8bit.png with gtFine labelTrainIds, labelIds and
    color distractors: 3 frames in two cities."""
    root = tmp_path_factory.mktemp("cityscapes")
    images, labels = [], []
    for city, frame in [("aachen", 19), ("aachen", 20), ("bonn", 7)]:
        name = f"{city}_000000_{frame:06d}"
        image = RNG.integers(0, 256, (12, 20, 3), dtype=np.uint8)
        label = RNG.integers(0, 19, (12, 20), dtype=np.uint8)
        label[0, :3] = 255
        for folder in ("leftImg8bit", "gtFine"):
            (root / folder / "val" / city).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(
            str(root / "leftImg8bit" / "val" / city / f"{name}_leftImg8bit.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        )
        cv2.imwrite(str(root / "gtFine" / "val" / city / f"{name}_gtFine_labelTrainIds.png"), label)
        cv2.imwrite(str(root / "gtFine" / "val" / city / f"{name}_gtFine_labelIds.png"), label + 7)
        cv2.imwrite(str(root / "gtFine" / "val" / city / f"{name}_gtFine_color.png"), image)
        images.append(image)
        labels.append(label)
    return root, images, labels


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_round_trip_cityscapes_raw(cityscapes, tmp_path: Path, storage: str) -> None:
    root, images, labels = cityscapes
    out = tmp_path / "drive"
    code = anomask_main(
        ["bag", "write", str(out), "--cityscapes", str(root), "--rate", "4", "--start", "100", "--storage", storage]
    )
    assert code == 0
    assert not [p for p in tmp_path.iterdir() if p.name != "drive"], "staging folder left behind"
    bag = read_bag(out)
    assert set(bag) == {"/camera/image", "/camera/gt/semantic"}
    expected_ns = [100_000_000_000 + k * 250_000_000 for k in range(3)]
    for topic in bag:
        assert [t for t, _ in bag[topic]] == expected_ns
        assert [stamp_ns(m) for _, m in bag[topic]] == expected_ns
        assert all(m.header.frame_id == "camera" for _, m in bag[topic])
    for (_, image_msg), (_, label_msg), image, label in zip(
        bag["/camera/image"], bag["/camera/gt/semantic"], images, labels
    ):
        assert image_msg.encoding == "rgb8" and label_msg.encoding == "mono8"
        np.testing.assert_array_equal(image_view(image_msg), image)
        np.testing.assert_array_equal(image_view(label_msg), label)  # labelTrainIds, not labelIds


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_round_trip_two_compressed_cameras_with_anomaly_truth(tmp_path: Path, storage: str) -> None:
    cameras = []
    truth = {}
    for camera, count in (("front", 3), ("rear", 2)):
        images_dir, masks_dir = tmp_path / camera / "images", tmp_path / camera / "labels_masks"
        images_dir.mkdir(parents=True)
        masks_dir.mkdir(parents=True)
        truth[camera] = []
        for i in range(count):
            image = RNG.integers(0, 256, (10, 14, 3), dtype=np.uint8)
            mask = RNG.choice(np.array([0, 1, 255], np.uint8), size=(10, 14))
            cv2.imwrite(str(images_dir / f"{i:03d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(masks_dir / f"{i:03d}.png"), mask)
            truth[camera].append((image, mask))
        cameras.append(CameraSource(camera, images_dir, anomaly=masks_dir))
    counts = write_bag(tmp_path / "bag", cameras, WriteOptions(rate_hz=10, compression="png", storage=storage))
    assert counts == {
        "/front/image/compressed": 3,
        "/front/gt/anomaly": 3,
        "/rear/image/compressed": 2,
        "/rear/gt/anomaly": 2,
    }
    bag = read_bag(tmp_path / "bag")
    for camera, frames in truth.items():
        compressed, masks = bag[f"/{camera}/image/compressed"], bag[f"/{camera}/gt/anomaly"]
        assert [t for t, _ in compressed] == [t for t, _ in masks] == [k * 100_000_000 for k in range(len(frames))]
        for (_, msg), (_, mask_msg), (image, mask) in zip(compressed, masks, frames):
            assert msg.format == "png" and stamp_ns(msg) == stamp_ns(mask_msg)
            np.testing.assert_array_equal(decode_compressed(msg, "RGB"), image)
            np.testing.assert_array_equal(image_view(mask_msg), mask)


def test_bad_inputs_are_clear_errors(cityscapes, tmp_path: Path, capsys) -> None:
    root, _, _ = cityscapes
    images = root / "leftImg8bit" / "val"
    gt = root / "gtFine" / "val"
    with pytest.raises(AnomaskError, match="both match .*narrow the semantic glob"):
        write_bag(tmp_path / "a", [CameraSource("c", images, semantic=gt)], WriteOptions())
    with pytest.raises(AnomaskError, match="1 of 3 images have no semantic ground truth"):
        write_bag(
            tmp_path / "b",
            [CameraSource("c", images, semantic=gt / "aachen")],
            WriteOptions(semantic_glob="*labelTrainIds.png"),
        )
    with pytest.raises(AnomaskError, match="image folder not found"):
        write_bag(tmp_path / "c", [CameraSource("c", tmp_path / "nowhere")], WriteOptions())
    assert not list(tmp_path.iterdir()), "a failed write left files"
    write_bag(tmp_path / "d", [CameraSource("c", images)], WriteOptions(limit=1))
    with pytest.raises(AnomaskError, match="already exists"):
        write_bag(tmp_path / "d", [CameraSource("c", images)], WriteOptions())
    assert (
        anomask_main(
            ["bag", "write", str(tmp_path / "e"), "--images", str(images), "--semantic", str(gt), "--semantic", str(gt)]
        )
        == 2
    )
    assert "--semantic must be given once per --images" in capsys.readouterr().err


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bad_bags_are_clear_errors(cityscapes, tmp_path: Path, storage: str) -> None:
    root, _, _ = cityscapes
    bag = tmp_path / "bag"
    write_bag(bag, [CameraSource("front", root / "leftImg8bit" / "val")], WriteOptions(storage=storage))
    with pytest.raises(
        AnomaskError, match=r"has no topic /camera/image; it has: /front/image \(sensor_msgs/msg/Image, 3 msgs\)"
    ):
        read_bag(bag, ["/camera/image"])
    data_file = next(p for p in bag.iterdir() if p.name != "metadata.yaml")
    data_file.write_bytes(data_file.read_bytes()[: data_file.stat().st_size // 2])
    with pytest.raises(AnomaskError, match="truncated or corrupt"):
        read_bag(bag)
    with pytest.raises(AnomaskError, match="not a rosbag2 folder"):
        read_bag(tmp_path)


@pytest.mark.parametrize("compressed", ["jpeg", "png", None])
def test_truncated_image_is_refused_naming_the_file(tmp_path: Path, compressed: str | None, capfd) -> None:
    """Issue 17: ``--compressed jpeg`` stored a truncated JPEG as is; decoding it printed only
    libjpeg's warning naming no file."""
    images = tmp_path / "images"
    images.mkdir()
    data = cv2.imencode(".jpg", RNG.integers(0, 256, (12, 20, 3), dtype=np.uint8))[1].tobytes()
    (images / "a.jpg").write_bytes(data[: len(data) // 2])
    argv = ["bag", "write", str(tmp_path / "bag"), "--images", str(images)]
    assert anomask_main([*argv, "--compressed", compressed] if compressed else argv) == 2
    assert capfd.readouterr().err.splitlines() == [
        f"anomask: error: {images / 'a.jpg'}: truncated JPEG ({len(data) // 2} bytes, no end-of-image marker), refused"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"], "a failed write left files"
