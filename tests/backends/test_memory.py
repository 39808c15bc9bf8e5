from __future__ import annotations

import asyncio
import threading

import pytest

from memollm.backends import Backend, MemoryBackend
from memollm.testing import FakeClock

from ..helpers import in_threads


def test_is_a_backend() -> None:
    """The memory tier satisfies the Backend protocol."""
    assert isinstance(MemoryBackend(), Backend)


def test_set_get_delete(clock: FakeClock) -> None:
    """Bytes stored under a key come back until deleted."""
    m = MemoryBackend(clock=clock)
    m.set("k", b"v", 10)
    assert m.get("k") == b"v"
    m.delete("k")
    assert m.get("k") is None
    m.delete("k")  # deleting a missing key is fine


def test_per_entry_ttl(clock: FakeClock) -> None:
    """Each entry expires after its own TTL; None never expires."""
    m = MemoryBackend(clock=clock)
    m.set("short", b"1", 5)
    m.set("long", b"2", 50)
    m.set("forever", b"3", None)
    clock.advance(5)
    assert m.get("short") is None
    assert m.get("long") == b"2"
    clock.advance(1000)
    assert m.get("long") is None
    assert m.get("forever") == b"3"


def test_lru_eviction_by_entries(clock: FakeClock) -> None:
    """Past max_entries the least recently used entry goes first."""
    m = MemoryBackend(max_entries=2, clock=clock)
    m.set("a", b"1", None)
    m.set("b", b"2", None)
    assert m.get("a") == b"1"  # a is now more recent than b
    m.set("c", b"3", None)
    assert m.get("b") is None
    assert m.get("a") == b"1" and m.get("c") == b"3"
    assert len(m) == 2


def test_eviction_by_bytes(clock: FakeClock) -> None:
    """Past max_bytes entries are evicted; an entry larger than the tier is not stored."""
    m = MemoryBackend(max_bytes=2 * (2 * 100 + 96), clock=clock)
    m.set("a", b"x" * 100, None)
    m.set("b", b"x" * 100, None)
    m.set("c", b"x" * 100, None)
    assert m.get("a") is None and m.get("c") is not None
    assert m.currsize <= m.max_bytes
    m.set("huge", b"x" * 10_000, None)
    assert m.get("huge") is None


def test_clear_by_prefix(clock: FakeClock) -> None:
    """clear(prefix) removes only the keys under the prefix and says how many."""
    m = MemoryBackend(clock=clock)
    for k in ("ns:f1:a", "ns:f1:b", "ns:f2:a"):
        m.set(k, b"v", None)
    assert m.clear("ns:f1:") == 2
    assert m.get("ns:f2:a") == b"v"
    assert m.clear() == 1
    assert len(m) == 0


def test_purge_drops_expired(clock: FakeClock) -> None:
    """purge() drops expired entries without touching live ones."""
    m = MemoryBackend(clock=clock)
    m.set("old", b"1", 1)
    m.set("new", b"2", 100)
    clock.advance(2)
    assert m.purge() == 1
    assert len(m) == 1


def test_invalid_limits() -> None:
    """Non-positive limits are refused with the values in the message."""
    with pytest.raises(ValueError, match="0"):
        MemoryBackend(max_entries=0)


def test_async_face(clock: FakeClock) -> None:
    """The async methods do what the sync ones do."""
    m = MemoryBackend(clock=clock)

    async def scenario() -> tuple[bytes | None, int]:
        await m.aset("k", b"v", 5)
        got = await m.aget("k")
        await m.adelete("k")
        await m.aset("p:1", b"v", 5)
        return got, await m.aclear("p:")

    assert asyncio.run(scenario()) == (b"v", 1)


def test_thread_safety() -> None:
    """Eight threads hammering a small tier never corrupt it: limits hold and reads see whole values."""
    m = MemoryBackend(max_entries=50, max_bytes=50 * 400)

    def work(n: int) -> None:
        for i in range(3000):
            key = f"k{(i * 7 + n) % 120}"
            value = key.encode() * 3
            m.set(key, value, 60)
            got = m.get(key)
            assert got is None or got == value
            if i % 50 == 0:
                m.delete(f"k{i % 120}")

    assert in_threads(work) == []
    assert len(m) <= 50
    assert m.currsize <= m.max_bytes


def test_peek_keeps_hot_entries_recent_at_a_seconds_grain(clock: FakeClock) -> None:
    """peek() moves an entry to the recent end at most once a second: the hit path takes no lock."""
    m = MemoryBackend(max_entries=2, clock=clock)
    m.set("a", b"1", None)
    m.set("b", b"2", None)
    clock.advance(1.0)
    item = m.peek("a")
    assert item is not None and item.data == b"1"
    m.set("c", b"3", None)  # a was touched a second later than b was written: b goes
    assert m.peek("b") is None
    assert m.peek("c") is not None and m.peek("a") is not None
    m.set("d", b"4", None)  # within that second a's last peek did not move it again: a goes
    assert m.peek("a") is None
    assert m.peek("missing") is None


def test_peek_while_writers_evict(clock: FakeClock) -> None:
    """Lock-free peeks racing with writers that evict see an item or None, never an error."""
    m = MemoryBackend(max_entries=8, clock=clock)
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        n = 0
        while not stop.is_set():
            m.set(f"k{n % 64}", b"v", None)
            n += 1

    def reader() -> None:
        try:
            for i in range(20_000):
                if i % 100 == 0:
                    clock.advance(1.0)  # make peeks take the locked touch too
                item = m.peek(f"k{i % 64}")
                assert item is None or item.data == b"v"
        except BaseException as exc:  # reported below, on the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    threads[1].join()
    stop.set()
    threads[0].join()
    assert errors == []
    assert len(m) <= 8
