"""Newest-frame-only hand-over from the subscription callbacks to the inference worker.

One slot per camera: a callback overwrites its camera's slot (the frame it replaces was
never processed and is counted as dropped, reason ``superseded``) and returns at once; the
worker takes the waiting frames together, so frames that arrived while the previous
inference ran go into one batch. Memory never grows: at most one message per camera is held.

Fair service: when more cameras wait than a batch holds, the cameras served longest ago go
first (round robin), ties broken by how long each camera has been waiting (its first
unprocessed frame's arrival, kept when a newer frame replaces it). Every waiting camera is
therefore served within one round of ``ceil(cameras / max_items)`` batches, whatever the
order in which the callbacks run.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Waiting(Generic[T]):
    camera: str
    item: T
    received: float
    """Monotonic receive time of this frame in seconds."""
    pending_since: float
    """Receive time of the camera's first frame not taken since its last service (equals
    ``received`` unless newer frames replaced older ones)."""


class LatestFrameSlots(Generic[T]):
    def __init__(self, cameras: tuple[str, ...]) -> None:
        self._slots: dict[str, Waiting[T] | None] = dict.fromkeys(cameras)
        self._served = dict.fromkeys(cameras, 0)
        """Number of the batch that last took each camera's frame (0: never)."""
        self._batches = 0
        self._ready = threading.Condition()
        self._closed = False

    def put(self, camera: str, item: T, received: float) -> bool:
        """Stores ``item`` as ``camera``'s newest frame; True when it replaced an
        unprocessed one (a drop)."""
        with self._ready:
            previous = self._slots[camera]
            since = received if previous is None else previous.pending_since
            self._slots[camera] = Waiting(camera, item, received, since)
            self._ready.notify()
        return previous is not None

    def take(self, max_items: int, timeout: float) -> list[Waiting[T]]:
        """Waits up to ``timeout`` s for a frame, then empties up to ``max_items`` slots,
        the cameras served longest ago first (module docstring). Returns [] on timeout or
        after :meth:`close`."""
        with self._ready:
            self._ready.wait_for(lambda: self._closed or any(w is not None for w in self._slots.values()), timeout)
            if self._closed:
                return []
            waiting = sorted(
                (w for w in self._slots.values() if w is not None),
                key=lambda w: (self._served[w.camera], w.pending_since),
            )[:max_items]
            if waiting:
                self._batches += 1
            for w in waiting:
                self._slots[w.camera] = None
                self._served[w.camera] = self._batches
            return waiting

    def close(self) -> None:
        """Wakes the worker for good; later puts are kept but never taken."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
