"""``anomask bench model``: forward latency and peak memory of the network.

Latency is the median (and minimum) wall time of ``--iterations`` forwards after
``--warmup`` untimed ones, in inference mode (``--train-step``: forward + backward in
training mode, the mean of every output as the loss, for sizing training presets). The
process CPU time per iteration is printed too: on a shared machine it moves much less with
other processes' load than the wall time does. Peak memory is
``torch.cuda.max_memory_allocated`` on CUDA; on the CPU it is the rise of the process's
resident-set high-water mark (``VmHWM``, reset through ``/proc/self/clear_refs`` before the
first forward) above the resident set before it, because Python-level tracers do not see
torch's allocator. Each case runs in a fresh process. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from pathlib import Path

import psutil
import torch

from anomask.bench.results import add_out_argument, write_result
from anomask.errors import AnomaskError
from anomask.models.backbones import BACKBONES
from anomask.models.config import ModelConfig
from anomask.models.network import build_model

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def resolution(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not HEIGHTxWIDTH, e.g. 512x1024") from error
    if height % 32 or width % 32 or height <= 0 or width <= 0:
        raise argparse.ArgumentTypeError(f"{text}: height and width must be positive multiples of 32")
    return height, width


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--presets", default="default,small", help="comma-separated model presets (default, small)")
    parser.add_argument(
        "--backbones",
        help=f"comma-separated backbones to run every preset with ({', '.join(BACKBONES)}; default: the preset's own)",
    )
    parser.add_argument(
        "--resolutions",
        type=lambda s: [resolution(r) for r in s.split(",")],
        default=[(512, 1024), (1024, 2048)],
        help="comma-separated HEIGHTxWIDTH (multiples of 32)",
    )
    parser.add_argument("--iterations", type=int, default=5, help="timed forwards per case")
    parser.add_argument("--warmup", type=int, default=1, help="untimed forwards first")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument(
        "--train-step",
        action="store_true",
        help="time forward + backward in training mode (loss: the mean of every output) instead",
    )
    add_out_argument(parser)


def reset_hwm() -> bool:
    """Reset the process's resident-set high-water mark (Linux ``clear_refs`` 5)."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return read_hwm() is not None


def read_hwm() -> int | None:
    """``VmHWM`` in bytes, or None where /proc has no such line."""
    for line in _STATUS.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def _outputs_mean(outputs: object) -> torch.Tensor:
    """A stand-in loss touching every output (aux predictions included)."""
    if isinstance(outputs, torch.Tensor):
        return outputs.float().mean()
    values = outputs.values() if isinstance(outputs, dict) else outputs
    return sum((_outputs_mean(v) for v in values), torch.zeros(()))


def measure(
    config: ModelConfig,
    size: tuple[int, int],
    batch: int,
    device: torch.device,
    iterations: int,
    warmup: int,
    train_step: bool = False,
    threads: int | None = None,
) -> dict:
    """One case in this process (see :func:`measure_isolated`)."""
    if threads:
        torch.set_num_threads(threads)
    model = build_model(config).to(device).train(train_step)
    images = torch.randn(batch, 3, *size, device=device)
    cuda = device.type == "cuda"

    def forward() -> None:
        if train_step:
            _outputs_mean(model(images)).backward()
            model.zero_grad(set_to_none=True)
        else:
            with torch.inference_mode():
                model(images)
        if cuda:
            torch.cuda.synchronize(device)

    # the baseline is taken before the first forward: allocators keep freed blocks, so
    # memory rises during warm-up and is reused afterwards
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        base = psutil.Process().memory_info().rss
        hwm_ok = reset_hwm()
    times = []
    for _ in range(warmup):
        forward()
    cpu_start = time.process_time()
    for _ in range(iterations):
        start = time.perf_counter()
        forward()
        times.append(time.perf_counter() - start)
    cpu = (time.process_time() - cpu_start) / iterations
    if cuda:
        peak = torch.cuda.max_memory_allocated(device) - base
    else:
        hwm = read_hwm() if hwm_ok else None
        peak = None if hwm is None else max(hwm - base, 0)
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "median": statistics.median(times),
        "min": min(times),
        "peak": peak,
        "cpu": cpu,
    }


def measure_isolated(*args: object) -> dict:
    """:func:`measure` in a fresh spawned process, so memory a previous case left with the
    allocator (and its caches) neither hides nor inflates this case's peak."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(measure, args)


def run(args: argparse.Namespace) -> int:
    if args.iterations < 1 or args.warmup < 0 or args.batch < 1:
        raise AnomaskError("--iterations and --batch must be >= 1, --warmup >= 0")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AnomaskError("--device cuda but torch.cuda.is_available() is False")
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    backbones = [b.strip() for b in args.backbones.split(",") if b.strip()] if args.backbones else []
    unknown = sorted(set(backbones) - set(BACKBONES))
    if unknown:
        raise AnomaskError(f"unknown backbone(s) {', '.join(unknown)}; valid: {', '.join(BACKBONES)}")
    # the weights do not change the timing: a backbone other than the preset's is randomly initialised
    configs = [
        (name, ModelConfig.preset(name, **({"backbone": b, "pretrained_backbone": False} if b else {})))
        for name in presets
        for b in backbones or [None]
    ]
    threads = args.threads or torch.get_num_threads()
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {threads} threads"
    memory = "torch.cuda.max_memory_allocated" if device.type == "cuda" else "RSS high-water rise"
    what = "forward + backward (training mode)" if args.train_step else "forward (inference mode)"
    print(
        f"anomask bench model: {what}, {where}, batch {args.batch}, "
        f"median of {args.iterations} after {args.warmup} warm-up"
    )
    header = (
        f"{'preset':<9} {'backbone':<18} {'input':>10} {'params':>8} {'median ms':>10} {'min ms':>9} "
        f"{'cpu ms':>9} {'peak MiB':>9}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for name, config in configs:
        for height, width in args.resolutions:
            result = measure_isolated(
                config, (height, width), args.batch, device, args.iterations, args.warmup, args.train_step, threads
            )
            row = {
                "preset": name,
                "backbone": config.backbone,
                "input": f"{height}x{width}",
                "params_m": result["params"] / 1e6,
                "median_ms": result["median"] * 1e3,
                "min_ms": result["min"] * 1e3,
                "cpu_ms": result["cpu"] * 1e3,
                "peak_mib": None if result["peak"] is None else result["peak"] / 2**20,
            }
            rows.append(row)
            peak = "n/a" if row["peak_mib"] is None else f"{row['peak_mib']:.0f}"
            print(
                f"{name:<9} {config.backbone:<18} {row['input']:>10} {row['params_m']:>7.1f}M "
                f"{row['median_ms']:>10.1f} {row['min_ms']:>9.1f} {row['cpu_ms']:>9.1f} {peak:>9}",
                flush=True,
            )
    print(
        f"peak memory: {memory} over the forwards, above the model and input; "
        "cpu ms: process CPU time per iteration, all threads (robust to other load on the machine)"
    )
    if args.out:
        results = {"mode": what, "device": where, "batch": args.batch, "iterations": args.iterations, "rows": rows}
        write_result(args.out, "model", args, results, torch_threads=threads)
    return 0
