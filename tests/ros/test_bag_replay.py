"""``anomask bag play`` -> ``anomask bag record`` as real processes over loopback: every
message arrives byte-identical, with the recorded spacing scaled by the rate, and /clock
carries the bag time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from rclpy.serialization import deserialize_message
from rosgraph_msgs.msg import Clock

from anomask_ros.bag_io import connections_for, open_bag, read_raw
from anomask_ros.bag_write import CameraSource, WriteOptions, write_bag

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

    recorded = tmp_path / "recorded"
    record = subprocess.Popen(
        [*ANOMASK, "bag", "record", str(recorded), "--topics", "/front/image", "/clock", "--count", str(FRAMES), "--discovery-timeout", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        play = subprocess.run(
            [*ANOMASK, "bag", "play", str(source), "--rate", str(PLAY_RATE), "--clock", "--wait-for-subscribers", "30"],
            capture_output=True, text=True, timeout=60,
        )
        assert play.returncode == 0, play.stderr
        assert f"played {FRAMES} messages" in play.stdout
        out, err = record.communicate(timeout=30)
    finally:
        if record.poll() is None:
            record.kill()
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
