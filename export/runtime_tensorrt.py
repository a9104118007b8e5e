"""TensorRT backend: a cached engine, device buffers allocated once, tensors bound by name,
one CUDA stream, optional CUDA graph.

Device and pinned host buffers are **torch CUDA tensors**, not pycuda: torch is already a
hard dependency (export, the PyTorch backend) and installs on x86 (PyPI wheels) and on
JetPack (NVIDIA's Jetson wheels) without compiling anything, while pycuda ships only a
source distribution on PyPI that must be compiled against the local CUDA toolkit (no
aarch64 wheel for JetPack) and creates its own CUDA context beside torch's. torch also gives
us streams, pinned memory and CUDA graph capture (``torch.cuda.CUDAGraph``).
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from anomask.errors import AnomaskError
from anomask.export.engine_cache import detect_target, file_sha256, key_mismatch, read_sidecar
from anomask.export.export_info import GPU_INSTALL, INPUT_FRAMES, INPUT_THRESHOLD, ExportInfo
from anomask.export.runtime import Runtime, StageTimer


def open_engine_info(path: str | os.PathLike) -> tuple[ExportInfo, dict]:
    """The engine's sidecar (``ExportInfo`` + key), checked against the engine file bytes."""
    path = Path(path)
    if not path.is_file():
        raise AnomaskError(f"{path}: no such engine file")
    sidecar = read_sidecar(path)
    if path.stat().st_size != sidecar.get("engine_bytes") or file_sha256(path) != sidecar.get("engine_sha256"):
        raise AnomaskError(
            f"{path}: engine file is corrupt (size or SHA-256 differs from its sidecar); rebuild it with 'anomask "
            f"export --engine'"
        )
    return ExportInfo.from_json(json.dumps(sidecar["export"]), source=str(path)), sidecar


class TensorRTRuntime(Runtime):
    backend = "tensorrt"

    def __init__(self, path: str | os.PathLike, device: int = 0, cuda_graph: bool = False) -> None:
        path = Path(path)
        info, sidecar = open_engine_info(path)
        try:
            import tensorrt as trt
            import torch
        except ImportError as error:
            raise AnomaskError(f"{path}: TensorRT is not installed ({GPU_INSTALL})") from error
        mismatch = key_mismatch(_current_key(sidecar["key"], device), sidecar["key"])
        if mismatch:
            raise AnomaskError(
                f"{path}: engine {mismatch}; engines are not portable, rebuild with 'anomask export --engine'"
            )
        super().__init__(info, str(path))
        self.torch = torch
        self.device = torch.device("cuda", device)
        # TensorRT deserialises onto, and enqueues on, the current CUDA device.
        torch.cuda.set_device(self.device)
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.trt_runtime = trt.Runtime(self.logger)
        dla_core = sidecar["key"].dla_core
        if dla_core is not None:
            # A DLA engine deserialises onto the runtime's DLA core (default 0): set it first.
            self.trt_runtime.DLA_core = dla_core
        self.engine = self.trt_runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise AnomaskError(
                f"{path}: TensorRT could not deserialize this engine (corrupt, or built by another TensorRT version)"
            )
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream(device=self.device)
        height, width = self.input_size
        rows = self.max_batch
        to_torch = {np.dtype(k): v for k, v in numpy_to_torch(torch).items()}
        self.device_buffers = {}
        for index in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(index)
            dtype = to_torch[np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))]
            shape = tuple(rows if d < 0 else d for d in self.engine.get_tensor_shape(name))
            self.device_buffers[name] = torch.empty(shape, dtype=dtype, device=self.device)
            if not self.context.set_tensor_address(name, self.device_buffers[name].data_ptr()):
                raise AnomaskError(f"{path}: TensorRT refused the device buffer of tensor {name}")
        missing = {INPUT_FRAMES, INPUT_THRESHOLD, *self.output_names} - set(self.device_buffers)
        if missing:
            raise AnomaskError(f"{path}: engine lacks the tensors {', '.join(sorted(missing))}")
        self.host_frames = torch.empty((rows, height, width, 3), dtype=torch.uint8).pin_memory()
        self.host_outputs = {
            name: torch.empty(self.device_buffers[name].shape, dtype=self.device_buffers[name].dtype).pin_memory()
            for name in self.output_names
        }
        self._outputs = {name: tensor.numpy() for name, tensor in self.host_outputs.items()}
        self._rows = 0
        self.cuda_graph = cuda_graph and not info.settings.dynamic_batch
        self.graph = None

    def _release(self) -> None:
        self.stream.synchronize()
        # Order matters: the graph and context use the engine, the engine its runtime.
        self.graph = None
        self.context = None
        self.engine = None
        self.device_buffers = {}
        self.host_outputs = {}
        self.torch.cuda.empty_cache()

    def _set_rows(self, rows: int) -> None:
        if rows != self._rows and self.info.settings.dynamic_batch:
            height, width = self.input_size
            self.context.set_input_shape(INPUT_FRAMES, (rows, height, width, 3))
        self._rows = rows

    def _enqueue(self) -> None:
        if self.graph is not None:
            self.graph.replay()
        elif not self.context.execute_async_v3(self.stream.cuda_stream):
            raise AnomaskError(f"{self.source}: TensorRT execution failed")

    def _capture(self) -> None:
        """Record the enqueue once into a CUDA graph (static shapes only) after a warm-up run."""
        torch = self.torch
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=self.stream):
            self.context.execute_async_v3(self.stream.cuda_stream)
        self.graph = graph

    def _execute(self, frames: np.ndarray, threshold: float) -> None:
        batch = frames.shape[0]
        rows = batch if self.info.settings.dynamic_batch else self.max_batch
        self._set_rows(rows)
        timer = StageTimer(self.stream.synchronize)
        with self.torch.cuda.stream(self.stream):
            with timer("upload"):
                self.host_frames[:batch].numpy()[...] = frames
                self.device_buffers[INPUT_FRAMES][:rows].copy_(self.host_frames[:rows], non_blocking=True)
                self.device_buffers[INPUT_THRESHOLD].fill_(threshold)
            with timer("compute"):
                self._enqueue()
            with timer("download"):
                for name in self.output_names:
                    self.host_outputs[name][:rows].copy_(self.device_buffers[name][:rows], non_blocking=True)
        if self.cuda_graph and self.graph is None:
            self._capture()
        self.last_timings = timer.times


def numpy_to_torch(torch) -> dict:
    return {
        np.uint8: torch.uint8,
        np.int8: torch.int8,
        np.int32: torch.int32,
        np.int64: torch.int64,
        np.float16: torch.float16,
        np.float32: torch.float32,
        np.bool_: torch.bool,
    }


def _current_key(built, device: int):
    """The key an engine needs to run here: this GPU and TensorRT, the engine's own
    precision, hash and DLA core."""
    return replace(built, target=detect_target(device))
