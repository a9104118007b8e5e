"""ONNX Runtime backend: TensorRT > CUDA > CPU execution providers, I/O binding.

Inputs and outputs are bound once to buffers allocated at open time (``OrtValue`` on the GPU
for the CUDA/TensorRT providers, the host output arrays themselves on the CPU), so a run
copies frames in, runs, and copies results out, without ONNX Runtime allocating outputs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from anomask.errors import AnomaskError
from anomask.export.export_info import INPUT_FRAMES, INPUT_THRESHOLD, METADATA_KEY, ExportInfo
from anomask.export.runtime import Runtime, StageTimer

try:
    import onnxruntime as ort
except ImportError as error:  # neither distribution installed
    raise AnomaskError(
        "ONNX Runtime is not installed: install anomask with exactly one of the extras "
        "'cpu' (onnxruntime) or 'gpu' (onnxruntime-gpu, TensorRT), e.g. pip install '.[cpu]'"
    ) from error

PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(uint8)": np.uint8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}


def session_options(threads: int = 0, spin: bool = True) -> ort.SessionOptions:
    """``threads`` intra-op threads (0: one per core); ``spin=False`` stops idle worker threads
    from busy-waiting after a run (fairer when other work shares the CPU, e.g. benchmarks)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def choose_providers(available: list[str] | None = None) -> list[str]:
    """The preferred providers that this ONNX Runtime build has, best first."""
    available = ort.get_available_providers() if available is None else available
    return [p for p in PREFERRED_PROVIDERS if p in available]


def provider_options_for(provider: str, path: Path, device_id: int = 0, fp16: bool = False) -> dict[str, str]:
    """ONNX Runtime options of one execution provider. The TensorRT provider caches its
    engines and timing next to the model; ``fp16`` lets it build fp16 kernels (it builds fp32
    only unless ``trt_fp16_enable`` is set). The CUDA and CPU providers run the graph's own
    precision, so ``fp16`` changes nothing for them."""
    if provider == "TensorrtExecutionProvider":
        cache = str(path.parent)
        options = {
            "device_id": str(device_id),
            "trt_engine_cache_enable": "True",
            "trt_engine_cache_path": cache,
            "trt_timing_cache_enable": "True",
            "trt_timing_cache_path": cache,
        }
        if fp16:
            options["trt_fp16_enable"] = "True"
        return options
    if provider == "CUDAExecutionProvider":
        return {"device_id": str(device_id)}
    return {}


class OnnxRuntime(Runtime):
    backend = "onnxruntime"

    def __init__(
        self,
        path: str | os.PathLike,
        providers: list[str] | None = None,
        device_id: int = 0,
        threads: int = 0,
        spin: bool = True,
        fp16: bool = False,
    ) -> None:
        path = Path(path)
        options = session_options(threads, spin)
        providers = choose_providers() if providers is None else providers
        provider_options = [provider_options_for(p, path, device_id, fp16) for p in providers]
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=providers, provider_options=provider_options
            )
        except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise AnomaskError(f"{path}: ONNX Runtime cannot load this model ({str(error).splitlines()[0]})") from error
        meta = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            producer = self.session.get_modelmeta().producer_name or "an unknown program"
            raise AnomaskError(
                f"{path}: no anomask metadata in this ONNX file (produced by {producer}); "
                "export the model with 'anomask export' so the runtime knows its classes and outputs"
            )
        super().__init__(ExportInfo.from_json(meta[METADATA_KEY], source=str(path)), str(path))
        self.providers = self.session.get_providers()
        self.on_gpu = self.providers[0] in ("TensorrtExecutionProvider", "CUDAExecutionProvider")
        self.device_id = device_id
        outputs = {o.name: o for o in self.session.get_outputs()}
        shapes = {name: self._max_shape(outputs[name].shape) for name in self.output_names}
        dtypes = {name: ORT_TYPES[outputs[name].type] for name in self.output_names}
        self._allocate_outputs(shapes, dtypes)
        height, width = self.input_size
        self._frames = np.zeros((self.max_batch, height, width, 3), np.uint8)
        self._threshold = np.zeros((), np.float32)
        self._binding = self.session.io_binding()
        self._bound_batch = 0
        self._device_outputs: dict[str, ort.OrtValue] = {}

    def _release(self) -> None:
        self._binding = None
        self._device_outputs = {}
        self.session = None

    def _max_shape(self, shape: list) -> tuple[int, ...]:
        return tuple(d if isinstance(d, int) else self.max_batch for d in shape)

    def _rows(self, batch: int) -> int:
        """Rows the graph computes: the static batch, or exactly ``batch`` when dynamic."""
        return batch if self.info.settings.dynamic_batch else self.max_batch

    def _bind(self, rows: int) -> None:
        """(Re)bind inputs and outputs for ``rows`` rows; done once per distinct batch size."""
        binding = self._binding
        binding.clear_binding_inputs()
        binding.clear_binding_outputs()
        if self.on_gpu:
            height, width = self.input_size
            self._device_frames = ort.OrtValue.ortvalue_from_shape_and_type(
                (rows, height, width, 3), np.uint8, "cuda", self.device_id
            )
            self._device_threshold = ort.OrtValue.ortvalue_from_shape_and_type((), np.float32, "cuda", self.device_id)
            binding.bind_ortvalue_input(INPUT_FRAMES, self._device_frames)
            binding.bind_ortvalue_input(INPUT_THRESHOLD, self._device_threshold)
            self._device_outputs = {
                name: ort.OrtValue.ortvalue_from_shape_and_type(
                    (rows, *buf.shape[1:]), buf.dtype, "cuda", self.device_id
                )
                for name, buf in self._outputs.items()
            }
            for name, value in self._device_outputs.items():
                binding.bind_ortvalue_output(name, value)
        else:
            binding.bind_cpu_input(INPUT_FRAMES, self._frames[:rows])
            binding.bind_cpu_input(INPUT_THRESHOLD, self._threshold)
            for name, buf in self._outputs.items():
                binding.bind_ortvalue_output(name, ort.OrtValue.ortvalue_from_numpy(buf[:rows]))
        self._bound_batch = rows

    def _execute(self, frames: np.ndarray, threshold: float) -> None:
        batch = frames.shape[0]
        rows = self._rows(batch)
        if rows != self._bound_batch:
            self._bind(rows)
        timer = StageTimer()
        with timer("upload"):
            self._frames[:batch] = frames
            self._threshold[...] = threshold
            if self.on_gpu:
                self._device_frames.update_inplace(self._frames[:rows])
                self._device_threshold.update_inplace(self._threshold)
        with timer("compute"):
            self.session.run_with_iobinding(self._binding)
        with timer("download"):
            for name, value in self._device_outputs.items():
                self._outputs[name][:rows] = value.numpy()
        self.last_timings = timer.times
