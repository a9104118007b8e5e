"""Container healthcheck: healthy while the node's diagnostics say it is.

Listens to ``/diagnostics`` for up to ``--timeout`` seconds; healthy (exit 0) when an
``anomask: inference`` status arrives with level OK or WARN and no ``anomask: camera``
status is ERROR or STALE (a WARN, e.g. a high anomalous share, is a finding about the
scene, not a broken container). Unhealthy (exit 1) otherwise, including when no
diagnostics arrive: the node is down or not publishing.
"""

from __future__ import annotations

import argparse
import sys
import time

OK, WARN, ERROR, STALE = 0, 1, 2, 3


def level(status) -> int:
    """DiagnosticStatus.level is a ROS ``byte``: ``bytes`` of length 1 in rclpy."""
    value = status.level
    return value[0] if isinstance(value, (bytes, bytearray)) else int(value)


def verdict(statuses) -> tuple[bool, str] | None:
    """``(healthy, reason)`` from one DiagnosticArray's statuses; None when it holds no
    anomask inference status."""
    inference = [s for s in statuses if s.name.endswith("anomask: inference")]
    if not inference:
        return None
    worst = max(level(s) for s in inference)
    if worst >= ERROR:
        return False, f"inference level {worst}: {inference[0].message}"
    for status in statuses:
        if "anomask: camera" in status.name and level(status) >= ERROR:
            return False, f"{status.name} level {level(status)}: {status.message}"
    return True, "inference " + ("OK" if worst == OK else "WARN")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray

    rclpy.init()
    node = rclpy.create_node("anomask_healthcheck")
    result: list[tuple[bool, str]] = []
    node.create_subscription(
        DiagnosticArray, "/diagnostics", lambda msg: result.extend(filter(None, [verdict(msg.status)])), 10
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
