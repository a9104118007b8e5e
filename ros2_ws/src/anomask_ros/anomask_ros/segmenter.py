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

import numpy as np
from sensor_msgs.msg import CompressedImage, Image

from anomask.errors import AnomaskError
from anomask.export.frames import fit_frame
from anomask_ros.image_codec import ImageLimits, convert_channels, decode_compressed, image_view

if TYPE_CHECKING:  # anomask.models imports torch: the node loads it only with a model
    from anomask.models.metadata import ModelMetadata

REQUIRED_OUTPUTS = ("semantic", "anomaly", "open_set")


class Runtime(Protocol):
    """What the node uses of ``anomask.export.runtime.Runtime``."""

    backend: str
    metadata: ModelMetadata
    input_size: tuple[int, int]
    input_format: str
    max_batch: int
    output_names: tuple[str, ...]

    def run(self, frames: np.ndarray, threshold: float) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...


PanopticFn = Callable[[dict[str, np.ndarray], str], np.ndarray]
"""(runtime outputs of a batch, panoptic method) -> panoptic int32 ``[B, h, w]``
(ARCHITECTURE.md encoding)."""

PANOPTIC_INPUTS = (
    "mask_id",
    "mask_fg",
    "preferred_mask",
    "background",
    "mask_class",
    "mask_keep",
    "mask_area",
    "stuff_entropy",
    "thing_entropy",
)
"""The ``FusedHeads`` intermediates ``panoptic_images`` reads; per-pixel models have none."""


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
    """A runtime plus the panoptic CPU step; ``panoptic`` replaces
    ``anomask.models.heads.panoptic_images`` (tests pass a stand-in)."""

    def __init__(self, runtime: Runtime, panoptic: PanopticFn | None = None) -> None:
        self.runtime = runtime
        self._custom_panoptic = panoptic
        self._buffers: dict[int, np.ndarray] = {}

    @property
    def metadata(self) -> ModelMetadata:
        return self.runtime.metadata

    @property
    def backend(self) -> str:
        """The backend that actually runs (``auto`` resolved)."""
        return self.runtime.backend

    @property
    def max_batch(self) -> int:
        return max(1, int(self.runtime.max_batch))

    @property
    def has_panoptic(self) -> bool:
        """Whether the model returns the intermediates the panoptic output needs."""
        return self._custom_panoptic is not None or set(PANOPTIC_INPUTS) <= set(self.runtime.output_names)

    def batch(self, frames: list[Frame]) -> np.ndarray:
        """``[B, H, W, 3]`` uint8 at the runtime's input size and channel order
        (:func:`fit_frame` first, in the frame's own layout; the channel conversion then
        writes straight into the batch)."""
        height, width = self.runtime.input_size
        buffer = self._buffers.get(len(frames))
        if buffer is None:
            buffer = self._buffers[len(frames)] = np.empty((len(frames), height, width, 3), np.uint8)
        for index, frame in enumerate(frames):
            convert_channels(
                fit_frame(frame.pixels, (height, width)), frame.encoding, self.runtime.input_format, out=buffer[index]
            )
        return buffer

    def infer(self, batch: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
        outputs = self.runtime.run(batch, threshold)
        missing = [name for name in REQUIRED_OUTPUTS if name not in outputs]
        if missing:
            raise AnomaskError(f"runtime returned no {', '.join(missing)} (got {', '.join(sorted(outputs))})")
        return outputs

    def panoptic(self, outputs: dict[str, np.ndarray], method: str) -> np.ndarray:
        """Panoptic images of a batch; ``method`` is a ``panoptic_method`` parameter value."""
        if self._custom_panoptic is not None:
            return self._custom_panoptic(outputs, method)
        from anomask.models.heads import panoptic_images

        return panoptic_images(outputs, self.metadata, method)

    def warm_up(self) -> None:
        """One run on a black frame: the backend's first run allocates and plans (measured
        ~1-2 s on ONNX Runtime CPU for the small model), which would otherwise delay the first
        camera frame and supersede the frames behind it."""
        height, width = self.runtime.input_size
        outputs = self.infer(np.zeros((1, height, width, 3), np.uint8), 0.5)
        if self.has_panoptic:
            self.panoptic(outputs, "eam")

    def close(self) -> None:
        """Releases the runtime (sessions, engines, device memory) and the frame buffers."""
        if self.runtime is not None:
            self.runtime.close()
        self.runtime = None  # type: ignore[assignment]
        self._buffers.clear()


def open_segmenter(model_path: str, backend: str, threads: int = 0) -> Segmenter:
    """The model at ``model_path`` on ``backend``; AnomaskError when the file is missing or
    the backend cannot load it. ``threads`` (> 0) sets ONNX Runtime's intra-op threads."""
    if not model_path:
        raise AnomaskError("parameter model_path is empty: set it to an exported model file")
    if not Path(model_path).is_file():
        raise AnomaskError(f"model file not found: {model_path}")
    try:
        from anomask.export.runtime import backend_for, open_runtime
    except ImportError as error:
        raise AnomaskError(f"cannot open {model_path}: the runtime backends are not importable ({error})") from error
    chosen = backend_for(model_path, backend)
    options = {"threads": threads} if chosen == "onnxruntime" and threads > 0 else {}
    try:
        runtime = open_runtime(model_path, chosen, **options)
    except AnomaskError as error:
        raise AnomaskError(f"cannot open {model_path} with backend {chosen}: {error}") from error
    except Exception as error:  # a backend that is not installed or has no device: ImportError, RuntimeError, ...
        raise AnomaskError(
            f"cannot open {model_path} with backend {chosen}: {type(error).__name__}: {error}"
        ) from error
    segmenter = Segmenter(runtime)
    segmenter.warm_up()
    return segmenter
