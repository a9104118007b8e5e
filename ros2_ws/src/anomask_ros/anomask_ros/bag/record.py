"""``anomask bag record``: record topics (the node's outputs, /diagnostics, ...) to a bag.

Each topic's type comes from discovery, or from the topic itself as ``TOPIC:pkg/msg/Type``
(ROS names cannot hold ``:``), which subscribes at once, before any publisher exists: a
recorder started before a player then misses none of its messages. Raw subscriptions hand
over the CDR bytes, which
go into the bag unchanged, stamped with the receive time on the node's clock (``/clock``
with ``use_sim_time``), as ``ros2 bag record`` does. A topic is subscribed best-effort when
any of its publishers offers only best-effort, reliable otherwise. Recording stops after
``duration_s``, once every topic has ``count`` messages, or on SIGINT / SIGTERM; the bag
is closed and moved into place in every case. A SIGINT ends the spin at once, losing what
DDS delivered but the executor had not taken yet: a caller that knows how many messages are
coming passes ``expect`` and sends its SIGINT only after the recorder printed
``EXPECTED_LINE``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy

from anomask.errors import AnomaskError
from anomask_ros.bag.io import add_topic, bag_writer, message_class
from anomask_ros.shutdown import until_shutdown


@dataclass(frozen=True)
class RecordOptions:
    topics: tuple[str, ...]
    storage: str = "mcap"
    duration_s: float | None = None
    count: int | None = None
    discovery_timeout_s: float = 10.0
    use_sim_time: bool = False
    expect: tuple[tuple[str, int], ...] = ()
    """(topic, messages) pairs: print ``EXPECTED_LINE`` once each of these topics has that many."""


EXPECTED_LINE = "received every expected message"


def split_topic(spec: str) -> tuple[str, str | None]:
    """``TOPIC`` or ``TOPIC:pkg/msg/Type`` -> (topic, type or None)."""
    topic, _, type_name = spec.partition(":")
    return topic, type_name or None


def _discover(node: Node, executor: SingleThreadedExecutor, topics: tuple[str, ...], timeout: float) -> dict[str, str]:
    if not topics:
        return {}
    deadline = time.monotonic() + timeout
    while True:
        known = dict((name, types[0]) for name, types in node.get_topic_names_and_types())
        if all(t in known for t in topics) or time.monotonic() > deadline or not rclpy.ok(context=node.context):
            break
        executor.spin_once(timeout_sec=0.05)
    missing = [t for t in topics if t not in known]
    if missing:
        listing = ", ".join(sorted(known)) or "none"
        raise AnomaskError(
            f"no publisher of {', '.join(missing)} appeared within {timeout:.0f} s; topics seen: {listing}"
        )
    return {t: known[t] for t in topics}


def _qos(node: Node, topic: str) -> QoSProfile:
    offered = [info.qos_profile.reliability for info in node.get_publishers_info_by_topic(topic)]
    best_effort = any(r == ReliabilityPolicy.BEST_EFFORT for r in offered)
    return QoSProfile(
        depth=100, reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE
    )


def _spin_until_done(
    executor: SingleThreadedExecutor, context: rclpy.Context, counts: dict[str, int], options: RecordOptions
) -> None:
    stop_at = time.monotonic() + options.duration_s if options.duration_s else None
    waiting = bool(options.expect)
    while rclpy.ok(context=context):
        if stop_at is not None and time.monotonic() >= stop_at:
            return
        if options.count is not None and min(counts.values()) >= options.count:
            return
        if waiting and all(counts[topic] >= n for topic, n in options.expect):
            print(EXPECTED_LINE, flush=True)
            waiting = False
        executor.spin_once(timeout_sec=0.05)


def record_bag(out: Path, options: RecordOptions, args: list[str] | None = None) -> dict[str, int]:
    """Records until a stop condition; returns messages per topic."""
    if not options.topics:
        raise AnomaskError("name at least one topic to record")
    specs = dict(split_topic(spec) for spec in options.topics)
    unknown = [topic for topic, _ in options.expect if topic not in specs]
    if unknown:
        raise AnomaskError(f"--expect names {', '.join(unknown)}, which --topics does not record")
    context = rclpy.Context()
    rclpy.init(args=args, context=context)
    counts = dict.fromkeys(specs, 0)
    try:
        node = Node(
            "anomask_bag_record",
            context=context,
            parameter_overrides=[Parameter("use_sim_time", value=options.use_sim_time)],
        )
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        types = {topic: kind for topic, kind in specs.items() if kind is not None}
        types.update(
            _discover(
                node, executor, tuple(t for t, kind in specs.items() if kind is None), options.discovery_timeout_s
            )
        )
        types = {topic: types[topic] for topic in specs}
        with bag_writer(Path(out), options.storage) as writer:
            for topic, kind in types.items():
                connection = add_topic(writer, topic, kind)

                def store(data: bytes, connection=connection, topic=topic) -> None:
                    writer.write(connection, node.get_clock().now().nanoseconds, data)
                    counts[topic] += 1

                node.create_subscription(message_class(kind), topic, store, _qos(node, topic), raw=True)
            print(f"recording {', '.join(types)} to {out}", flush=True)
            with until_shutdown(context):  # SIGINT / SIGTERM: keep what was recorded; the bag is closed below
                _spin_until_done(executor, context, counts, options)
    finally:
        rclpy.try_shutdown(context=context)
    return counts
