"""``anomask bench int8``: what INT8 quantization of a checkpoint's deployed graph costs and changes.

A checkpoint is exported as ``anomask export`` does (fp32, fused score; an exported ``.onnx``
is taken as it is), then quantized as a
TensorRT 11 INT8 engine build does it (``precision.quantize_int8``: symmetric Q/DQ on the
network's Conv/MatMul/Gemm, min/max ranges over ``--calib-frames`` images of the synthetic
default's ``train`` split, read one batch at a time). Measured, in a fresh process:

- calibration: the peak resident set of the process while it runs (``VmHWM``, reset just before;
  the fp32 graph is loaded by then) and its CPU time;
- the Q/DQ graph: the TensorRT parser check (``op_support.tensorrt_problems``) and how many
  nodes read dequantized tensors;
- accuracy: both graphs in ONNX Runtime (CPU) on ``--test-frames`` images of the ``val`` split:
  the share of ``semantic`` pixels that agree with fp32 (mean and worst frame), of ``open_set``
  pixels at the checkpoint's calibrated ``SCORE@tpr95`` threshold (when it has one), and the
  mean absolute change of the anomaly score.

Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from anomask.bench.model import read_hwm, reset_hwm, resolution
from anomask.bench.results import add_out_argument, write_result
from anomask.errors import AnomaskError

if TYPE_CHECKING:
    import onnx

    from anomask.export.export_info import ExportSettings
    from anomask.models.metadata import ModelMetadata

MIB = 2**20
DEFAULT_SIZE = (512, 1024)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source", type=Path, help="a trained checkpoint (.safetensors), or its exported fp32 graph (.onnx)"
    )
    parser.add_argument(
        "--size", type=resolution, help="checkpoints: camera frame size HxW of the export (default 512x1024)"
    )
    parser.add_argument("--network-size", type=resolution, help="checkpoints: network resolution HxW (default: --size)")
    parser.add_argument(
        "--calib-frames",
        type=lambda text: [int(v) for v in text.split(",")],
        default=[16, 64],
        help="comma-separated calibration image counts, one fresh process each (default 16,64: memory must not "
        "grow with them)",
    )
    parser.add_argument("--test-frames", type=int, default=8, help="images compared with fp32 (default 8)")
    parser.add_argument(
        "--dataset", type=Path, help="root of a synthetic dataset (default: the synthetic default, generated once)"
    )
    parser.add_argument("--threads", type=int, help="torch and ONNX Runtime CPU threads (default: their choice)")
    add_out_argument(parser)


def _split_images(dataset: Path, split: str) -> Path:
    folder = dataset / "leftImg8bit" / split
    if not folder.is_dir():
        raise AnomaskError(f"--dataset {dataset}: no {folder.relative_to(dataset)} (not a synthetic dataset)")
    return folder


def _fp32_graph(
    source: Path, size: tuple[int, int] | None, network_size: tuple[int, int] | None, threads: int | None
) -> tuple[onnx.ModelProto, ModelMetadata, ExportSettings]:
    """The fp32 graph, its model metadata and export settings: an exported ``.onnx`` as it is,
    or a checkpoint exported as ``anomask export`` does (batch 1, its own score)."""
    import onnx

    from anomask.export.onnx_export import load_onnx, read_export_info

    if source.suffix.lower() == ".onnx":
        model = load_onnx(source)
        info = read_export_info(model, str(source))
        return model, info.metadata, info.settings

    import torch

    from anomask.export.export_info import ExportSettings
    from anomask.export.graph import build_heads
    from anomask.export.onnx_export import export_onnx
    from anomask.models.checkpoint import load_checkpoint

    if threads:
        torch.set_num_threads(threads)
    network, metadata = load_checkpoint(source)
    size = size or DEFAULT_SIZE
    network_size = network_size or size
    settings = ExportSettings(
        input_size=size, network_size=network_size, output_size=network_size, score=metadata.score, batch=1
    )
    with tempfile.TemporaryDirectory(prefix="anomask-bench-int8-") as folder:
        path = Path(folder, "fp32.onnx")
        export_onnx(network, build_heads(metadata, settings), metadata, settings, path)
        return onnx.load(str(path)), metadata, settings


def measure(
    source: Path,
    size: tuple[int, int] | None,
    network_size: tuple[int, int] | None,
    calib: Path,
    calib_frames: int,
    test: Path,
    test_frames: int,
    threads: int | None,
) -> dict[str, Any]:
    """One measurement in this process (see the module docstring)."""
    import onnxruntime as ort
    import psutil

    from anomask.export.calibration import calibration_batches, calibration_images
    from anomask.export.op_support import tensorrt_problems
    from anomask.export.precision import quantize_int8

    model, metadata, settings = _fp32_graph(source, size, network_size, threads)
    threshold = metadata.thresholds.get(f"{settings.score}@tpr95")

    before = psutil.Process().memory_info().rss
    hwm_ok = reset_hwm()
    cpu_start = time.process_time()
    quantized = quantize_int8(model, calibration_batches(calib, settings, calib_frames))
    cpu = time.process_time() - cpu_start
    peak = read_hwm() if hwm_ok else None

    dequantized = {n.output[0] for n in quantized.graph.node if n.op_type == "DequantizeLinear"}
    int8_nodes = sum(1 for n in quantized.graph.node if n.op_type != "QuantizeLinear" and set(n.input) & dequantized)
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    sessions = [
        ort.InferenceSession(m.SerializeToString(), options, providers=["CPUExecutionProvider"])
        for m in (model, quantized)
    ]
    feeds_threshold = np.array(0.5 if threshold is None else threshold, np.float32)
    semantic, open_set, score_change = [], [], []
    for frames in calibration_batches(test, settings, test_frames):
        want, got = (
            dict(zip([o.name for o in s.get_outputs()], s.run(None, {"frames": frames, "threshold": feeds_threshold})))
            for s in sessions
        )
        semantic.append(float(np.mean(want["semantic"] == got["semantic"])))
        open_set.append(float(np.mean(want["open_set"] == got["open_set"])))
        score_change.append(float(np.mean(np.abs(want["anomaly"].astype(np.float32) - got["anomaly"]))))
    return {
        "size": "x".join(map(str, settings.input_size)),
        "network_size": "x".join(map(str, settings.network_size)),
        "classes": len(metadata.classes),
        "backbone": metadata.architecture.backbone,
        "score": settings.score,
        "threshold": threshold,
        "calib_frames": len(calibration_images(calib, calib_frames)),
        "test_frames": len(semantic),
        "peak_rss_mib": None if peak is None else peak / MIB,
        "rss_before_mib": before / MIB,
        "calibration_cpu_s": cpu,
        "int8_nodes": int8_nodes,
        "tensorrt_problems": len(tensorrt_problems(quantized)),
        "semantic_agreement": float(np.mean(semantic)),
        "semantic_agreement_worst": min(semantic),
        "open_set_agreement": None if threshold is None else float(np.mean(open_set)),
        "anomaly_mean_abs_change": float(np.mean(score_change)),
    }


def measure_isolated(*args: Any) -> dict[str, Any]:
    """:func:`measure` in a fresh spawned process: its peak memory is calibration's alone."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(measure, args)


def run(args: argparse.Namespace) -> int:
    if min(args.calib_frames) < 1 or args.test_frames < 1:
        raise AnomaskError("--calib-frames and --test-frames must be at least 1")
    if not args.source.is_file():
        raise AnomaskError(f"{args.source}: checkpoint or ONNX file not found")
    onnx_source = args.source.suffix.lower() == ".onnx"
    if onnx_source and (args.size or args.network_size):
        raise AnomaskError(f"{args.source}: --size and --network-size apply to checkpoints; an ONNX file has its own")
    if args.dataset is None:
        from anomask.evaluation.eval_data import default_synthetic_root

        dataset = default_synthetic_root()
    else:
        dataset = args.dataset
    calib, test = _split_images(dataset, "train"), _split_images(dataset, "val")
    rows = []
    for count in args.calib_frames:
        result = measure_isolated(
            args.source, args.size, args.network_size, calib, count, test, args.test_frames, args.threads
        )
        if not rows:
            print(
                f"anomask bench int8: {args.source} ({result['backbone']}, {result['classes']} classes, score "
                f"{result['score']}), frames {result['size']}, network {result['network_size']}, batch 1"
            )
        rows.append(result)
        peak = "n/a" if result["peak_rss_mib"] is None else f"{result['peak_rss_mib']:.0f} MiB"
        print(
            f"calibration: {result['calib_frames']} train images, peak RSS {peak} "
            f"({result['rss_before_mib']:.0f} MiB before), CPU {result['calibration_cpu_s']:.1f} s"
        )
        print(
            f"  Q/DQ graph: {result['int8_nodes']} nodes read INT8 tensors, TensorRT check: "
            f"{result['tensorrt_problems']} problems"
        )
        open_set = (
            "n/a (no calibrated threshold)"
            if result["open_set_agreement"] is None
            else f"{100 * result['open_set_agreement']:.2f} % at {result['threshold']:.4g}"
        )
        print(
            f"  vs fp32 on {result['test_frames']} val images: semantic {100 * result['semantic_agreement']:.2f} % "
            f"(worst {100 * result['semantic_agreement_worst']:.2f} %), open_set {open_set}, "
            f"anomaly mean |change| {result['anomaly_mean_abs_change']:.3g}",
            flush=True,
        )
    if args.out:
        write_result(args.out, "int8", args, {"source": str(args.source), "rows": rows}, args.threads)
    return 0
