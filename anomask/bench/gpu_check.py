"""One check of the whole GPU path, for the day a GPU is lent: ``make gpu-check``.

    python -m anomask.bench.gpu_check [--out build/gpu-check.json] [--stages NAME ...]

Each stage runs in its own process (a crash or a hung CUDA call costs one stage, not the
run) under its own timeout, prints ``PASS``, ``FAIL`` or ``SKIP`` with its seconds, and all
of them land in one JSON file. A stage whose library or GPU is missing says SKIP with the
reason; on a CPU-only machine only ``environment`` and ``legality`` run. Sizes and iteration
counts are small by design: the whole check stays under ``BUDGET_S`` on one GPU, so that it can
be run and rerun within 15 minutes of lent GPU time. Exit status 1 when any stage failed.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import importlib.metadata
import json
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BUDGET_S = 480.0
"""The whole check, on one GPU (8 minutes); each stage gets at most what is left of it."""
RESULT_PREFIX = "GPU-CHECK-RESULT "
"""How a stage process hands its result to the runner: one stdout line, then JSON."""
CHECK_SIZE = (512, 1024)
"""Camera = network = output size of the exported graph the engine stages share."""
TORCH_SIZES = ((512, 1024), (1024, 2048))
PRESET = "small"


class Skip(Exception):
    """The stage cannot run here (no GPU, library missing); the message says why."""


@dataclass(frozen=True)
class Stage:
    name: str
    timeout_s: float
    run: Callable[[Path], dict[str, Any]]
    """Takes the shared work folder, returns the stage's figures; raises Skip or fails."""


# ---------------------------------------------------------------- helpers shared by stages


def require_cuda() -> None:
    import torch

    if not torch.cuda.is_available():
        raise Skip("no CUDA device (torch.cuda.is_available() is False)")


def require_module(name: str, extra: str = "gpu") -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise Skip(f"{name} not importable ({error}); install the '{extra}' extra") from error


def small_network():
    """The randomly initialised small-preset network and its metadata (fixed seed)."""
    import torch

    from anomask.models.config import ModelConfig
    from anomask.models.metadata import ClassInfo, ModelMetadata
    from anomask.models.network import build_model

    config = ModelConfig.preset(PRESET)
    classes = tuple(ClassInfo(f"class{i}", i >= config.num_classes - 8, (i, i, i)) for i in range(config.num_classes))
    torch.manual_seed(0)
    return build_model(config).eval(), ModelMetadata(classes=classes, architecture=config)


def check_settings(size: tuple[int, int] = CHECK_SIZE):
    from anomask.export.export_info import ExportSettings

    return ExportSettings(input_size=size, network_size=size, output_size=size, batch=1)


def shared_onnx(work: Path) -> Path:
    """The small preset's graph at CHECK_SIZE, exported once (by ``legality``) for every stage."""
    path = work / f"{PRESET}_{CHECK_SIZE[0]}x{CHECK_SIZE[1]}.onnx"
    if not path.is_file():
        from anomask.export.graph import build_heads
        from anomask.export.onnx_export import export_onnx

        network, metadata = small_network()
        settings = check_settings()
        export_onnx(network, build_heads(metadata, settings), metadata, settings, path)
    return path


def cpu_reference(onnx_path: Path):
    """Frames and ONNX Runtime's CPU outputs for them: what every other backend is held to."""
    from anomask.export.onnx_export import example_frames, read_export_info_file
    from anomask.export.runtime_onnx import OnnxRuntime

    frames = example_frames(read_export_info_file(onnx_path).settings)
    runtime = OnnxRuntime(onnx_path, providers=["CPUExecutionProvider"])
    outputs = {k: v.copy() for k, v in runtime.run(frames, 0.5).items()}
    runtime.close()
    return frames, outputs


def parity(reference: dict, candidate: dict) -> dict[str, Any]:
    """Label agreement of ``semantic``, worst score difference, every output's verdict."""
    import numpy as np

    from anomask.export.parity import compare_outputs

    results = compare_outputs(reference, candidate)
    return {
        "semantic_agreement": float(np.mean(reference["semantic"] == candidate["semantic"])),
        "anomaly_max_diff": float(np.max(np.abs(reference["anomaly"].astype(np.float32) - candidate["anomaly"]))),
        "outputs_within_tolerance": all(r.passed for r in results),
        "outputs_off": [r.line() for r in results if not r.passed],
    }


def median_ms(run: Callable[[], Any], iterations: int = 5, warmup: int = 2) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times), 2)


def anomask_command(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "anomask", *args], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"anomask {' '.join(args)} exited {result.returncode}: {' | '.join(tail)}")
    return result


# ---------------------------------------------------------------- the stages


def environment(work: Path) -> dict[str, Any]:
    """What this machine has; fails only when both ONNX Runtime distributions are installed
    (they overwrite each other's module)."""
    import torch

    figures: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
    }
    distributions = {}
    for name in ("onnxruntime", "onnxruntime-gpu"):
        try:
            distributions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    figures["onnxruntime_distributions"] = distributions
    if len(distributions) > 1:
        raise RuntimeError(f"both {' and '.join(distributions)} installed: keep one (extra 'cpu' or 'gpu')")
    try:
        import onnxruntime

        figures["onnxruntime_providers"] = onnxruntime.get_available_providers()
    except ImportError as error:
        figures["onnxruntime_providers"] = f"not importable: {error}"
    for module in ("tensorrt", "torch_tensorrt"):
        try:
            figures[module] = importlib.import_module(module).__version__
        except Exception as error:  # an importable module that fails to load its libraries counts too
            figures[module] = f"not importable: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
    return figures


def legality(work: Path) -> dict[str, Any]:
    """The small preset's exported graph against TensorRT's parser rules (no TensorRT needed)."""
    from anomask.export.onnx_export import load_onnx
    from anomask.export.op_support import tensorrt_problems

    path = shared_onnx(work)
    problems = tensorrt_problems(load_onnx(path))
    if problems:
        raise RuntimeError(f"{len(problems)} problem(s): " + "; ".join(problems))
    return {"onnx": path.name, "size_mb": round(path.stat().st_size / 1e6, 1), "problems": 0}


def torch_cuda(work: Path) -> dict[str, Any]:
    """PyTorch runtime on CUDA, fp32 and fp16, against the CPU at two camera sizes."""
    require_cuda()
    from anomask.export.onnx_export import example_frames
    from anomask.export.runtime_torch import TorchRuntime

    network, metadata = small_network()
    figures = {}
    for size in TORCH_SIZES:
        settings = check_settings(size)
        frames = example_frames(settings)
        row = {}
        cpu = TorchRuntime(copy.deepcopy(network), metadata, settings, device="cpu")
        reference = {k: v.copy() for k, v in cpu.run(frames, 0.5).items()}
        row["cpu_ms"] = median_ms(lambda runtime=cpu: runtime.run(frames, 0.5), iterations=2, warmup=1)
        for name, half in (("cuda_fp32", False), ("cuda_fp16", True)):
            runtime = TorchRuntime(copy.deepcopy(network), metadata, settings, device="cuda", half=half)
            outputs = runtime.run(frames, 0.5)
            row[name] = {**parity(reference, outputs), "ms": median_ms(lambda r=runtime: r.run(frames, 0.5))}
        figures[f"{size[0]}x{size[1]}"] = row
    return figures


def bench_runtime(work: Path) -> dict[str, Any]:
    """``anomask bench runtime`` with pytorch then pytorch-fp16 opened on one network."""
    require_cuda()
    out = work / "bench-runtime.json"
    size = f"{CHECK_SIZE[0]}x{CHECK_SIZE[1]}"
    anomask_command(
        "bench", "runtime", "--backends", "pytorch", "pytorch-fp16", "--sizes", size, "--batches", "1",
        "--iterations", "5", "--workdir", str(work / "bench"), "--out", str(out),
    )  # fmt: skip
    return {"result_file": str(out), "result": json.loads(out.read_text())}


def amp_training(work: Path) -> dict[str, Any]:
    """Four mixed-precision training iterations of the small preset on CUDA (checkpoints at 2
    and 4), then the end of the run is removed and ``--resume`` trains iterations 3-4 again
    from the iteration-2 checkpoint (settings from the run folder)."""
    require_cuda()
    out = work / "train"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    first = anomask_command(
        "train", "--preset", PRESET, "--device", "cuda", "--out", str(out), "--no-progress",
        "--iterations", "4", "--set", "solver.amp=true", "--set", "checkpoint.every=2",
        "--set", "validation.max_images=2",
    )  # fmt: skip
    first_s = time.perf_counter() - started
    for end in [*out.glob("*/final"), *out.glob("*/checkpoints/iter_00000004")]:
        shutil.rmtree(end)
    resumed = anomask_command("train", "--resume", "--device", "cuda", "--out", str(out), "--no-progress")
    finals = sorted(str(p.relative_to(out)) for p in out.glob("*/final/model.safetensors"))
    if not finals:
        raise RuntimeError(f"the resumed run wrote no final checkpoint under {out}")

    def validation(result: subprocess.CompletedProcess) -> list[str]:
        return [line for line in result.stdout.splitlines() if "iteration 4:" in line]

    return {
        "first_run_s": round(first_s, 1),
        "finals": finals,
        "validation_first": validation(first),
        "validation_resumed": validation(resumed),
    }


def tensorrt_engines(work: Path) -> dict[str, Any]:
    """TensorRT fp32, fp16 and INT8 engines of the shared graph: build, cache hit, run, parity
    against ONNX Runtime on the CPU."""
    require_cuda()
    require_module("tensorrt")
    import cv2

    from anomask.export.runtime_tensorrt import TensorRTRuntime
    from anomask.export.tensorrt_builder import EngineOptions, ensure_engine

    onnx_path = shared_onnx(work)
    frames, reference = cpu_reference(onnx_path)
    calib = work / "calib"
    calib.mkdir(exist_ok=True)
    for index, frame in enumerate(frames):
        cv2.imwrite(str(calib / f"frame{index}.png"), frame[..., ::-1])
    figures = {}
    for precision in ("fp32", "fp16", "int8"):
        options = EngineOptions(precision=precision, calib_images=calib if precision == "int8" else None)
        started = time.perf_counter()
        engine = ensure_engine(onnx_path, options)
        build_s = time.perf_counter() - started
        lines: list[str] = []
        started = time.perf_counter()
        again = ensure_engine(onnx_path, options, log=lines.append)
        cached_s = time.perf_counter() - started
        runtime = TensorRTRuntime(engine)
        outputs = {k: v.copy() for k, v in runtime.run(frames, 0.5).items()}
        figures[precision] = {
            "build_s": round(build_s, 1),
            "cache_hit": again == engine and cached_s < build_s,
            "cache_log": lines,
            "ms": median_ms(lambda r=runtime: r.run(frames, 0.5)),
            **parity(reference, outputs),
        }
        runtime.close()
    if not all(row["cache_hit"] for row in figures.values()):
        raise RuntimeError(f"an engine was rebuilt instead of loaded from the cache: {figures}")
    return figures


def torch_tensorrt_stage(work: Path) -> dict[str, Any]:
    """Torch-TensorRT: compile the small preset, save, load, run, parity against the CPU."""
    require_cuda()
    torch_tensorrt = require_module("torch_tensorrt")
    import torch

    from anomask.export.onnx_export import example_frames
    from anomask.export.runtime_torch import TorchRuntime
    from anomask.export.torch_tensorrt_builder import compile_torch_tensorrt
    from anomask.models.checkpoint import save_checkpoint

    network, metadata = small_network()
    checkpoint = save_checkpoint(work / "small.safetensors", network, metadata)
    settings = check_settings()
    frames = example_frames(settings)
    reference = TorchRuntime(copy.deepcopy(network), metadata, settings, device="cpu").run(frames, 0.5)
    started = time.perf_counter()
    saved = compile_torch_tensorrt(checkpoint, settings, work / "small.ep", precision="fp16", workspace_gib=2.0)
    compile_s = time.perf_counter() - started
    module = torch_tensorrt.load(str(saved)).module()
    inputs = (torch.from_numpy(frames).cuda(), torch.tensor(0.5, device="cuda"))
    with torch.inference_mode():
        outputs = module(*inputs)
    names = list(reference)
    values = outputs.values() if isinstance(outputs, dict) else outputs
    candidate = {name: value.cpu().numpy() for name, value in zip(names, values)}
    return {"compile_s": round(compile_s, 1), "file_mb": round(saved.stat().st_size / 1e6, 1)} | parity(
        reference, candidate
    )


def onnxruntime_gpu(work: Path) -> dict[str, Any]:
    """ONNX Runtime's CUDA and TensorRT execution providers against its CPU provider."""
    require_cuda()
    ort = require_module("onnxruntime")
    from anomask.export.runtime_onnx import OnnxRuntime

    available = ort.get_available_providers()
    wanted = [p for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider") if p in available]
    if not wanted:
        raise Skip(f"this onnxruntime has no GPU provider ({', '.join(available)}): install the 'gpu' extra")
    onnx_path = shared_onnx(work)
    frames, reference = cpu_reference(onnx_path)
    figures: dict[str, Any] = {"missing": sorted({"CUDAExecutionProvider", "TensorrtExecutionProvider"} - set(wanted))}
    for provider in wanted:
        for fp16 in (False, True) if provider == "TensorrtExecutionProvider" else (False,):
            runtime = OnnxRuntime(onnx_path, providers=[provider, "CPUExecutionProvider"], fp16=fp16)
            if runtime.providers[0] != provider:
                raise RuntimeError(f"{provider} asked for, session runs on {runtime.providers}")
            outputs = {k: v.copy() for k, v in runtime.run(frames, 0.5).items()}
            name = provider.removesuffix("ExecutionProvider") + ("-fp16" if fp16 else "")
            figures[name] = {"ms": median_ms(lambda r=runtime: r.run(frames, 0.5)), **parity(reference, outputs)}
            runtime.close()
    return figures


def pytest_gpu(work: Path) -> dict[str, Any]:
    """The suite's tests marked ``gpu`` (``make test`` deselects them)."""
    require_cuda()
    root = Path(__file__).resolve().parents[2]  # the repository, for an editable install
    if not (root / "tests").is_dir():
        raise Skip(f"no test suite next to this installation ({root})")
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=root)
    summary = (result.stdout.strip().splitlines() or [""])[-1]
    if result.returncode == 5:
        raise Skip("no test is marked gpu")
    if result.returncode != 0:
        raise RuntimeError(f"pytest -m gpu exited {result.returncode}: {summary}")
    return {"summary": summary}


STAGES: tuple[Stage, ...] = (
    Stage("environment", 60, environment),
    Stage("legality", 180, legality),
    Stage("torch_cuda", 90, torch_cuda),
    Stage("bench_runtime", 90, bench_runtime),
    Stage("amp_training", 90, amp_training),
    Stage("tensorrt", 180, tensorrt_engines),
    Stage("torch_tensorrt", 120, torch_tensorrt_stage),
    Stage("onnxruntime_gpu", 90, onnxruntime_gpu),
    Stage("pytest_gpu", 120, pytest_gpu),
)


# ---------------------------------------------------------------- the runner


def run_stage_here(stage: Stage, work: Path) -> dict[str, Any]:
    """In the stage's own process: run it, return its record (never raises)."""
    try:
        return {"status": "PASS", "figures": stage.run(work)}
    except Skip as skip:
        return {"status": "SKIP", "reason": str(skip)}
    except Exception as error:  # the stage failed: one line says how
        first = str(error).splitlines()[0] if str(error) else ""
        return {"status": "FAIL", "reason": f"{type(error).__name__}: {first}"[:2000]}


def run_stage_process(stage: Stage, work: Path, timeout_s: float) -> dict[str, Any]:
    """Run ``stage`` in a child process under ``timeout_s``; its record plus its seconds."""
    command = [sys.executable, "-m", "anomask.bench.gpu_check", "--stage", stage.name, "--work", str(work)]
    started = time.perf_counter()
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        record = {"status": "FAIL", "reason": f"timed out after {timeout_s:.0f} s"}
    else:
        lines = [line for line in result.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
        if lines:
            record = json.loads(lines[-1].removeprefix(RESULT_PREFIX))
        else:
            tail = " | ".join(result.stderr.strip().splitlines()[-3:])
            record = {"status": "FAIL", "reason": f"stage process exited {result.returncode} without a result: {tail}"}
    return {"name": stage.name, **record, "seconds": round(time.perf_counter() - started, 1)}


def run_all(stages: tuple[Stage, ...], work: Path, budget_s: float = BUDGET_S, log=print) -> list[dict[str, Any]]:
    """Every stage in turn, each under min(its timeout, what is left of the budget)."""
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    records = []
    for stage in stages:
        left = budget_s - (time.perf_counter() - started)
        if left < 5:
            record = {"name": stage.name, "status": "SKIP", "reason": "time budget spent", "seconds": 0.0}
        else:
            record = run_stage_process(stage, work, min(stage.timeout_s, left))
        detail = record.get("reason", "")
        log(f"{record['status']:<4} {record['seconds']:6.1f} s  {stage.name:<16} {detail}".rstrip())
        records.append(record)
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("build/gpu-check.json"), help="JSON file (%(default)s)")
    parser.add_argument("--work", type=Path, help="folder for exported graphs and engines (default: next to --out)")
    names = [stage.name for stage in STAGES]
    parser.add_argument("--stages", nargs="+", choices=names, default=names, help="stages to run (default: all)")
    parser.add_argument("--stage", choices=names, help=argparse.SUPPRESS)  # inside a stage's own process
    args = parser.parse_args(argv)
    work = args.work or args.out.parent / "gpu-check-work"
    by_name = {stage.name: stage for stage in STAGES}
    if args.stage:
        print(RESULT_PREFIX + json.dumps(run_stage_here(by_name[args.stage], work), default=str), flush=True)
        return 0
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    started = time.perf_counter()
    records = run_all(tuple(by_name[name] for name in args.stages), work)
    report = {
        "started_utc": started_at,
        "host": platform.node(),
        "budget_s": BUDGET_S,
        "total_s": round(time.perf_counter() - started, 1),
        "stages": records,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    failed = [r["name"] for r in records if r["status"] == "FAIL"]
    print(f"wrote {args.out} ({report['total_s']} s); " + (f"FAILED: {', '.join(failed)}" if failed else "no failure"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
