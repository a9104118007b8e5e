"""``anomask bag play``: publish a bag's topics with their recorded timing, for machines
without ``ros2 bag play`` (on a vehicle, ``ros2 bag play --clock`` does the same).

Messages go out as the stored CDR bytes (rclpy publishes serialized data as is). Message
``i`` is sent at ``start + (t_i - t_0) / rate`` on the steady clock. With ``clock``,
``/clock`` (``rosgraph_msgs/Clock``) carries the bag time: before every message and every
``1 / clock_hz`` s in between, so nodes with ``use_sim_time`` follow the bag; each loop
starts the bag time again from the beginning, as ``ros2 bag play --loop --clock`` does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import rclpy
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock

from anomask.errors import AnomaskError
from anomask_ros.bag.io import connections_for, message_class, open_bag, read_raw, stamp
from anomask_ros.shutdown import until_shutdown

PUBLISH_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


@dataclass(frozen=True)
class PlayOptions:
    topics: tuple[str, ...] = ()
    """Empty: every topic."""
    rate: float = 1.0
    loop: bool = False
    clock: bool = False
    clock_hz: float = 40.0
    wait_for_subscribers_s: float = 0.0
    """Wait up to this long for every topic to have ``min_subscribers`` subscribers before
    the first message."""
    min_subscribers: int = 1
    ack_timeout_s: float = 10.0
    """At the end, wait up to this long for reliable subscribers to acknowledge."""


class BagPlayer:
    def __init__(self, node: Node, bag: Path, options: PlayOptions) -> None:
        if options.rate <= 0:
            raise AnomaskError(f"rate must be positive, got {options.rate}")
        self.node = node
        self.bag = Path(bag)
        self.options = options
        with open_bag(self.bag) as reader:
            connections = connections_for(reader, list(options.topics) or None, self.bag)
            self.types = {c.topic: c.msgtype for c in connections}
        self.publishers = {
            topic: node.create_publisher(message_class(kind), topic, PUBLISH_QOS) for topic, kind in self.types.items()
        }
        self.clock_pub = node.create_publisher(Clock, "/clock", PUBLISH_QOS) if options.clock else None
        self.published = 0

    def _publish_clock(self, bag_ns: int) -> None:
        if self.clock_pub is not None:
            self.clock_pub.publish(Clock(clock=stamp(bag_ns)))

    def _wait_until(self, wall: float, target_ns: int, bag_start_ns: int, wall_start: float) -> bool:
        """Sleeps until ``wall`` (steady clock), sending /clock meanwhile (never past the
        next message's ``target_ns``, so /clock only moves forward); False when the
        context was shut down (SIGINT / SIGTERM)."""
        step = 1.0 / self.options.clock_hz
        while rclpy.ok(context=self.node.context):
            remaining = wall - time.monotonic()
            if remaining <= 0:
                return True
            time.sleep(min(remaining, step))
            now_bag = bag_start_ns + int((time.monotonic() - wall_start) * self.options.rate * 1e9)
            self._publish_clock(min(now_bag, target_ns))
        return False

    def _wait_for_subscribers(self) -> None:
        deadline = time.monotonic() + self.options.wait_for_subscribers_s
        while time.monotonic() < deadline and rclpy.ok(context=self.node.context):
            publishers = [*self.publishers.values(), *([self.clock_pub] if self.clock_pub else [])]
            if all(p.get_subscription_count() >= self.options.min_subscribers for p in publishers):
                return
            time.sleep(0.05)

    def play(self) -> int:
        """Plays the bag (forever with ``loop``, until shutdown); returns messages sent."""
        self._wait_for_subscribers()
        while True:
            if not self._play_once() or not self.options.loop:
                self._wait_for_acks()
                return self.published

    def _wait_for_acks(self) -> None:
        """Reliable readers must acknowledge the last messages before the publishers go:
        a large frame published just before exit is otherwise lost (seen with 256x512
        frames: the last frame of a bag never reached the node)."""
        with until_shutdown(self.node.context):  # after a shutdown nobody is left to acknowledge
            for publisher in [*self.publishers.values(), *([self.clock_pub] if self.clock_pub else [])]:
                publisher.wait_for_all_acked(Duration(seconds=self.options.ack_timeout_s))

    def _play_once(self) -> bool:
        with open_bag(self.bag) as reader:
            connections = connections_for(reader, list(self.publishers), self.bag)
            wall_start = time.monotonic()
            bag_start_ns = None
            for connection, timestamp, data in read_raw(reader, connections, self.bag):
                if bag_start_ns is None:
                    bag_start_ns = timestamp
                target = wall_start + (timestamp - bag_start_ns) / 1e9 / self.options.rate
                if not self._wait_until(target, timestamp, bag_start_ns, wall_start):
                    return False
                self._publish_clock(timestamp)
                self.publishers[connection.topic].publish(data)
                self.published += 1
        return rclpy.ok(context=self.node.context)


def play_bag(bag: Path, options: PlayOptions, args: list[str] | None = None) -> int:
    """Runs a player node until the bag ends (or SIGINT / SIGTERM); messages sent."""
    context = rclpy.Context()
    rclpy.init(args=args, context=context)
    try:
        node = Node("anomask_bag_play", context=context)
        return BagPlayer(node, bag, options).play()
    finally:
        rclpy.try_shutdown(context=context)
