"""``anomask bench transport``: how many camera frames of each size reach a subscriber with
the node's input QoS, per reliability and Fast DDS transport. Prints numbers, asserts nothing.

Two real rclpy processes per setting, in a ROS domain of their own: a camera driver
(reliable, depth 10: rclpy's and image_transport's default publisher QoS) publishes
``--frames`` rgb8 frames of each ``--sizes`` at ``--rate``; a subscriber with the node's
input QoS (``input_reliability``, ``input_depth``) counts what arrives. A setting's transport
(``FASTDDS_BUILTIN_TRANSPORTS``) is set on both processes (``default``: not set); ``+sub``
sets it on the subscriber only, as when only the node's container has it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from anomask.bench.results import add_out_argument, write_result
from anomask.errors import AnomaskError

DEFAULT_SETTINGS = (
    "best_effort:default",
    "reliable:default",
    "best_effort:LARGE_DATA",
    "reliable:LARGE_DATA",
    "best_effort:LARGE_DATA+sub",
    "reliable:LARGE_DATA+sub",
)
_DONE = "published"


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"size must be WxH, got {text!r}") from error
    return height, width


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=10, help="frames per size (default %(default)s)")
    parser.add_argument("--rate", type=float, default=2.0, help="frames per second (default %(default)s)")
    parser.add_argument(
        "--sizes",
        type=lambda text: [_size(s) for s in text.split(",")],
        default=[(480, 640), (720, 1280), (1080, 1920)],
        metavar="WxH,...",
        help="frame sizes (default 640x480,1280x720,1920x1080)",
    )
    parser.add_argument(
        "--settings",
        default=",".join(DEFAULT_SETTINGS),
        help="RELIABILITY:TRANSPORT[+sub],... (default %(default)s)",
    )
    parser.add_argument("--depth", type=int, default=1, help="subscriber history depth (input_depth; default 1)")
    parser.add_argument("--domain", type=int, default=90, help="first ROS domain id used (one per setting)")
    add_out_argument(parser)


def _role(argv: list[str]) -> None:
    """One process: ``sub RELIABILITY DEPTH`` or ``pub FRAMES RATE H,W;H,W``."""
    import numpy as np
    import rclpy
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from anomask_ros.params import qos_profile

    rclpy.init()
    node = Node("anomask_bench_transport")
    if argv[0] == "sub":
        got: dict[str, int] = {}
        node.create_subscription(
            Image,
            "/camera/image",
            lambda m: got.__setitem__(f"{m.width}x{m.height}", got.get(f"{m.width}x{m.height}", 0) + 1),
            qos_profile(argv[1], int(argv[2])),
        )
        print("ready", flush=True)
        while not os.path.exists(argv[3]):
            rclpy.spin_once(node, timeout_sec=0.1)
        end = time.monotonic() + 3.0  # frames still on their way
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
        print(json.dumps(got), flush=True)
    else:
        frames, rate = int(argv[1]), float(argv[2])
        sizes = [tuple(int(v) for v in s.split(",")) for s in argv[3].split(";")]
        publisher = node.create_publisher(
            Image, "/camera/image", QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        )
        deadline = time.monotonic() + 15  # then publish anyway: an unmatched subscriber receives nothing
        while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        time.sleep(1.0)
        for height, width in sizes:
            data = np.random.default_rng(0).integers(0, 256, (height, width * 3), dtype=np.uint8).tobytes()
            for _ in range(frames):
                publisher.publish(Image(height=height, width=width, encoding="rgb8", step=width * 3, data=data))
                end = time.monotonic() + 1 / rate
                while time.monotonic() < end:
                    rclpy.spin_once(node, timeout_sec=max(0.0, end - time.monotonic()))
        end = time.monotonic() + 2.0  # repairs of the last frames (reliable)
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
    node.destroy_node()
    rclpy.shutdown()


def measure(setting: str, args: argparse.Namespace, domain: int, flag: str) -> dict:
    reliability, _, transport = setting.partition(":")
    if reliability not in ("reliable", "best_effort") or not transport:
        raise AnomaskError(f"setting {setting!r} is not RELIABILITY:TRANSPORT (reliable|best_effort)")
    transport, sub_only = transport.removesuffix("+sub"), transport.endswith("+sub")
    base = {**os.environ, "ROS_DOMAIN_ID": str(domain)}
    base.pop("FASTDDS_BUILTIN_TRANSPORTS", None)
    chosen = base if transport == "default" else {**base, "FASTDDS_BUILTIN_TRANSPORTS": transport}
    me = [sys.executable, "-m", "anomask.bench.transport"]
    sub = subprocess.Popen(
        [*me, "sub", reliability, str(args.depth), flag], env=chosen, stdout=subprocess.PIPE, text=True
    )
    sub.stdout.readline()
    sizes = ";".join(f"{h},{w}" for h, w in args.sizes)
    subprocess.run([*me, "pub", str(args.frames), str(args.rate), sizes], env=base if sub_only else chosen, check=True)
    open(flag, "w").close()
    out, _ = sub.communicate(timeout=120)
    os.remove(flag)
    got = json.loads(out.strip().splitlines()[-1])
    received = {f"{w}x{h}": got.get(f"{w}x{h}", 0) for h, w in args.sizes}
    return {"reliability": reliability, "transport": transport, "both_sides": not sub_only, "received": received}


def bench(args: argparse.Namespace, log=print) -> dict:
    rows = []
    for index, setting in enumerate(args.settings.split(",")):
        flag = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"anomask-bench-transport-{os.getpid()}-{index}")
        rows.append(measure(setting, args, args.domain + index, flag))
        log(f"{setting}: {rows[-1]['received']} of {args.frames} each")
    return {"frames": args.frames, "rate_hz": args.rate, "depth": args.depth, "rows": rows}


def run(args: argparse.Namespace) -> int:
    result = bench(args)
    if args.out:
        write_result(args.out, "transport", args, result)
    return 0


if __name__ == "__main__":
    _role(sys.argv[1:])
