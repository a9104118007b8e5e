"""The inference side of the node, over the runtime interface of ``anomask.export.runtime``:
camera frames -> one network-input batch -> ``Runtime.run`` -> panoptic CPU post-processing.

The runtime (``open_runtime(path, backend) -> Runtime``) is imported only when a model is
opened, so the node's other parts (and their tests) need no model and no backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage, Image

from anomask.errors import AnomaskError
from anomask_ros.image_codec import ImageLimits, convert_channels, decode_compressed, image_view

if TYPE_CHECKING:  # anomask.models imports torch: the node loads it only with a model
    from anomask.models.metadata import ModelMetadata

REQUIRED_OUTPUTS = ("semantic", "anomaly", "open_set")


class Runtime(Protocol):
    """What the node uses of ``anomask.export.runtime.Runtime``."""

    metadata: ModelMetadata
    input_size: tuple[int, int]
    input_format: str
    max_batch: int

    def run(self, frames: np.ndarray, threshold: float) -> dict[str, np.ndarray]: ...


PanopticFn = Callable[[dict[str, np.ndarray]], np.ndarray]
"""Runtime outputs of a batch -> panoptic int32 ``[B, h, w]`` (ARCHITECTURE.md encoding)."""


@dataclass(frozen=True)
class Frame:
    """A decoded camera frame: ``pixels`` in ``encoding``'s channel layout, usually a view
    of the message's buffer."""

    pixels: np.ndarray
    encoding: str

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[0], self.pixels.shape[1]


def decode_message(msg: Image | CompressedImage, order: str, limits: ImageLimits, accepted: tuple[str, ...]) -> Frame:
    """Raises an ``ImageError`` subclass for a malformed message."""
    if isinstance(msg, CompressedImage):
        return Frame(decode_compressed(msg, order, limits), "rgb8" if order == "RGB" else "bgr8")
    return Frame(image_view(msg, limits, accepted), msg.encoding)


class Segmenter:
    def __init__(self, runtime: Runtime, panoptic: PanopticFn) -> None:
        self.runtime = runtime
        self._panoptic = panoptic
        self._buffers: dict[int, np.ndarray] = {}

    @property
    def metadata(self) -> ModelMetadata:
        return self.runtime.metadata

    @property
    def max_batch(self) -> int:
        return max(1, int(self.runtime.max_batch))

    def batch(self, frames: list[Frame]) -> np.ndarray:
        """``[B, H, W, 3]`` uint8 at the runtime's input size and channel order. Frames of
        another size are resized (bilinear) in their own channel layout first; the channel
        reordering then writes straight into the batch."""
        height, width = self.runtime.input_size
        buffer = self._buffers.get(len(frames))
        if buffer is None:
            buffer = self._buffers[len(frames)] = np.empty((len(frames), height, width, 3), np.uint8)
        for index, frame in enumerate(frames):
            pixels = frame.pixels
            if frame.size != (height, width):
                pixels = cv2.resize(pixels, (width, height), interpolation=cv2.INTER_LINEAR)
            convert_channels(pixels, frame.encoding, self.runtime.input_format, out=buffer[index])
        return buffer

    def infer(self, batch: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
        outputs = self.runtime.run(batch, threshold)
        missing = [name for name in REQUIRED_OUTPUTS if name not in outputs]
        if missing:
            raise AnomaskError(f"runtime returned no {', '.join(missing)} (got {', '.join(sorted(outputs))})")
        return outputs

    def panoptic(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        return self._panoptic(outputs)

    def close(self) -> None:
        """Drops the runtime (and with it the backend's device memory)."""
        self.runtime = None  # type: ignore[assignment]
        self._buffers.clear()


def open_segmenter(model_path: str, backend: str) -> Segmenter:
    """The model at ``model_path`` on ``backend``; AnomaskError when it is missing or the
    backend cannot load it."""
    if not model_path:
        raise AnomaskError("parameter model_path is empty: set it to an exported model file")
    if not Path(model_path).is_file():
        raise AnomaskError(f"model file not found: {model_path}")
    try:
        from anomask.export.runtime import open_runtime
        from anomask.models.heads import panoptic_from_intermediates
    except ImportError as error:
        raise AnomaskError(f"cannot open {model_path}: the runtime backends are not importable ({error})") from error

    runtime = open_runtime(model_path, backend)
    return Segmenter(runtime, lambda outputs: panoptic_from_intermediates(outputs, runtime.metadata))
