"""One runtime interface over TensorRT, ONNX Runtime and PyTorch.

``open_runtime(path)`` picks the backend from the file (``.engine``/``.plan`` -> TensorRT,
``.onnx`` -> ONNX Runtime, ``.safetensors`` checkpoint -> PyTorch) or takes it explicitly;
every backend answers with the same ``Runtime`` interface, the same output names and dtypes
and the same ``ModelMetadata``, so evaluation, the benchmarks and the ROS node do not care
which one runs.

Output buffers are allocated once per runtime (host side: ``Runtime._outputs``) and written
completely by every run; ``run`` returns copies of the rows of the frames given, so a result
is never overwritten by the next run and never holds rows that were not computed.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from anomask.errors import AnomaskError
from anomask.export.export_info import ExportInfo
from anomask.models.metadata import ModelMetadata

BACKENDS = ("tensorrt", "onnxruntime", "pytorch")
EXTENSIONS = {".engine": "tensorrt", ".plan": "tensorrt", ".onnx": "onnxruntime", ".safetensors": "pytorch"}


class Runtime(ABC):
    """A loaded model: ``run(frames, threshold) -> {output name: array}``."""

    backend: str = ""

    def __init__(self, info: ExportInfo, source: str) -> None:
        self.info = info
        self.source = source
        self.last_timings: dict[str, float] = {}
        """Seconds per stage of the last run (backend-specific keys: upload, compute or
        network/heads, download)."""
        self._outputs: dict[str, np.ndarray] = {}
        self.closed = False

    def close(self) -> None:
        """Release the session or engine and its device memory now (a node shutting down
        gives the GPU back deterministically, not whenever the last reference goes)."""
        if not self.closed:
            self._release()
            self._outputs = {}
            self.closed = True

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def metadata(self) -> ModelMetadata:
        return self.info.metadata

    @property
    def input_size(self) -> tuple[int, int]:
        """(H, W) of the frames the graph takes."""
        return tuple(self.info.settings.input_size)

    @property
    def output_size(self) -> tuple[int, int]:
        return tuple(self.info.settings.output_size)

    @property
    def input_format(self) -> str:
        """Channel order of the frames: ``RGB`` or ``BGR``."""
        return self.info.settings.input_format

    @property
    def max_batch(self) -> int:
        return self.info.settings.batch

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.info.outputs

    def run(self, frames: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
        """Run ``frames`` (uint8 ``[B, H, W, 3]``, ``B <= max_batch``) with the open-set
        ``threshold``; returns fresh arrays, ``semantic``/``open_set`` uint8 ``[B, h, w]``,
        ``anomaly`` float ``[B, h, w]`` and the panoptic intermediates."""
        if self.closed:
            raise AnomaskError(f"{self.source}: this runtime was closed; open the model again")
        frames = self.check_frames(frames)
        batch = frames.shape[0]
        self._execute(frames, float(threshold))
        return {name: self._outputs[name][:batch].copy() for name in self.output_names}

    def check_frames(self, frames: Any) -> np.ndarray:
        if not isinstance(frames, np.ndarray):
            raise AnomaskError(f"{self.source}: frames must be a numpy array, not {type(frames).__name__}")
        if frames.dtype != np.uint8:
            raise AnomaskError(f"{self.source}: frames must be uint8, got {frames.dtype}")
        height, width = self.input_size
        if frames.ndim != 4 or frames.shape[1:] != (height, width, 3):
            raise AnomaskError(
                f"{self.source}: frames must be [B, {height}, {width}, 3] ({self.input_format}), got "
                f"{list(frames.shape)}; "
                "the graph was exported for this camera resolution (anomask export --height/--width)"
            )
        if not 1 <= frames.shape[0] <= self.max_batch:
            raise AnomaskError(
                f"{self.source}: batch of {frames.shape[0]} frames, this model takes 1 to {self.max_batch}"
            )
        return np.ascontiguousarray(frames)

    @abstractmethod
    def _execute(self, frames: np.ndarray, threshold: float) -> None:
        """Compute ``frames`` and write every output row ``[:B]`` into ``self._outputs``."""

    @abstractmethod
    def _release(self) -> None:
        """Drop the backend's session/engine/model and device buffers."""

    def _allocate_outputs(self, shapes: dict[str, tuple[int, ...]], dtypes: dict[str, Any]) -> None:
        self._outputs = {name: np.empty(shapes[name], dtype=dtypes[name]) for name in self.output_names}


class StageTimer:
    """Wall-clock seconds per named stage (``with timer("upload"): ...``)."""

    def __init__(self, sync=None) -> None:
        self.times: dict[str, float] = {}
        self._sync = sync or (lambda: None)

    def __call__(self, stage: str) -> _Stage:
        return _Stage(self, stage)


class _Stage:
    def __init__(self, timer: StageTimer, stage: str) -> None:
        self.timer, self.stage = timer, stage

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timer._sync()
        self.timer.times[self.stage] = self.timer.times.get(self.stage, 0.0) + time.perf_counter() - self.start


def backend_for(path: str | os.PathLike, backend: str = "auto") -> str:
    if Path(path).suffix.lower() == ".ep":
        raise AnomaskError(
            f"{path}: a Torch-TensorRT program (.ep) is not served by the runtimes (it carries no anomask "
            "metadata); open the checkpoint (.safetensors), its ONNX (.onnx) or TensorRT engine (.engine)"
        )
    if backend != "auto":
        if backend not in BACKENDS:
            raise AnomaskError(f"unknown runtime backend {backend!r}; valid: auto, {', '.join(BACKENDS)}")
        return backend
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        raise AnomaskError(
            f"{path}: cannot tell the backend from the extension {suffix or '(none)'}; "
            f"use .engine/.plan (tensorrt), .onnx (onnxruntime), .safetensors (pytorch) or pass backend="
        )
    return EXTENSIONS[suffix]


def open_runtime(path: str, backend: str = "auto", **options: Any) -> Runtime:
    """Open a model for inference.

    ``backend``: ``auto`` (from the extension), ``tensorrt``, ``onnxruntime`` or ``pytorch``.
    Options by backend:

    - onnxruntime: ``providers`` (default: TensorRT > CUDA > CPU, those available),
      ``device_id``, ``threads``, ``fp16`` (lets the TensorRT provider build fp16 kernels).
    - tensorrt: for a ``.engine``/``.plan``: ``device``, ``cuda_graph``; for an ``.onnx``
      file the cached engine for this GPU is used or built first (``precision``,
      ``workspace_gib``, ``calib_images``, ``dla_core``).
    - pytorch: ``device`` (``cpu``/``cuda``), ``compile`` (torch.compile), and the export
      settings a checkpoint does not fix: ``input_size``, ``network_size``, ``output_size``,
      ``score``, ``refine``, ``input_format``, ``max_batch``.
    """
    if not Path(path).exists():
        raise AnomaskError(f"{path}: no such model file")
    chosen = backend_for(path, backend)
    if chosen == "onnxruntime":
        from anomask.export.runtime_onnx import OnnxRuntime

        return OnnxRuntime(path, **options)
    if chosen == "pytorch":
        from anomask.export.runtime_torch import TorchRuntime

        return TorchRuntime.from_checkpoint(path, **options)
    from anomask.export.runtime_tensorrt import TensorRTRuntime

    if Path(path).suffix.lower() == ".onnx":
        from anomask.export.tensorrt_builder import EngineOptions, ensure_engine

        build_keys = {"precision", "workspace_gib", "calib_images", "dla_core"}
        engine = ensure_engine(path, EngineOptions(**{k: v for k, v in options.items() if k in build_keys}))
        options = {k: v for k, v in options.items() if k not in build_keys}
        return TensorRTRuntime(engine, **options)
    return TensorRTRuntime(path, **options)
