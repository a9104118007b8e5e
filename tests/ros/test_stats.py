"""Rates, latency percentiles, the over-budget streak and thread-safe counting."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from anomask_ros.stats import LatencyWindow, NodeStats, RateMeter, ScoreRange, SequenceGaps


def test_rate_meter_measures_and_decays() -> None:
    meter = RateMeter(window_s=5.0)
    for i in range(31):
        meter.tick(10.0 + i / 30)
    assert meter.rate(11.0) == pytest.approx(30.0, rel=0.01)
    assert meter.rate(13.0) == pytest.approx(10.0, rel=0.01)  # stopped: decays
    assert meter.rate(20.0) == 0.0  # all events left the window


def test_latency_window_keeps_only_the_last_samples() -> None:
    window = LatencyWindow(size=100)
    assert window.percentiles() is None
    for value in range(1000):
        window.add(float(value))
    p50, p99 = window.percentiles()
    assert p50 == pytest.approx(np.percentile(np.arange(900, 1000), 50))
    assert p99 == pytest.approx(np.percentile(np.arange(900, 1000), 99))


def test_streak_counts_frames_over_budget_in_a_row() -> None:
    stats = NodeStats(("a",))
    for total in (120, 130, 90, 150, 160, 170):
        stats.frame_total(total, budget_ms=100.0)
    assert stats.snapshot(0.0).over_budget_streak == 3


def test_counts_from_many_threads_add_up() -> None:
    stats = NodeStats(("a", "b"))

    def work(camera: str) -> None:
        for i in range(2000):
            stats.received(camera, i * 1e-3)
            stats.dropped(camera, "superseded" if i % 2 else "step")

    threads = [threading.Thread(target=work, args=(c,)) for c in ("a", "b", "a")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = stats.snapshot(2.0)
    assert snap.cameras["a"].received == 4000 and snap.cameras["b"].received == 2000
    assert snap.cameras["a"].drops == {"step": 2000, "superseded": 2000}


def test_batch_records_size_and_clears_the_error() -> None:
    stats = NodeStats(("a",))
    stats.batch(2, "RuntimeError: lost")
    assert stats.snapshot(0.0).inference_error == "RuntimeError: lost"
    stats.batch(1, None)
    snap = stats.snapshot(0.0)
    assert snap.inference_error is None and snap.batches == 2 and snap.frames_per_batch == 1.5


def test_a_threshold_outside_the_first_frames_score_range_is_told() -> None:
    scores = ScoreRange(frames=2)
    scores.add(np.array([-0.4, -0.2], np.float32))
    assert scores.outside(0.5) is None  # not enough frames yet
    scores.add(np.array([-0.3, -0.1], np.float32))
    assert "no pixel can be anomalous" in scores.outside(0.5)  # UNO's scores with the 0.5 default
    assert "every pixel is anomalous" in scores.outside(-0.5)
    assert scores.outside(-0.115) is None
    scores.add(np.array([5.0], np.float32))  # later frames do not move the range
    assert scores.outside(0.5) is not None


def test_sequence_gaps_count_frames_that_never_arrived_per_publisher() -> None:
    gaps = SequenceGaps()

    def info(sequence: int, gid: bytes) -> dict:
        return {"publication_sequence_number": sequence, "publisher_gid": {"data": gid}}

    assert gaps.missed("front", info(5, b"a")) == 0  # the first frame seen: nothing known before
    assert gaps.missed("front", info(6, b"a")) == 0
    assert gaps.missed("front", info(9, b"a")) == 2
    assert gaps.missed("front", info(1, b"b")) == 0  # another publisher counts on its own
    assert gaps.missed("rear", info(3, b"a")) == 0
    assert gaps.missed("front", {"publication_sequence_number": None, "publisher_gid": None}) == 0
