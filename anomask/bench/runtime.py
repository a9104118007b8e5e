"""``anomask bench runtime``: per-stage latency, p50/p99, throughput and peak memory of every
available runtime backend, per resolution and batch (cameras). Prints numbers, asserts
nothing.

Stages: ``upload`` (host frames to the backend's input), ``network`` (preprocessing + network),
``heads`` (the fused heads), ``download`` (outputs back to host arrays), ``post`` (CPU
panoptic assembly, ``anomask.models.heads.panoptic_images``). All backends of one size and
batch are measured in turn, iteration by iteration (a shared machine's load changes hit
them alike). Memory (``mem MB``): CUDA allocator peak on a GPU, else the process RSS that
opening and running the backend added. PyTorch times network and heads
directly; for ONNX Runtime they are timed on the two halves of the same ONNX file, cut where
the heads start (``split_graph``); a TensorRT engine is one piece (heads: nan).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx
import psutil
import torch

from anomask.bench.results import add_out_argument, write_result
from anomask.errors import AnomaskError
from anomask.export.export_info import INPUT_FRAMES, INPUT_THRESHOLD, ExportSettings
from anomask.export.graph import build_heads
from anomask.export.onnx_export import example_frames, export_onnx
from anomask.export.precision import node_scope
from anomask.export.runtime import Runtime
from anomask.export.runtime_onnx import OnnxRuntime, session_options
from anomask.export.runtime_torch import TorchRuntime
from anomask.models.metadata import ModelMetadata

STAGES = ("upload", "network", "heads", "download", "post")


@dataclass
class BenchRow:
    backend: str
    size: tuple[int, int]
    batch: int
    iterations: int
    stages_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    """stage -> {"p50": ms, "p99": ms}; ``total`` included."""
    frames_per_s: float = 0.0
    peak_memory_mb: float = 0.0
    memory_kind: str = "process RSS added"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", help="checkpoint to benchmark (default: a randomly initialised --preset model)")
    parser.add_argument("--preset", default="small", help="model preset without --checkpoint (default %(default)s)")
    parser.add_argument(
        "--sizes", nargs="+", default=["512x1024", "1024x2048"], help="HxW camera = network = output sizes"
    )
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 4], help="cameras per run (default 1 4)")
    parser.add_argument(
        "--backends",
        nargs="+",
        default=["auto"],
        help="onnxruntime, pytorch, pytorch-fp16, tensorrt, or auto (every one available here)",
    )
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--score", default="eam")
    parser.add_argument("--workdir", help="folder for the exported ONNX files (default: a temporary folder)")
    add_out_argument(parser)


def available_backends() -> list[str]:
    backends = ["onnxruntime", "pytorch"]
    if torch.cuda.is_available():
        backends.append("pytorch-fp16")
        try:
            import tensorrt  # noqa: F401

            backends.append("tensorrt")
        except ImportError:
            pass
    return backends


def parse_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError as error:
        raise AnomaskError(f"size {text!r} is not HxW, e.g. 512x1024") from error
    return height, width


def split_graph(model: onnx.ModelProto) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """The exported graph cut where the heads start: (preprocessing + network: ``frames`` ->
    the tensors the heads read, heads: those tensors + ``threshold`` -> the outputs)."""
    produced_before_heads = set()
    for node in model.graph.node:
        if node_scope(node) != "heads":
            produced_before_heads.update(node.output)
    heads_inputs = sorted(
        {i for n in model.graph.node if node_scope(n) == "heads" for i in n.input if i in produced_before_heads}
    )
    if not heads_inputs:
        raise AnomaskError("cannot find where the heads start in this graph (no scope metadata)")
    extractor = onnx.utils.Extractor(model)
    outputs = [o.name for o in model.graph.output]
    return extractor.extract_model([INPUT_FRAMES], heads_inputs), extractor.extract_model(
        [*heads_inputs, INPUT_THRESHOLD], outputs
    )


def percentiles(values: list[float]) -> dict[str, float]:
    ms = np.asarray(values) * 1000.0
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99))}


def measure_once(runtime: Runtime, frames: np.ndarray, metadata: ModelMetadata, split_time=None) -> dict[str, float]:
    """Seconds per stage of one run + CPU post-processing; ``split_time()`` returns (network,
    heads) from the two halves of the graph for ONNX Runtime."""
    from anomask.models.heads import panoptic_images

    start = time.perf_counter()
    outputs = runtime.run(frames, threshold=0.5)
    post_start = time.perf_counter()
    panoptic_images(outputs, metadata)
    end = time.perf_counter()
    stages = dict(runtime.last_timings)
    if "compute" in stages:
        compute = stages.pop("compute")
        stages["network"], stages["heads"] = split_time() if split_time else (compute, float("nan"))
    stages["post"] = end - post_start
    stages["total"] = end - start
    return {stage: stages.get(stage, 0.0) for stage in (*STAGES, "total")}


def open_and_measure_memory(
    backend: str, onnx_path: Path, network, metadata: ModelMetadata, settings: ExportSettings, frames: np.ndarray
) -> tuple[Runtime, object, float, str]:
    """Open ``backend`` and run it once. Memory: the CUDA allocator's peak on a GPU, else the
    process RSS this backend added (opened after the previous ones: loaded weights, arenas,
    buffers)."""
    process = psutil.Process(os.getpid())
    before = process.memory_info().rss
    runtime, split_time = open_backend(backend, onnx_path, network, metadata, settings)
    if torch.cuda.is_available() and (runtime.backend != "onnxruntime" or getattr(runtime, "on_gpu", False)):
        torch.cuda.reset_peak_memory_stats()
        measure_once(runtime, frames, metadata, split_time)
        return runtime, split_time, torch.cuda.max_memory_allocated() / 1e6, "CUDA (torch allocator peak)"
    measure_once(runtime, frames, metadata, split_time)
    return runtime, split_time, (process.memory_info().rss - before) / 1e6, "process RSS added"


def open_backend(backend: str, onnx_path: Path, network, metadata, settings: ExportSettings) -> tuple[Runtime, object]:
    """The runtime and, for ONNX Runtime, a callable timing the graph's two halves."""
    if backend in ("pytorch", "pytorch-fp16"):
        device = "cuda" if backend == "pytorch-fp16" or torch.cuda.is_available() else "cpu"
        return TorchRuntime(network, metadata, settings, device=device, half=backend == "pytorch-fp16"), None
    if backend == "onnxruntime":
        runtime = OnnxRuntime(onnx_path, spin=False)
    elif backend == "tensorrt":
        from anomask.export.runtime import open_runtime

        # One engine: no network-only split (heads reported as nan).
        return open_runtime(str(onnx_path), backend="tensorrt"), None
    else:
        raise AnomaskError(f"unknown backend {backend!r}; valid: auto, onnxruntime, pytorch, pytorch-fp16, tensorrt")
    import onnxruntime as ort

    halves = [
        ort.InferenceSession(part.SerializeToString(), session_options(spin=False), providers=runtime.providers)
        for part in split_graph(onnx.load(str(onnx_path)))
    ]
    frames = {INPUT_FRAMES: example_frames(settings)}

    def split_time() -> tuple[float, float]:
        start = time.perf_counter()
        values = halves[0].run(None, frames)
        middle = time.perf_counter()
        feeds = dict(zip([o.name for o in halves[0].get_outputs()], values), threshold=np.array(0.5, np.float32))
        halves[1].run(None, feeds)
        return middle - start, time.perf_counter() - middle

    return runtime, split_time


def bench(args: argparse.Namespace, log=print) -> list[BenchRow]:
    from anomask.models.config import ModelConfig
    from anomask.models.metadata import ClassInfo
    from anomask.models.network import build_model

    if args.checkpoint:
        from anomask.models.checkpoint import load_checkpoint

        network, metadata = load_checkpoint(args.checkpoint)
    else:
        config = ModelConfig.preset(args.preset)
        classes = tuple(
            ClassInfo(f"class{i}", i >= config.num_classes - 8, (i, i, i)) for i in range(config.num_classes)
        )
        metadata = ModelMetadata(classes=classes, architecture=config)
        torch.manual_seed(0)
        network = build_model(config).eval()
    backends = available_backends() if args.backends == ["auto"] else args.backends
    rows = []
    with tempfile.TemporaryDirectory(prefix="anomask-bench-") as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for size in (parse_size(s) for s in args.sizes):
            for batch in args.batches:
                settings = ExportSettings(
                    input_size=size, network_size=size, output_size=size, score=args.score, batch=batch
                )
                onnx_path = workdir / f"bench_{size[0]}x{size[1]}_b{batch}.onnx"
                if not onnx_path.is_file():
                    log(f"exporting {onnx_path.name} ...")
                    export_onnx(network, build_heads(metadata, settings), metadata, settings, onnx_path)
                frames = np.concatenate([example_frames(settings, seed=s)[:1] for s in range(batch)])
                rows.extend(bench_interleaved(backends, onnx_path, network, metadata, settings, frames, args, log))
    return rows


def bench_interleaved(
    backends: list[str],
    onnx_path: Path,
    network,
    metadata: ModelMetadata,
    settings: ExportSettings,
    frames: np.ndarray,
    args: argparse.Namespace,
    log,
) -> list[BenchRow]:
    """All backends open at once and measured in turn, iteration by iteration, so that a
    change of load on a shared machine hits every backend alike (ratios in one run)."""
    opened, memory = {}, {}
    for backend in backends:
        runtime, split_time, megabytes, kind = open_and_measure_memory(
            backend, onnx_path, network, metadata, settings, frames
        )
        opened[backend], memory[backend] = (runtime, split_time), (megabytes, kind)
    times = {backend: {stage: [] for stage in (*STAGES, "total")} for backend in backends}
    for index in range(args.warmup + args.iterations):
        for backend, (runtime, split_time) in opened.items():
            stages = measure_once(runtime, frames, metadata, split_time)
            if index >= args.warmup:
                for stage, seconds in stages.items():
                    times[backend][stage].append(seconds)
    rows = []
    for backend in backends:
        row = BenchRow(backend, settings.input_size, settings.batch, args.iterations)
        row.stages_ms = {stage: percentiles(values) for stage, values in times[backend].items()}
        row.frames_per_s = settings.batch / statistics.mean(times[backend]["total"])
        row.peak_memory_mb, row.memory_kind = memory[backend]
        rows.append(row)
        log(format_row(row))
    return rows


HEADER = (
    f"{'backend':<13} {'size':>9} {'B':>2} | "
    + " ".join(f"{s:>8}" for s in STAGES)
    + f" | {'p50':>8} {'p99':>8} | {'frames/s':>8} | {'mem MB':>8}"
)


def format_row(row: BenchRow) -> str:
    stages = " ".join(f"{row.stages_ms[s]['p50']:8.1f}" for s in STAGES)
    total = row.stages_ms["total"]
    return (
        f"{row.backend:<13} {row.size[0]:>4}x{row.size[1]:<4} {row.batch:>2} | {stages} | {total['p50']:8.1f} "
        f"{total['p99']:8.1f}"
        f" | {row.frames_per_s:8.2f} | {row.peak_memory_mb:8.0f}"
    )


def summary(rows: list[BenchRow]) -> list[str]:
    """ONNX Runtime vs PyTorch (same device class) and the heads' share of the forward."""
    lines = []
    by_key = {(r.backend, r.size, r.batch): r for r in rows}
    for (backend, size, batch), row in by_key.items():
        forward = row.stages_ms["network"]["p50"] + row.stages_ms["heads"]["p50"]
        share = row.stages_ms["heads"]["p50"] / forward if forward else 0.0
        line = f"{backend} {size[0]}x{size[1]} B={batch}: heads {100 * share:.1f} % of the forward"
        torch_row = by_key.get(("pytorch", size, batch))
        if backend == "onnxruntime" and torch_row is not None:
            ratio = row.stages_ms["total"]["p50"] / torch_row.stages_ms["total"]["p50"]
            line += f"; ONNX Runtime / PyTorch eager latency = {ratio:.2f}"
        lines.append(line)
    return lines


def run(args: argparse.Namespace) -> int:
    print(
        f"anomask bench runtime: backends {args.backends}, sizes {args.sizes}, batches {args.batches}, "
        f"{args.iterations} iterations after {args.warmup} warm-up; stage times in ms (p50)"
    )
    print(HEADER)
    before = conditions()
    rows = bench(args)
    for line in summary(rows):
        print(line)
    if args.out:
        results = {
            "conditions": {"start": before, "end": conditions()},
            "rows": [asdict(r) for r in rows],
            "summary": summary(rows),
        }
        write_result(args.out, "runtime", args, results)
    return 0


def conditions() -> dict[str, object]:
    """The load at the start and the end (the machine itself is in the result file's ``machine``)."""
    return {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "load_average": os.getloadavg()}
