"""A test double of ``anomask.export.runtime.Runtime`` for the node's unit tests.

Deterministic outputs computed from the frame, so a test can predict every published
pixel: semantic = R // 64 (classes 0..3; 2 and 3 are things), anomaly = G / 255,
open_set = 254 where anomaly > threshold else semantic, panoptic = class*1000 + 1 for
things, class for stuff (``fake_panoptic``, the stand-in of ``panoptic_images``; the panoptic
intermediates the runtime returns are zeros it does not read, and ``panoptic=False`` makes
a runtime without them, like a per-pixel model's). The integration tests with the real ONNX
Runtime backend are in test_node_process.py.
"""

from __future__ import annotations

import time

import numpy as np

from anomask.export.export_info import PANOPTIC_OUTPUTS, REQUIRED_OUTPUTS, ExportInfo, ExportSettings
from anomask.models.config import ModelConfig
from anomask.models.metadata import ClassInfo, ModelMetadata
from anomask_ros.segmenter import Segmenter

METADATA = ModelMetadata(
    classes=tuple(ClassInfo(f"class{i}", i >= 2, (60 * i, 255 - 60 * i, 30)) for i in range(4)),
    architecture=ModelConfig.small(num_classes=4),
    score="eam",
    thresholds={"eam@tpr95": 0.25},
)


class FakeRuntime:
    backend = "fake"

    def __init__(
        self, input_size: tuple[int, int] = (16, 24), input_format: str = "RGB", max_batch: int = 4, panoptic=True
    ) -> None:
        self.output_names = (*REQUIRED_OUTPUTS, *(PANOPTIC_OUTPUTS if panoptic else ()))
        self.info = ExportInfo(METADATA, ExportSettings(input_size, input_size, input_size), self.output_names)
        self.metadata = METADATA
        self.input_size = input_size
        self.input_format = input_format
        self.max_batch = max_batch
        self.batch_sizes: list[int] = []
        self.delay_s = 0.0
        self.error: str | None = None
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def run(self, frames: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
        assert frames.dtype == np.uint8 and frames.shape[1:] == (*self.input_size, 3)
        self.batch_sizes.append(frames.shape[0])
        time.sleep(self.delay_s)
        if self.error:
            raise RuntimeError(self.error)
        red = frames[..., 0] if self.input_format == "RGB" else frames[..., 2]
        semantic = (red // 64).astype(np.uint8)
        anomaly = frames[..., 1].astype(np.float32) / 255.0
        open_set = np.where(anomaly > threshold, 254, semantic).astype(np.uint8)
        outputs = {"semantic": semantic, "anomaly": anomaly, "open_set": open_set}
        outputs.update((name, np.zeros_like(semantic)) for name in self.output_names if name not in outputs)
        return outputs


def fake_panoptic(outputs: dict[str, np.ndarray], metadata: ModelMetadata, method: str) -> np.ndarray:
    semantic = outputs["semantic"].astype(np.int32)
    return np.where(semantic >= 2, semantic * 1000 + 1, semantic)


def open_fake(settings) -> Segmenter:
    """``open_model`` for SegmentationNode / main(): ignores the model settings."""
    return Segmenter(FakeRuntime(), fake_panoptic)
