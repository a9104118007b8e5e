"""Decoded camera frames -> everything the node publishes, in one call:
``Segmenter.run(frames, threshold, panoptic_method) -> (list[FrameOutputs], Timings)``.

Inside, in order: the network-input batch (:func:`~anomask.export.frames.fit_frame`, then
the channel conversion straight into the batch), ``Runtime.run`` (the runtime interface of
``anomask.export.runtime``), the check that the graph returned ``REQUIRED_OUTPUTS``, the
panoptic CPU step (``anomask.models.heads.panoptic_images``) and one :class:`FrameOutputs`
per frame at the runtime's output resolution. The node (``segmentation_node``) and the
offline bag evaluation (``anomask_ros.bag.eval``) both call it, so the two cannot drift.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from anomask.errors import AnomaskError
from anomask.export.export_info import PANOPTIC_OUTPUTS, REQUIRED_OUTPUTS
from anomask.export.frames import fit_frame
from anomask.export.runtime import backend_for, open_runtime
from anomask.models.metadata import ModelMetadata
from anomask.models.panoptic_methods import CLOSED_SET, PANOPTIC_METHODS
from anomask_ros.image_codec import Frame, convert_channels
from anomask_ros.outputs import FrameOutputs


class Runtime(Protocol):
    """What the segmenter uses of ``anomask.export.runtime.Runtime``."""

    backend: str
    metadata: ModelMetadata
    input_size: tuple[int, int]
    input_format: str
    max_batch: int
    output_names: tuple[str, ...]

    def run(self, frames: np.ndarray, threshold: float) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...


PanopticFn = Callable[[Mapping[str, np.ndarray], ModelMetadata, str], np.ndarray]
"""``anomask.models.heads.panoptic_images``: (runtime outputs of a batch, metadata, panoptic
method) -> int32 ``[B, h, w]`` panoptic images (ARCHITECTURE.md encoding)."""


@dataclass(frozen=True)
class Timings:
    """Where one :meth:`Segmenter.run` spent its time, in ms (for the whole batch)."""

    batch_ms: float
    """Frames -> network-input batch (resize to the input size, channel conversion)."""
    inference_ms: float
    """``Runtime.run``."""
    panoptic_ms: float
    """The panoptic CPU step; 0 when no panoptic image was asked for."""


def _ms(start: float, end: float) -> float:
    return (end - start) * 1e3


class Segmenter:
    """A runtime plus the panoptic CPU step; ``panoptic`` stands in for
    ``anomask.models.heads.panoptic_images`` (tests)."""

    def __init__(self, runtime: Runtime, panoptic: PanopticFn | None = None) -> None:
        self.runtime = runtime
        self._panoptic = panoptic
        self._buffers: dict[int, np.ndarray] = {}

    @property
    def metadata(self) -> ModelMetadata:
        return self.runtime.metadata

    @property
    def backend(self) -> str:
        """The backend that actually runs (``auto`` resolved)."""
        return self.runtime.backend

    @property
    def input_size(self) -> tuple[int, int]:
        """(H, W) of the network-input batch (the exported graph's input size)."""
        return tuple(self.runtime.input_size)

    @property
    def input_format(self) -> str:
        """The runtime's channel order, "RGB" or "BGR": compressed frames decode straight into it."""
        return self.runtime.input_format

    @property
    def max_batch(self) -> int:
        return max(1, int(self.runtime.max_batch))

    @property
    def has_panoptic(self) -> bool:
        """Whether the model returns the intermediates the panoptic step reads (per-pixel models do not)."""
        return set(PANOPTIC_OUTPUTS) <= set(self.runtime.output_names)

    def run(
        self, frames: Sequence[Frame], threshold: float, panoptic_method: str | None = None
    ) -> tuple[list[FrameOutputs], Timings]:
        """One batch of 1 to ``max_batch`` frames through the model: each frame's maps, at the
        runtime's output resolution, and the time per stage. ``threshold`` is the anomaly
        threshold of the open-set map; ``panoptic_method`` one of ``PANOPTIC_METHODS``, or
        None for no panoptic image (``FrameOutputs.panoptic`` None). Raises AnomaskError for
        a panoptic method the model cannot give and for a graph without ``REQUIRED_OUTPUTS``;
        whatever the backend raises passes through."""
        self._check_panoptic(panoptic_method)
        start = time.perf_counter()
        batch = self._batch(frames)
        batched = time.perf_counter()
        outputs = self.runtime.run(batch, threshold)
        inferred = time.perf_counter()
        missing = [name for name in REQUIRED_OUTPUTS if name not in outputs]
        if missing:
            raise AnomaskError(f"runtime returned no {', '.join(missing)} (got {', '.join(sorted(outputs))})")
        panoptic = None if panoptic_method is None else self._panoptic_images(outputs, panoptic_method)
        done = time.perf_counter()
        maps = [
            FrameOutputs(
                semantic=outputs["semantic"][index],
                anomaly=outputs["anomaly"][index],
                open_set=outputs["open_set"][index],
                panoptic=None if panoptic is None else panoptic[index],
            )
            for index in range(len(frames))
        ]
        panoptic_ms = 0.0 if panoptic is None else _ms(inferred, done)
        return maps, Timings(_ms(start, batched), _ms(batched, inferred), panoptic_ms)

    def _check_panoptic(self, method: str | None) -> None:
        if method is None:
            return
        if method not in PANOPTIC_METHODS:
            raise AnomaskError(f"unknown panoptic method {method!r}; valid: {', '.join(PANOPTIC_METHODS)}")
        if not self.has_panoptic:
            raise AnomaskError(
                f"the model returns no panoptic intermediates (a per-pixel model?): it has "
                f"{', '.join(self.runtime.output_names)}"
            )

    def _batch(self, frames: Sequence[Frame]) -> np.ndarray:
        """``[B, H, W, 3]`` uint8 at the runtime's input size and channel order
        (:func:`fit_frame` first, in the frame's own layout; the channel conversion then
        writes straight into the batch, one buffer kept per batch size)."""
        height, width = self.input_size
        buffer = self._buffers.get(len(frames))
        if buffer is None:
            buffer = self._buffers[len(frames)] = np.empty((len(frames), height, width, 3), np.uint8)
        for index, frame in enumerate(frames):
            convert_channels(
                fit_frame(frame.pixels, (height, width)), frame.encoding, self.input_format, out=buffer[index]
            )
        return buffer

    def _panoptic_images(self, outputs: Mapping[str, np.ndarray], method: str) -> np.ndarray:
        if self._panoptic is None:
            # anomask.models.heads imports torch (for its GPU parts): loaded only once a
            # panoptic image is asked for, so a node without panoptic outputs never loads it.
            from anomask.models.heads import panoptic_images

            self._panoptic = panoptic_images
        return self._panoptic(outputs, self.metadata, method)

    def warm_up(self) -> None:
        """One run on a black frame: the backend's first run allocates and plans (measured
        ~1-2 s on ONNX Runtime CPU for the small model), which would otherwise delay the first
        camera frame and supersede the frames behind it."""
        black = Frame(np.zeros((*self.input_size, 3), np.uint8), "rgb8")
        self.run([black], 0.5, CLOSED_SET if self.has_panoptic else None)

    def close(self) -> None:
        """Releases the runtime (sessions, engines, device memory) and the frame buffers."""
        if self.runtime is not None:
            self.runtime.close()
        self.runtime = None  # type: ignore[assignment]
        self._buffers.clear()


def open_segmenter(model_path: str, backend: str, threads: int = 0, max_batch: int = 1) -> Segmenter:
    """The model at ``model_path`` on ``backend``, warmed up; AnomaskError when the file is
    missing or the backend cannot load it. ``threads`` (> 0) sets ONNX Runtime's intra-op
    threads. ``max_batch`` is the most frames per run a checkpoint (PyTorch backend) is opened
    for, at ``anomask.export.runtime_torch.DEFAULT_INPUT_SIZE``; an exported file fixes its own."""
    if not model_path:
        raise AnomaskError("parameter model_path is empty: set it to an exported model file")
    if not Path(model_path).is_file():
        raise AnomaskError(f"model file not found: {model_path}")
    chosen = backend_for(model_path, backend)
    options = {"threads": threads} if chosen == "onnxruntime" and threads > 0 else {}
    if chosen == "pytorch":
        options = {"max_batch": max(1, max_batch)}
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
