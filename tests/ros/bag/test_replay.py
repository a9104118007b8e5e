"""``anomask bag play`` -> ``anomask bag record`` as real processes over loopback: every
message arrives byte-identical, with the recorded spacing scaled by the rate, and /clock
carries the bag time."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image

from anomask_ros.bag.io import connections_for, open_bag, read_raw
from anomask_ros.bag.play import BagPlayer, PlayOptions
from anomask_ros.bag.write import CameraSource, WriteOptions, write_bag

ANOMASK = [sys.executable, "-m", "anomask"]
FRAMES, RATE_HZ, PLAY_RATE = 6, 10.0, 2.0


def raw_messages(bag: Path, topic: str) -> list[tuple[int, bytes]]:
    with open_bag(bag) as reader:
        return [(t, bytes(d)) for _, t, d in read_raw(reader, connections_for(reader, [topic], bag), bag)]


def test_play_into_record_keeps_messages_timing_and_clock(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(5)
    for i in range(FRAMES):
        cv2.imwrite(str(images / f"{i:02d}.png"), rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    source = tmp_path / "source"
    write_bag(source, [CameraSource("front", images)], WriteOptions(rate_hz=RATE_HZ, start_s=50.0))

    recorded, interrupted = tmp_path / "recorded", tmp_path / "interrupted"

    def start(*args: str) -> subprocess.Popen:
        return subprocess.Popen([*ANOMASK, "bag", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    # The player waits for subscribers on /front/image and /clock; the recorders learn the
    # types from the player's publishers. The open-ended recorder (/clock, no stop
    # condition: SIGINT must still leave a complete bag) subscribes first, so the counting
    # recorder is the one that releases the player.
    play = start("play", str(source), "--rate", str(PLAY_RATE), "--clock", "--wait-for-subscribers", "60")
    procs = [play]
    try:
        open_ended = start("record", str(interrupted), "--topics", "/clock", "--discovery-timeout", "60")
        procs.append(open_ended)
        assert open_ended.stdout.readline().startswith("recording "), open_ended.stderr.read()
        record = start(
            "record",
            str(recorded),
            "--topics",
            "/front/image",
            "/clock",
            "--count",
            str(FRAMES),
            "--discovery-timeout",
            "60",
        )
        procs.append(record)
        play_out, play_err = play.communicate(timeout=90)
        assert play.returncode == 0, play_err
        assert f"played {FRAMES} messages" in play_out
        out, err = record.communicate(timeout=30)
        open_ended.send_signal(signal.SIGINT)
        open_out, open_err = open_ended.communicate(timeout=30)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert open_ended.returncode == 0, open_err
    assert raw_messages(interrupted, "/clock"), open_out
    assert record.returncode == 0, err
    assert f"/front/image: {FRAMES} messages" in out

    sent = raw_messages(source, "/front/image")
    got = raw_messages(recorded, "/front/image")
    assert [d for _, d in got] == [d for _, d in sent]  # identical CDR: images and stamps
    spacing = np.diff([t for t, _ in got]) / 1e9
    expected = 1.0 / RATE_HZ / PLAY_RATE
    assert abs(np.median(spacing) - expected) < 0.5 * expected, spacing
    clock = [deserialize_message(d, Clock).clock for _, d in raw_messages(recorded, "/clock")]
    clock_ns = [c.sec * 1_000_000_000 + c.nanosec for c in clock]
    assert clock_ns == sorted(clock_ns)
    assert 50_000_000_000 <= clock_ns[0] and clock_ns[-1] <= 50_000_000_000 + (FRAMES - 1) * 100_000_000


def test_loop_replays_until_shutdown(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        cv2.imwrite(str(images / f"{i}.png"), np.full((4, 6, 3), i, np.uint8))
    write_bag(tmp_path / "bag", [CameraSource("cam", images)], WriteOptions(rate_hz=50.0))
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        listener = Node("listener", context=context)
        received: list[int] = []
        listener.create_subscription(Image, "/cam/image", lambda m: received.append(int(m.data[0])), 10)
        player = BagPlayer(
            Node("player", context=context),
            tmp_path / "bag",
            PlayOptions(loop=True, rate=4.0, wait_for_subscribers_s=10),
        )
        thread = threading.Thread(target=player.play)
        thread.start()
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(listener)
        deadline = time.monotonic() + 20
        while len(received) < 7 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        assert received[:7] == [0, 1, 2, 0, 1, 2, 0]
    finally:
        rclpy.try_shutdown(context=context)
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_record_refuses_an_unrecorded_or_malformed_expectation(tmp_path: Path, capsys) -> None:
    from anomask.cli import main

    out = str(tmp_path / "never")
    assert main(["bag", "record", out, "--topics", "/a", "--expect", "/b=3"]) == 2
    assert "--expect names /b, which --topics does not record" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bag", "record", out, "--topics", "/a", "--expect", "/a"])
    assert "'/a' is not TOPIC=N" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()
