"""TensorRT engines from the exported ONNX file (TensorRT Python API, imported lazily).

``ensure_engine`` is the one entry point (``anomask export --engine``, ``open_runtime`` on an
``.onnx`` with ``backend="tensorrt"``, the docker first-boot build): it asks ``engine_cache``
whether this machine already has a valid engine and builds one only when not.

Precision differs by TensorRT major version (``plan_build``, pure and tested here):

- fp32: the ONNX as exported; TensorRT 11.x: the same
- fp16: ``BuilderFlag.FP16``; TensorRT 11.x: strongly typed: network in float16 (``precision.to_mixed_float16``)
- int8: ``BuilderFlag.INT8`` + ``FP16``, ``IInt8EntropyCalibrator2`` on the image folder, calibration cache file;
  TensorRT 11.x: Q/DQ graph (Conv/MatMul/Gemm only, min/max calibration on the image folder,
  ``precision.quantize_int8``), cached as ONNX; every derived graph must pass ``op_support``'s check

Always: explicit batch network, ``OnnxParser``, workspace limit via
``set_memory_pool_limit(MemoryPoolType.WORKSPACE)``, a timing cache per GPU and TensorRT
version reused across builds, an optimisation profile (batch 1..max) for dynamic-batch
graphs, optional DLA core (Jetson) with GPU fallback.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anomask import __version__
from anomask.errors import AnomaskError
from anomask.export.calibration import calibration_batches
from anomask.export.engine_cache import (
    PRECISIONS,
    BuildTarget,
    EngineKey,
    decide,
    detect_target,
    file_sha256,
    sidecar_path,
    stale_engines,
    write_engine,
)
from anomask.export.export_info import INPUT_FRAMES, INPUT_THRESHOLD, ExportInfo
from anomask.export.onnx_export import load_onnx, read_export_info
from anomask.export.op_support import check_tensorrt_support
from anomask.export.precision import quantize_int8, save_derived, to_mixed_float16
from anomask.files import write_bytes_atomic


@dataclass(frozen=True)
class EngineOptions:
    precision: str = "fp16"
    workspace_gib: float = 4.0
    calib_images: str | os.PathLike | None = None
    calib_max_images: int = 256
    dla_core: int | None = None
    force: bool = False

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise AnomaskError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if self.workspace_gib <= 0:
            raise AnomaskError(f"workspace must be positive, not {self.workspace_gib} GiB")


@dataclass(frozen=True)
class BuildPlan:
    """What a build does, decided without TensorRT."""

    parser_onnx: Path
    """The file the ONNX parser reads (the export itself, or its fp16 / Q/DQ derivative)."""
    derive: str | None
    """``fp16`` or ``int8-qdq`` when ``parser_onnx`` must be made first, else None."""
    builder_flags: tuple[str, ...]
    """``trt.BuilderFlag`` names to set (TensorRT 10 only)."""
    calibrator: bool
    """TensorRT 10 implicit INT8: attach an ``IInt8EntropyCalibrator2``."""
    calibration_cache: Path | None
    timing_cache: Path
    dynamic_batch: bool
    max_batch: int
    dla_core: int | None


def plan_build(
    onnx_path: str | os.PathLike, info: ExportInfo, options: EngineOptions, target: BuildTarget, onnx_sha256: str
) -> BuildPlan:
    onnx_path = Path(onnx_path)
    tag = onnx_sha256[:12]
    timing = onnx_path.with_name(f"{onnx_path.stem}.{target.label()}.timing-cache")
    common = dict(
        timing_cache=timing,
        dynamic_batch=info.settings.dynamic_batch,
        max_batch=info.settings.batch,
        dla_core=options.dla_core,
    )
    precision = options.precision
    if target.tensorrt_major < 11:
        if options.dla_core is not None and precision == "fp32":
            raise AnomaskError("DLA runs FP16 or INT8 only; choose --precision fp16 or int8 with a DLA core")
        if precision == "fp32":
            return BuildPlan(onnx_path, None, (), False, None, **common)
        if precision == "fp16":
            return BuildPlan(onnx_path, None, ("FP16",), False, None, **common)
        cache = onnx_path.with_name(f"{onnx_path.stem}.trt{target.tensorrt_major}.{tag}.int8-calibration")
        _require_calibration(options, cache)
        return BuildPlan(onnx_path, None, ("INT8", "FP16"), True, cache, **common)
    if options.dla_core is not None:
        raise AnomaskError(f"TensorRT {target.tensorrt_version} does not support DLA (JetPack ships TensorRT 10.x)")
    if precision == "fp32":
        return BuildPlan(onnx_path, None, (), False, None, **common)
    if precision == "fp16":
        derived = onnx_path.with_name(f"{onnx_path.stem}.{tag}.fp16.onnx")
        return BuildPlan(derived, None if derived.is_file() else "fp16", (), False, None, **common)
    derived = onnx_path.with_name(f"{onnx_path.stem}.{tag}.int8-qdq.onnx")
    _require_calibration(options, derived)
    return BuildPlan(derived, None if derived.is_file() else "int8-qdq", (), False, derived, **common)


def _require_calibration(options: EngineOptions, cache: Path) -> None:
    if options.calib_images is None and not cache.is_file():
        raise AnomaskError(f"INT8 needs calibration images (--calib-images DIR): no calibration cache {cache.name} yet")


def ensure_engine(
    onnx_path: str | os.PathLike,
    options: EngineOptions = EngineOptions(),
    target: BuildTarget | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """The engine for this machine: loaded from the cache next to ``onnx_path`` when valid,
    built (and cached) otherwise. Returns its path."""
    onnx_path = Path(onnx_path)
    info = read_export_info(load_onnx(onnx_path, load_weights=False), source=str(onnx_path))
    target = detect_target() if target is None else target
    sha = file_sha256(onnx_path)
    key = EngineKey(target, options.precision, sha, options.dla_core)
    decision = decide(onnx_path, key, force=options.force)
    log(f"{decision.engine_path.name}: {decision.reason}")
    if decision.action == "load":
        return decision.engine_path
    plan = plan_build(onnx_path, info, options, target, sha)
    prepare_parser_onnx(onnx_path, plan, info, options)
    started = time.time()
    engine = build_serialized_engine(plan, info, options)
    build = {
        "seconds": round(time.time() - started, 1),
        "parser_onnx": plan.parser_onnx.name,
        "workspace_gib": options.workspace_gib,
        "builder_flags": list(plan.builder_flags),
        "anomask_version": __version__,
    }
    write_engine(decision.engine_path, engine, key, info.to_json(), build)
    for stale in stale_engines(onnx_path, key):
        stale.unlink(missing_ok=True)
        sidecar_path(stale).unlink(missing_ok=True)
        log(f"removed stale engine {stale.name}")
    log(f"built {decision.engine_path.name} in {build['seconds']} s")
    return decision.engine_path


def prepare_parser_onnx(onnx_path: Path, plan: BuildPlan, info: ExportInfo, options: EngineOptions) -> None:
    """Write the fp16 / Q/DQ derivative the plan needs (TensorRT 11), keeping its metadata."""
    if plan.derive is None:
        return
    model = load_onnx(onnx_path)
    if plan.derive == "fp16":
        derived = to_mixed_float16(model)
    else:
        batches = calibration_batches(options.calib_images, info.settings, options.calib_max_images)
        derived = quantize_int8(model, batches)
    check_tensorrt_support(derived, source=str(plan.parser_onnx))
    derived.metadata_props.extend(model.metadata_props)
    save_derived(derived, plan.parser_onnx)


def build_serialized_engine(plan: BuildPlan, info: ExportInfo, options: EngineOptions) -> bytes:
    """Parse ``plan.parser_onnx`` and build the engine. Needs TensorRT and a GPU."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode since TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(plan.parser_onnx)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise AnomaskError(f"{plan.parser_onnx}: TensorRT's ONNX parser failed: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options.workspace_gib * (1 << 30)))
    for flag in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    timing_cache = config.create_timing_cache(plan.timing_cache.read_bytes() if plan.timing_cache.is_file() else b"")
    config.set_timing_cache(timing_cache, ignore_mismatch=False)
    height, width = info.settings.input_size
    profile = None
    if plan.dynamic_batch:
        profile = builder.create_optimization_profile()
        profile.set_shape(
            INPUT_FRAMES, (1, height, width, 3), (plan.max_batch, height, width, 3), (plan.max_batch, height, width, 3)
        )
        config.add_optimization_profile(profile)
    if plan.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = plan.dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    if plan.calibrator:
        batches = (
            calibration_batches(options.calib_images, info.settings, options.calib_max_images)
            if options.calib_images
            else iter(())
        )
        config.int8_calibrator = entropy_calibrator(trt, batches, plan.calibration_cache, info.settings.batch)
        if profile is not None:
            config.set_calibration_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise AnomaskError(f"{plan.parser_onnx}: TensorRT could not build an engine (see the TensorRT log above)")
    write_bytes_atomic(plan.timing_cache, bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)


def entropy_calibrator(trt: Any, batches, cache_path: Path, batch_size: int, threshold: float = 0.5):
    """An ``IInt8EntropyCalibrator2`` (TensorRT 10) feeding ``batches`` from device buffers
    (torch CUDA tensors), reading and writing ``cache_path``."""
    import torch

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.batches = iter(batches)
            self.threshold = torch.tensor(threshold, dtype=torch.float32, device="cuda")
            self.frames: torch.Tensor | None = None  # kept alive while TensorRT reads it

        def get_batch_size(self) -> int:
            return batch_size

        def get_batch(self, names: list[str]) -> list[int] | None:
            batch = next(self.batches, None)
            if batch is None:
                return None
            self.frames = torch.from_numpy(np.ascontiguousarray(batch)).to("cuda")
            torch.cuda.synchronize()
            pointers = {INPUT_FRAMES: self.frames.data_ptr(), INPUT_THRESHOLD: self.threshold.data_ptr()}
            return [pointers[name] for name in names]

        def read_calibration_cache(self) -> bytes | None:
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache) -> None:
            write_bytes_atomic(cache_path, bytes(cache))

    return EntropyCalibrator()
