"""``OutputBuilder.messages``: every map resized once, straight into a message buffer that is
reused frame after frame; each call's messages hold that frame's maps, at any size."""

import numpy as np
from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from anomask.export.frames import resize_map
from anomask.models.config import ModelConfig
from anomask.models.metadata import ClassInfo, ModelMetadata
from anomask_ros.image_codec import image_view
from anomask_ros.outputs import FrameOutputs, OutputBuilder

METADATA = ModelMetadata(
    classes=tuple(ClassInfo(f"c{i}", i == 2, (40 * i, 80, 120)) for i in range(3)),
    architecture=ModelConfig.small(num_classes=3),
)
NAMES = ("semantic", "anomaly", "anomaly_mask", "open_set", "panoptic")


def maps(seed: int) -> FrameOutputs:
    rng = np.random.default_rng(seed)
    return FrameOutputs(
        semantic=rng.integers(0, 3, (8, 12), dtype=np.uint8),
        anomaly=rng.random((8, 12), dtype=np.float32),
        open_set=rng.integers(0, 3, (8, 12), dtype=np.uint8),
        panoptic=rng.integers(0, 3000, (8, 12)).astype(np.int32),
    )


def test_each_frame_gets_its_own_maps_through_reused_buffers() -> None:
    builder = OutputBuilder(METADATA, NAMES, "16UC1")
    for seed, size in ((0, (21, 30)), (1, (21, 30)), (2, (8, 12)), (3, (21, 30))):
        frame = maps(seed)
        header = Header(stamp=Time(sec=seed), frame_id=f"f{seed}")
        messages, share = builder.messages(frame, size, header, 0.5, (0.0, 1.0))
        assert set(messages) == set(NAMES)
        assert all(m.header.stamp.sec == seed and m.header.frame_id == f"f{seed}" for m in messages.values())
        anomaly = resize_map(frame.anomaly, size, ids=False)
        np.testing.assert_array_equal(image_view(messages["anomaly"]), anomaly)
        np.testing.assert_array_equal(image_view(messages["anomaly_mask"]), np.where(anomaly > 0.5, 255, 0))
        assert share == np.count_nonzero(anomaly > 0.5) / anomaly.size
        for name in ("semantic", "open_set", "panoptic"):
            np.testing.assert_array_equal(image_view(messages[name]), resize_map(getattr(frame, name), size, ids=True))
        assert messages["semantic"].encoding == "16UC1" and messages["panoptic"].encoding == "32SC1"
