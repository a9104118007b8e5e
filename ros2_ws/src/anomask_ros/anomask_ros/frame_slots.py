"""Newest-frame-only hand-over from the subscription callbacks to the inference worker.

One slot per camera: a callback overwrites its camera's slot (the frame it replaces was
never processed and is counted as dropped, reason ``superseded``) and returns at once; the
worker takes every camera's waiting frame together, so frames that arrived while the
previous inference ran go into one batch. Memory never grows: at most one message per
camera is held.
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
    """Monotonic receive time in seconds."""


class LatestFrameSlots(Generic[T]):
    def __init__(self, cameras: tuple[str, ...]) -> None:
        self._slots: dict[str, Waiting[T] | None] = dict.fromkeys(cameras)
        self._ready = threading.Condition()
        self._closed = False

    def put(self, camera: str, item: T, received: float) -> bool:
        """Stores ``item`` as ``camera``'s newest frame; True when it replaced an
        unprocessed one (a drop)."""
        with self._ready:
            replaced = self._slots[camera] is not None
            self._slots[camera] = Waiting(camera, item, received)
            self._ready.notify()
        return replaced

    def take(self, max_items: int, timeout: float) -> list[Waiting[T]]:
        """Waits up to ``timeout`` s for a frame, then empties up to ``max_items`` slots,
        earliest arrival first (so no camera starves when cameras > max_items). Returns []
        on timeout or after :meth:`close`."""
        with self._ready:
            self._ready.wait_for(lambda: self._closed or any(w is not None for w in self._slots.values()), timeout)
            if self._closed:
                return []
            waiting = sorted((w for w in self._slots.values() if w is not None), key=lambda w: w.received)[:max_items]
            for w in waiting:
                self._slots[w.camera] = None
            return waiting

    def close(self) -> None:
        """Wakes the worker for good; later puts are kept but never taken."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
