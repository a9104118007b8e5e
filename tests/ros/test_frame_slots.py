"""Newest-frame-only slots: replacement counts as a drop, batches take every waiting camera,
cameras are served round robin whatever order their frames arrive in."""

from __future__ import annotations

import threading
import time

import pytest

from anomask_ros.frame_slots import LatestFrameSlots


def test_only_the_newest_frame_per_camera_is_taken() -> None:
    slots = LatestFrameSlots(("a", "b"))
    assert slots.put("a", 1, 1.0) is False
    assert slots.put("a", 2, 2.0) is True  # frame 1 was never processed
    taken = slots.take(max_items=4, timeout=0.0)
    assert [(w.camera, w.item, w.received, w.pending_since) for w in taken] == [("a", 2, 2.0, 1.0)]
    assert slots.take(max_items=4, timeout=0.0) == []


def test_waiting_cameras_are_batched_longest_waiting_first_up_to_the_limit() -> None:
    slots = LatestFrameSlots(("a", "b", "c"))
    slots.put("c", "c1", 1.0)
    slots.put("a", "a1", 2.0)
    slots.put("b", "b1", 3.0)
    slots.put("c", "c2", 4.0)  # replacing c1 does not reset how long c has waited
    assert [w.item for w in slots.take(max_items=2, timeout=0.0)] == ["c2", "a1"]
    assert [w.item for w in slots.take(max_items=2, timeout=0.0)] == ["b1"]


@pytest.mark.parametrize(("cameras", "max_items"), [(2, 1), (2, 2), (4, 1), (4, 2)])
@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_every_camera_gets_an_equal_share_whatever_the_callback_order(cameras: int, max_items: int, order: str) -> None:
    """Cameras publish in a fixed order, several ticks arrive during each inference (a model
    slower than the cameras): every waiting camera is served within one round."""
    names = tuple(f"cam{i}" for i in range(cameras))
    slots = LatestFrameSlots(names)
    served = dict.fromkeys(names, 0)
    now = 0.0
    batches = 24
    rounds = -(-cameras // max_items)
    for _ in range(batches):
        for _tick in range(3):
            for name in names if order == "forward" else reversed(names):
                now += 0.001
                slots.put(name, now, now)
        for w in slots.take(max_items, timeout=0.0):
            served[w.camera] += 1
    assert set(served.values()) == {batches * max_items // cameras}, served
    # Within one round: the last `rounds` batches took every camera once.
    recent = []
    for _ in range(rounds):
        for name in names:
            slots.put(name, 0, now)
        recent += [w.camera for w in slots.take(max_items, timeout=0.0)]
    assert sorted(recent) == sorted(names)


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
