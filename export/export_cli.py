"""``anomask export``: checkpoint -> ONNX (fused heads, metadata inside) [-> parity check]
[-> TensorRT engine] [-> Torch-TensorRT program]; or an existing ONNX -> engine
(``--build-only``, the docker first-boot step)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np

from anomask.arguments import NETWORK_STRIDE, network_side, positive_int
from anomask.errors import AnomaskError
from anomask.export.engine_cache import PRECISIONS
from anomask.export.export_info import ExportSettings
from anomask.export.parity import compare_outputs, parity_report
from anomask.export.runtime_torch import DEFAULT_INPUT_SIZE
from anomask.files import require_writable_dir, require_writable_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source", help="checkpoint (.safetensors) to export, or an exported .onnx with --engine/--build-only"
    )
    parser.add_argument("--out", help="ONNX file to write (default: the checkpoint's name with .onnx)")
    graph = parser.add_argument_group("graph")
    graph.add_argument(
        "--height",
        type=int,
        default=DEFAULT_INPUT_SIZE[0],
        help="camera frame height the graph takes (default %(default)s)",
    )
    graph.add_argument(
        "--width", type=int, default=DEFAULT_INPUT_SIZE[1], help="camera frame width (default %(default)s)"
    )
    graph.add_argument(
        "--network-size",
        type=network_side,
        nargs=2,
        metavar=("H", "W"),
        help=f"resolution the network runs at, multiples of {NETWORK_STRIDE} (default: the frame size)",
    )
    graph.add_argument(
        "--output-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="resolution of every output, resized inside the graph as the node would: a fixed camera size "
        "(default: the network size)",
    )
    graph.add_argument("--score", help="anomaly score fused into the graph (default: the checkpoint's)")
    graph.add_argument("--refine", action="store_true", help="apply the Mask2Anomaly refinement mask to the score")
    graph.add_argument(
        "--flip",
        action="store_true",
        help="average the anomaly score with the left-right flipped frame's (Mask2Anomaly's official inference); "
        "runs the network and heads twice: doubles the cost",
    )
    graph.add_argument("--bgr", action="store_true", help="frames arrive BGR (default RGB)")
    graph.add_argument("--fp16-anomaly", action="store_true", help="anomaly output as float16 (halves its download)")
    batch = graph.add_mutually_exclusive_group()
    batch.add_argument(
        "--batch", type=positive_int, default=1, help="static batch: number of cameras per run (default %(default)s)"
    )
    batch.add_argument(
        "--dynamic-batch", type=positive_int, metavar="MAX", help="dynamic batch 1..MAX instead of a static one"
    )
    check = parser.add_argument_group("parity")
    check.add_argument(
        "--check",
        action="store_true",
        help="compare ONNX Runtime with PyTorch per output on a few frames; for an .onnx SOURCE: check it "
        "against TensorRT's ONNX parser rules (ops, element types, static shapes), exit 2 listing the problems",
    )
    check.add_argument("--check-frames", type=positive_int, default=4, help="frames for --check (default %(default)s)")
    engine = parser.add_argument_group("TensorRT")
    engine.add_argument(
        "--engine", action="store_true", help="build (or reuse) the TensorRT engine for this GPU next to the ONNX"
    )
    engine.add_argument(
        "--build-only",
        action="store_true",
        help="SOURCE is an .onnx: make sure its engine exists for this GPU, then exit",
    )
    engine.add_argument(
        "--precision", choices=PRECISIONS, default="fp16", help="engine precision (default %(default)s)"
    )
    engine.add_argument("--calib-images", help="folder of images for INT8 entropy calibration")
    engine.add_argument(
        "--workspace-gib", type=float, default=4.0, help="TensorRT workspace limit in GiB (default %(default)s)"
    )
    engine.add_argument("--dla-core", type=int, help="build for this DLA core (Jetson, TensorRT 10)")
    engine.add_argument("--force", action="store_true", help="rebuild the engine even if the cached one matches")
    engine.add_argument(
        "--torch-tensorrt", metavar="OUT.ep", help="also compile the checkpoint with Torch-TensorRT to OUT.ep"
    )


def settings_from_args(args: argparse.Namespace, score: str) -> ExportSettings:
    input_size = (args.height, args.width)
    network_size = tuple(args.network_size or input_size)
    return ExportSettings(
        input_size=input_size,
        network_size=network_size,
        output_size=tuple(args.output_size or network_size),
        score=score,
        refine=args.refine,
        input_format="BGR" if args.bgr else "RGB",
        batch=args.dynamic_batch or args.batch,
        dynamic_batch=args.dynamic_batch is not None,
        anomaly_dtype="float16" if args.fp16_anomaly else "float32",
        flip=args.flip,
    )


def run(args: argparse.Namespace) -> int:
    source = Path(args.source)
    if args.torch_tensorrt:
        require_writable_file(args.torch_tensorrt, "--torch-tensorrt")
    if source.suffix.lower() == ".onnx":
        if args.check and not (args.engine or args.build_only):
            from anomask.export.op_support import check_tensorrt_file

            print(check_tensorrt_file(source))
            return 0
        require_writable_dir(source.parent, "the engine folder (beside the ONNX file)")
        if not (args.engine or args.build_only):
            raise AnomaskError(
                f"{source}: already an ONNX file; pass --engine (or --build-only) to build its TensorRT engine, "
                "or --check to check it against TensorRT's parser rules"
            )
        print(build_engine(source, args))
        return 0
    if args.build_only:
        raise AnomaskError(f"{source}: --build-only takes an exported .onnx file, not a checkpoint")
    out = Path(args.out) if args.out else source.with_suffix(".onnx")
    require_writable_file(out, "--out" if args.out else "the ONNX file (beside the checkpoint)")
    onnx_path, network, metadata, settings = export_checkpoint(source, out, args)
    print(
        f"wrote {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB): input {settings.input_size} "
        f"{settings.input_format}, "
        f"network {settings.network_size}, outputs {settings.output_size}, score {settings.score}"
        f"{' refined' if settings.refine else ''}, batch {'1..' if settings.dynamic_batch else ''}{settings.batch}"
    )
    status = 0
    if args.check:
        passed, report = check_parity(onnx_path, network, metadata, settings, args.check_frames)
        print(report)
        status = 0 if passed else 1
    if args.engine:
        print(build_engine(onnx_path, args))
    if args.torch_tensorrt:
        from anomask.export.torch_tensorrt_builder import compile_torch_tensorrt

        print(compile_torch_tensorrt(source, settings, args.torch_tensorrt, args.precision, args.workspace_gib))
    return status


def export_checkpoint(checkpoint: Path, out: Path, args: argparse.Namespace):
    from anomask.export.graph import build_heads
    from anomask.export.onnx_export import export_onnx
    from anomask.models.checkpoint import load_checkpoint

    network, metadata = load_checkpoint(checkpoint)
    settings = settings_from_args(args, args.score or metadata.score)
    command = "anomask export " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    export_onnx(network, build_heads(metadata, settings), metadata, settings, out, command=command)
    return out, network, metadata, settings


def check_parity(
    onnx_path: Path, network, metadata, settings: ExportSettings, frames: int, threshold: float = 0.5
) -> tuple[bool, str]:
    """ONNX Runtime (CPU) vs the PyTorch ``DeployGraph`` on ``frames`` random frames."""
    from anomask.export.onnx_export import example_frames
    from anomask.export.runtime_onnx import OnnxRuntime
    from anomask.export.runtime_torch import TorchRuntime

    onnx_runtime = OnnxRuntime(onnx_path, providers=["CPUExecutionProvider"])
    torch_runtime = TorchRuntime(network, metadata, settings, source="checkpoint")
    rng_frames = np.concatenate([example_frames(settings, seed=seed) for seed in range(1, frames + 1)])[:frames]
    results = []
    for start in range(0, frames, settings.batch):
        chunk = rng_frames[start : start + settings.batch]
        results.append(compare_outputs(torch_runtime.run(chunk, threshold), onnx_runtime.run(chunk, threshold)))
    worst = [
        min(column, key=lambda r: (r.passed, -r.value if r.kind == "float" else r.value)) for column in zip(*results)
    ]
    header = f"parity ONNX Runtime vs PyTorch on {frames} frames, threshold {threshold}:"
    return all(r.passed for r in worst), "\n".join([header, parity_report(worst)])


def build_engine(onnx_path: Path, args: argparse.Namespace) -> Path:
    from anomask.export.tensorrt_builder import EngineOptions, ensure_engine

    options = EngineOptions(
        precision=args.precision,
        workspace_gib=args.workspace_gib,
        calib_images=args.calib_images,
        dla_core=args.dla_core,
        force=args.force,
    )
    return ensure_engine(onnx_path, options, log=lambda line: print(line, file=sys.stderr))
