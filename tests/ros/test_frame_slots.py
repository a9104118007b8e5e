"""Newest-frame-only slots: replacement counts as a drop, batches take every waiting camera."""

from __future__ import annotations

import threading
import time

from anomask_ros.frame_slots import LatestFrameSlots


def test_only_the_newest_frame_per_camera_is_taken() -> None:
    slots = LatestFrameSlots(("a", "b"))
    assert slots.put("a", 1, 1.0) is False
    assert slots.put("a", 2, 2.0) is True  # frame 1 was never processed
    taken = slots.take(max_items=4, timeout=0.0)
    assert [(w.camera, w.item, w.received) for w in taken] == [("a", 2, 2.0)]
    assert slots.take(max_items=4, timeout=0.0) == []


def test_waiting_cameras_are_batched_earliest_first_up_to_the_limit() -> None:
    slots = LatestFrameSlots(("a", "b", "c"))
    slots.put("c", "c1", 1.0)
    slots.put("a", "a1", 2.0)
    slots.put("b", "b1", 3.0)
    assert [w.item for w in slots.take(max_items=2, timeout=0.0)] == ["c1", "a1"]
    assert [w.item for w in slots.take(max_items=2, timeout=0.0)] == ["b1"]


def test_take_wakes_on_put_and_on_close() -> None:
    slots = LatestFrameSlots(("a",))
    result = []
    worker = threading.Thread(target=lambda: result.append(slots.take(1, timeout=5.0)))
    worker.start()
    time.sleep(0.05)
    slots.put("a", "x", 0.0)
    worker.join(timeout=2.0)
    assert [w.item for w in result[0]] == ["x"]

    started = time.monotonic()
    closer = threading.Timer(0.05, slots.close)
    closer.start()
    assert slots.take(1, timeout=5.0) == []
    assert time.monotonic() - started < 2.0
    slots.put("a", "late", 1.0)
    assert slots.take(1, timeout=0.0) == []
