"""``anomask bench node``: camera frames published over loopback into a ``segmentation_node``
process, outputs received back: end-to-end latency and the node's own overhead. Prints
numbers, asserts nothing.

Closed loop: the next frame is published once every output of the previous one arrived, so
no frame waits behind another and each latency is one frame's path: publish -> DDS ->
node (decode, batch, ``Runtime.run``, panoptic, resize, messages) -> DDS -> this process.

* end-to-end latency: last output received - frame published (this process's clock);
* node stages: the node's own ``/diagnostics`` p50/p99 (decode, inference, postprocess,
  publish, overhead = receive -> last publish minus inference);
* transport: end-to-end p50 minus the node's receive -> publish p50 (DDS both ways, the
  subscriber's deserialisation).

The model: ``--model`` (an exported file), else a randomly initialised ``--preset`` network
exported for ``--size`` frames (``--export-to`` keeps it for the next run).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from anomask.bench.results import add_out_argument, write_result
from anomask.errors import AnomaskError
from anomask_ros.bag.replay import READY_LINE, SpinningNode, node_command, start_logged, stop, wait_for_line
from anomask_ros.diagnostics import INFERENCE, task_of
from anomask_ros.image_codec import array_to_image
from anomask_ros.params import DEFAULT_OUTPUTS, OUTPUTS

STAGES = ("wait", "decode", "inference", "postprocess", "publish", "total", "overhead")


def _size(text: str) -> tuple[int, int]:
    height, _, width = text.partition("x")
    return int(height), int(width)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, help="exported model to run (default: export a random --preset model)")
    parser.add_argument(
        "--preset", default="small", help="model preset to export without --model (default %(default)s)"
    )
    parser.add_argument(
        "--size", type=_size, default=(1080, 1920), metavar="HxW", help="camera frame size (default 1080x1920)"
    )
    parser.add_argument(
        "--network-size",
        type=_size,
        default=(512, 1024),
        metavar="HxW",
        help="network resolution of the exported model (default 512x1024)",
    )
    parser.add_argument(
        "--output-size",
        type=_size,
        metavar="HxW",
        help="output resolution of the exported model (default: the network size)",
    )
    parser.add_argument("--export-to", type=Path, help="keep the exported model here (reused when it exists)")
    parser.add_argument("--frames", type=int, default=20, help="timed frames (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed frames first (default %(default)s)")
    parser.add_argument(
        "--outputs",
        nargs="+",
        default=list(DEFAULT_OUTPUTS),
        choices=OUTPUTS,
        help="node outputs (default: the node's)",
    )
    parser.add_argument(
        "--encoding", default="bgr8", choices=("rgb8", "bgr8"), help="camera encoding (default %(default)s)"
    )
    parser.add_argument("--threads", type=int, default=0, help="runtime_threads of the node (default 0: one per core)")
    parser.add_argument(
        "--output-resolution",
        default="input",
        choices=("input", "network"),
        help="the node's output_resolution (default %(default)s)",
    )
    add_out_argument(parser)


def export_bench_model(
    preset: str, size: tuple[int, int], network_size: tuple[int, int], output_size: tuple[int, int] | None, path: Path
) -> Path:
    """A randomly initialised ``preset`` network exported for ``size`` frames (ONNX)."""
    import torch

    from anomask.export.export_info import ExportSettings
    from anomask.export.graph import build_heads
    from anomask.export.onnx_export import export_onnx
    from anomask.models import ClassInfo, ModelConfig, ModelMetadata, build_model

    config = ModelConfig.preset(preset)
    classes = tuple(
        ClassInfo(f"class{i}", i >= config.num_classes - 2, (37 * i % 256, 91 * i % 256, 153 * i % 256))
        for i in range(config.num_classes)
    )
    metadata = ModelMetadata(classes=classes, architecture=config)
    torch.manual_seed(0)
    network = build_model(config).eval()
    settings = ExportSettings(
        input_size=size, network_size=network_size, output_size=output_size or network_size, score="eam"
    )
    export_onnx(network, build_heads(metadata, settings), metadata, settings, path)
    return path


class Loop(SpinningNode):
    """Publishes one frame at a time and collects its outputs and the node's diagnostics."""

    def __init__(self, outputs: list[str]) -> None:
        super().__init__("anomask_bench_node")
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.publisher = self.node.create_publisher(Image, "/bench/image", qos)
        self.outputs = outputs
        self.arrived: dict[tuple[int, int], dict[str, float]] = {}
        self.diagnostics: DiagnosticArray | None = None
        self.changed = threading.Condition()
        for name in outputs:
            self.node.create_subscription(Image, f"/bench/{name}", lambda msg, n=name: self._got(n, msg), qos)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._diagnostics, 10)

    def _got(self, name: str, msg: Image) -> None:
        now = time.perf_counter()
        with self.changed:
            self.arrived.setdefault((msg.header.stamp.sec, msg.header.stamp.nanosec), {})[name] = now
            self.changed.notify_all()

    def _diagnostics(self, msg: DiagnosticArray) -> None:
        with self.changed:
            self.diagnostics = msg

    def send(self, frame: Image, index: int, timeout_s: float) -> float:
        """Publishes ``frame`` stamped ``index`` s; seconds until its last output arrived."""
        key = (index, 0)
        frame.header = Header(stamp=Time(sec=index), frame_id="bench")
        start = time.perf_counter()
        self.publisher.publish(frame)
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.arrived.get(key, {})) == len(self.outputs), timeout_s):
                raise AnomaskError(f"no outputs for frame {index} within {timeout_s:.0f} s")
            return max(self.arrived.pop(key).values()) - start

    def node_stages(self) -> dict[str, tuple[float, float]]:
        values = {
            kv.key: kv.value
            for status in self.diagnostics.status
            if task_of(status.name) == INFERENCE
            for kv in status.values
        }
        return {
            stage: (float(values[f"{stage} p50 ms"]), float(values[f"{stage} p99 ms"]))
            for stage in STAGES
            if f"{stage} p50 ms" in values
        }


def bench(args: argparse.Namespace, log=print) -> dict:
    with tempfile.TemporaryDirectory(prefix="anomask-bench-node-") as tmp:
        model = args.model
        if model is None:
            model = args.export_to or Path(tmp) / "bench.onnx"
            if not model.is_file():
                log(f"exporting a random {args.preset} model for {args.size[0]}x{args.size[1]} frames to {model} ...")
                export_bench_model(args.preset, args.size, args.network_size, args.output_size, model)
        height, width = args.size
        rng = np.random.default_rng(0)
        pixels = cv2.resize(
            rng.integers(0, 256, (9, 16, 3), dtype=np.uint8), (width, height), interpolation=cv2.INTER_CUBIC
        )
        frame = array_to_image(pixels, args.encoding, Header())
        parameters = {
            "model_path": str(model),
            "cameras": ["bench"],
            "outputs": list(args.outputs),
            "input_reliability": "reliable",
            "runtime_threads": args.threads,
            "diagnostics_period_s": 0.2,
            "latency_budget_ms": 1e5,
            "output_resolution": args.output_resolution,
        }
        log_path = Path(tmp) / "node.log"
        node = start_logged(node_command(parameters), log_path)
        loop = None
        try:
            wait_for_line(node, log_path, READY_LINE, 300, "segmentation_node")
            loop = Loop(list(args.outputs))
            deadline = time.monotonic() + 60
            while loop.publisher.get_subscription_count() == 0 or any(
                loop.node.count_publishers(f"/bench/{n}") == 0 for n in args.outputs
            ):
                if time.monotonic() > deadline:
                    raise AnomaskError("the node's topics did not appear within 60 s")
                time.sleep(0.05)
            load_before = os.getloadavg()
            latencies = []
            for index in range(args.warmup + args.frames):
                seconds = loop.send(frame, index + 1, timeout_s=120)
                if index >= args.warmup:
                    latencies.append(seconds * 1e3)
            time.sleep(0.5)  # one more diagnostics period
            stages = loop.node_stages()
            load_after = os.getloadavg()
        finally:
            if loop is not None:
                loop.close()
            stop(node)
    p50, p99 = (float(v) for v in np.percentile(latencies, (50, 99)))
    result = {
        "size": args.size,
        "model": str(args.model or f"random {args.preset}, network {args.network_size}"),
        "frames": args.frames,
        "outputs": list(args.outputs),
        "output_resolution": args.output_resolution,
        "end_to_end_ms": (p50, p99),
        "node_ms": stages,
        "load_average": (load_before, load_after),
        "cpu_count": os.cpu_count(),
    }
    return result


def run(args: argparse.Namespace) -> int:
    result = bench(args)
    stages = result["node_ms"]
    inference, overhead, total = stages["inference"][0], stages["overhead"][0], stages["total"][0]
    e2e_p50, e2e_p99 = result["end_to_end_ms"]
    print(
        f"frames {result['size'][0]}x{result['size'][1]}, {result['frames']} timed, outputs "
        f"{', '.join(result['outputs'])} "
        f"at the {result['output_resolution']} resolution; model {result['model']}"
    )
    print(
        f"load average {result['load_average'][0][0]:.1f} -> {result['load_average'][1][0]:.1f} on "
        f"{result['cpu_count']} CPUs"
    )
    print(f"{'stage':<28} {'p50 ms':>9} {'p99 ms':>9}")
    print(f"{'end to end (pub -> sub)':<28} {e2e_p50:9.1f} {e2e_p99:9.1f}")
    for stage, (p50, p99) in stages.items():
        print(f"{'node ' + stage:<28} {p50:9.1f} {p99:9.1f}")
    print(f"{'transport (e2e - node total)':<28} {e2e_p50 - total:9.1f}")
    print(
        f"node overhead: {overhead:.1f} ms = {100 * overhead / inference:.1f} % of inference (target <= 5 %), "
        f"{100 * overhead / e2e_p50:.1f} % of the end-to-end frame; "
        f"with transport: {e2e_p50 - inference:.1f} ms = {100 * (e2e_p50 - inference) / inference:.1f} % of inference"
    )
    if args.out:
        write_result(args.out, "node", args, result)
    return 0
