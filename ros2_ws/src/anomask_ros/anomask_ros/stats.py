"""What the node measures about itself: rates, drops per reason, per-stage latency
percentiles, the latency-budget streak and the whole-frame anomaly alarm.

Callbacks (executor thread) and the inference worker both write; the diagnostics timer
reads a consistent :class:`Snapshot`. Memory is bounded: fixed windows, no growing lists.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STAGES = ("wait", "decode", "inference", "postprocess", "publish", "total", "overhead", "age")
"""Per-frame stages, in ms: wait (receive -> the worker takes the frame: the rest of the
running inference, thread hand-over), decode (message -> network input batch), inference
(``Runtime.run``), postprocess (panoptic on the CPU, resizing, colour views, building
the messages), publish (sending them), total (receive -> last publish), overhead (total minus
inference: everything the node adds, including the wait in the newest-frame slot) and age
(last publish - header stamp, on the node's clock)."""


class RateMeter:
    """Events per second over the last ``window_s`` seconds."""

    def __init__(self, window_s: float = 5.0, max_events: int = 4096) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque(maxlen=max_events)

    def tick(self, now: float) -> None:
        self._times.append(now)

    def rate(self, now: float) -> float:
        while self._times and self._times[0] < now - self.window_s:
            self._times.popleft()
        if len(self._times) < 2:
            return 0.0
        # Intervals over the time since the first event in the window: decays once a
        # stream stops instead of holding its last rate.
        return (len(self._times) - 1) / max(now - self._times[0], 1e-9)


class LatencyWindow:
    """The last ``size`` samples of one stage, and their percentiles."""

    def __init__(self, size: int = 512) -> None:
        self._samples = np.zeros(size, dtype=np.float64)
        self._count = 0

    def add(self, value_ms: float) -> None:
        self._samples[self._count % self._samples.size] = value_ms
        self._count += 1

    def percentiles(self) -> tuple[float, float] | None:
        """(p50, p99) in ms, or None before the first sample."""
        if self._count == 0:
            return None
        filled = self._samples[: min(self._count, self._samples.size)]
        p50, p99 = np.percentile(filled, (50, 99))
        return float(p50), float(p99)


@dataclass
class CameraSnapshot:
    input_hz: float
    output_hz: float
    received: int
    missed: int
    """Sent by a publisher, never received (lost in transport or in the input queue)."""
    published: int
    drops: dict[str, int]
    anomalous_share: float | None


@dataclass
class Snapshot:
    cameras: dict[str, CameraSnapshot]
    latency: dict[str, tuple[float, float]]
    over_budget_streak: int
    inference_error: str | None
    batches: int
    frames_per_batch: float = field(default=0.0)


class NodeStats:
    """Thread-safe counters of one node run."""

    def __init__(self, cameras: tuple[str, ...]) -> None:
        self._lock = threading.Lock()
        self._inputs = {c: RateMeter() for c in cameras}
        self._outputs = {c: RateMeter() for c in cameras}
        self._received = dict.fromkeys(cameras, 0)
        self._missed = dict.fromkeys(cameras, 0)
        self._published = dict.fromkeys(cameras, 0)
        self._drops: dict[str, dict[str, int]] = {c: {} for c in cameras}
        self._share: dict[str, float | None] = dict.fromkeys(cameras)
        self._latency = {stage: LatencyWindow() for stage in STAGES}
        self._streak = 0
        self._error: str | None = None
        self._batches = 0
        self._batched_frames = 0

    def received(self, camera: str, now: float) -> None:
        with self._lock:
            self._received[camera] += 1
            self._inputs[camera].tick(now)

    def dropped(self, camera: str, reason: str) -> None:
        with self._lock:
            drops = self._drops[camera]
            drops[reason] = drops.get(reason, 0) + 1

    def missed(self, camera: str, frames: int) -> None:
        """Frames sent to ``camera`` that never reached the node (:class:`SequenceGaps`)."""
        with self._lock:
            self._missed[camera] += frames

    def published(self, camera: str, now: float, anomalous_share: float) -> None:
        with self._lock:
            self._published[camera] += 1
            self._outputs[camera].tick(now)
            self._share[camera] = anomalous_share

    def stage(self, name: str, value_ms: float) -> None:
        with self._lock:
            self._latency[name].add(value_ms)

    def frame_total(self, total_ms: float, budget_ms: float) -> None:
        """Records a frame's receive-to-publish time and updates the over-budget streak."""
        with self._lock:
            self._latency["total"].add(total_ms)
            self._streak = self._streak + 1 if total_ms > budget_ms else 0

    def batch(self, frames: int, error: str | None) -> None:
        """One inference call: its size, and its error (None clears an earlier one)."""
        with self._lock:
            self._batches += 1
            self._batched_frames += frames
            self._error = error

    def snapshot(self, now: float) -> Snapshot:
        with self._lock:
            cameras = {
                c: CameraSnapshot(
                    input_hz=self._inputs[c].rate(now),
                    output_hz=self._outputs[c].rate(now),
                    received=self._received[c],
                    missed=self._missed[c],
                    published=self._published[c],
                    drops=dict(self._drops[c]),
                    anomalous_share=self._share[c],
                )
                for c in self._inputs
            }
            latency = {s: p for s, w in self._latency.items() if (p := w.percentiles()) is not None}
            return Snapshot(
                cameras=cameras,
                latency=latency,
                over_budget_streak=self._streak,
                inference_error=self._error,
                batches=self._batches,
                frames_per_batch=self._batched_frames / self._batches if self._batches else 0.0,
            )


class ScoreRange:
    """The anomaly score's range over the first ``frames`` frames, to tell a threshold that
    can never (or always) fire: scores are model-specific (EAM and UNO are <= 0)."""

    def __init__(self, frames: int = 10) -> None:
        self.frames = frames
        self._seen = 0
        self._low = np.inf
        self._high = -np.inf

    def add(self, anomaly: np.ndarray) -> None:
        if self._seen < self.frames and anomaly.size:
            self._seen += 1
            self._low = min(self._low, float(anomaly.min()))
            self._high = max(self._high, float(anomaly.max()))

    def outside(self, threshold: float) -> str | None:
        """A sentence when the first frames are in and ``threshold`` lies outside their
        range (every pixel, or none, would be anomalous); None otherwise."""
        if self._seen < self.frames or self._low <= threshold < self._high:
            return None
        return (
            f"anomaly threshold {threshold:.4g} is outside the score range [{self._low:.4g}, {self._high:.4g}] of the "
            f"first {self.frames} frames: "
            + ("no pixel can be anomalous" if threshold >= self._high else "every pixel is anomalous")
        )


class SequenceGaps:
    """Frames a publisher sent that never reached the node's callback, from the gaps in its
    publication sequence numbers (rclpy's message info): lost by a best-effort transport, or
    overwritten in the middleware's input queue (``input_depth``) before the executor took
    them. Frames sent before the subscription matched are not counted."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, bytes], int] = {}

    def missed(self, camera: str, info: Mapping[str, Any]) -> int:
        """How many of this publisher's frames were skipped before this one; 0 when the
        middleware gives no sequence number."""
        sequence, gid = info.get("publication_sequence_number"), info.get("publisher_gid")
        if sequence is None or not gid:
            return 0
        key = (camera, bytes(gid["data"]))
        last = self._last.get(key)
        self._last[key] = sequence
        return max(0, sequence - last - 1) if last is not None else 0
