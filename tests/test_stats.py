from __future__ import annotations

import threading

import pytest

from memollm import CacheStats
from memollm.statistics import StatsRecorder


def test_hit_rate() -> None:
    """hit_rate is hits over hits plus misses, 0.0 before any lookup."""
    assert CacheStats().hit_rate == 0.0
    s = CacheStats(hits={"memory": 3, "redis": 1}, misses=4)
    assert (s.hit_count, s.lookups, s.hit_rate) == (4, 8, 0.5)


def test_combine() -> None:
    """combine() adds per-tier hits and every counter."""
    total = CacheStats.combine(
        [CacheStats(hits={"memory": 1}, misses=2), CacheStats(hits={"memory": 2, "redis": 1}, errors=1)]
    )
    assert total.hits == {"memory": 3, "redis": 1}
    assert (total.misses, total.errors) == (2, 1)


def test_counters_are_exact_under_threads() -> None:
    """Counts from many threads add up exactly."""
    rec = StatsRecorder()
    counter = rec.hit_counter("memory")

    def work() -> None:
        for _ in range(20_000):
            next(counter)
            rec.add("misses")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = rec.snapshot()
    assert snap.hits == {"memory": 80_000}
    assert snap.misses == 80_000


def test_reset_keeps_counters_that_are_held() -> None:
    """After reset() a counter held by the hit path still counts, from zero."""
    rec = StatsRecorder()
    counter = rec.hit_counter("memory")
    next(counter)
    rec.add("stores")
    rec.reset()
    assert rec.snapshot() == CacheStats()
    next(counter)
    assert rec.snapshot().hits == {"memory": 1}


def test_repeated_warnings_are_rate_limited_and_say_how_many_were_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Repeated warnings are rate limited and say how many were dropped."""
    import logging

    from memollm import _log

    caplog.set_level(logging.WARNING, logger="memollm")
    key = ("test", "rate-limit")
    for _ in range(4):
        _log.warn_limited(key, "tier %s failed", "x")
    assert [r.getMessage() for r in caplog.records] == ["tier x failed"]
    _log.warn_limited(key, "tier %s failed", "x", interval=0)  # as if the minute had passed
    assert caplog.records[-1].getMessage() == "tier x failed (3 similar warnings suppressed)"
