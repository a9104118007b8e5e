"""Container healthcheck: healthy while the node's diagnostics say it is.

Listens to ``/diagnostics`` for up to ``--timeout`` seconds; healthy (exit 0) when the node's
``<node>: inference`` status arrives with level OK or WARN and none of its ``<node>: camera C``
statuses is ERROR or STALE (a WARN, e.g. a high anomalous share, is a finding about the
scene, not a broken container). ``<node>`` is the node's fully qualified name: ``--node``
(e.g. ``/front/segmentation_node``), by default any node named ``segmentation_node`` in any
namespace. Unhealthy (exit 1) otherwise, including when no diagnostics arrive: the node is
down or not publishing.
"""

from __future__ import annotations

import argparse
import sys
import time

OK, WARN, ERROR, STALE = 0, 1, 2, 3
NODE_NAME = "segmentation_node"


def level(status) -> int:
    """DiagnosticStatus.level is a ROS ``byte``: ``bytes`` of length 1 in rclpy."""
    value = status.level
    return value[0] if isinstance(value, (bytes, bytearray)) else int(value)


def ours(node_part: str, node: str | None) -> bool:
    """Whether a status name's node part is the watched node."""
    return node_part == node if node else node_part.rsplit("/", 1)[-1] == NODE_NAME


def verdict(statuses, node: str | None = None) -> tuple[bool, str] | None:
    """``(healthy, reason)`` from one DiagnosticArray's statuses; None when it holds no
    inference status of the watched node (``node``: fully qualified name, None: any
    ``segmentation_node``)."""
    split = [(s, *s.name.split(": ", 1)) for s in statuses if ": " in s.name]
    mine = [(s, task) for s, node_part, task in split if ours(node_part, node)]
    inference = [s for s, task in mine if task == "inference"]
    if not inference:
        return None
    worst = max(level(s) for s in inference)
    if worst >= ERROR:
        return False, f"inference level {worst}: {inference[0].message}"
    for status, task in mine:
        if task.startswith("camera ") and level(status) >= ERROR:
            return False, f"{status.name} level {level(status)}: {status.message}"
    return True, "inference " + ("OK" if worst == OK else "WARN")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--node", help=f"fully qualified node name (default: any {NODE_NAME})")
    args = parser.parse_args(argv)
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray

    rclpy.init()
    node = rclpy.create_node("anomask_healthcheck")
    result: list[tuple[bool, str]] = []
    node.create_subscription(
        DiagnosticArray, "/diagnostics", lambda msg: result.extend(filter(None, [verdict(msg.status, args.node)])), 10
    )
    deadline = time.monotonic() + args.timeout
    try:
        while not result and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.2)
    finally:
        node.destroy_node()
        rclpy.shutdown()
    healthy, reason = result[0] if result else (False, f"no anomask diagnostics within {args.timeout:.0f} s")
    print(reason)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
