"""The in-process tier: an LRU of bytes with per-entry TTL, bounded by entries and bytes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from cachetools import Cache, LRUCache

__all__ = ["MemoryBackend", "MemoryItem"]

_ENTRY_OVERHEAD = 96  # rough bytes of bookkeeping per entry, so tiny values still count
_PURGE_EVERY = 1024
_TOUCH_EVERY = 1.0  # seconds: how stale peek() lets an entry's place in the LRU order get
_read = Cache.__getitem__  # a read that leaves the LRU order alone


class MemoryItem:
    """One stored entry.

    ``memo`` is a slot the cache layer may fill with the decoded value when that
    value is immutable, so repeated hits skip decoding.
    """

    __slots__ = ("data", "expires", "memo", "touched")

    def __init__(self, data: bytes, expires: float | None, touched: float = 0.0) -> None:
        self.data = data
        self.expires = expires
        self.memo: Any = None  # a memollm.core.entry.Memo
        self.touched = touched  # when peek() last moved it to the recent end


def _size(item: MemoryItem) -> int:
    # Twice the encoded size: room for the decoded copy the memo slot may hold.
    return 2 * len(item.data) + _ENTRY_OVERHEAD


class MemoryBackend:
    """Thread-safe in-process tier (cachetools LRU with per-entry expiry)."""

    name = "memory"

    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        max_bytes: int = 256 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError(
                f"max_entries and max_bytes must be positive, got {max_entries!r} and {max_bytes!r}"
            )
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._lru: LRUCache[str, MemoryItem] = LRUCache(max_bytes, getsizeof=_size)
        self._lock = threading.Lock()
        self._sets = 0
        # Counters (for error-bounded semantic hits): key -> (fields, expiry), bounded by keys.
        self._counts: LRUCache[str, tuple[dict[str, int], float | None]] = LRUCache(maxsize=max_entries)

    def __repr__(self) -> str:
        return f"MemoryBackend(entries={len(self._lru)}, bytes={self.currsize})"

    def __len__(self) -> int:
        return len(self._lru)

    @property
    def currsize(self) -> int:
        """Bytes accounted to the stored entries."""
        return int(self._lru.currsize)

    def get(self, key: str) -> bytes | None:
        """Return the bytes stored under ``key``, or ``None`` if absent or expired."""
        with self._lock:
            try:
                item = self._lru[key]
            except KeyError:
                return None
            if item.expires is not None and item.expires <= self._clock():
                del self._lru[key]
                return None
            return item.data

    def peek(self, key: str) -> MemoryItem | None:
        """Return the stored item (bytes plus memo slot) without checking its expiry.

        For the cache layer, which checks the entry's own expiry: it is never later
        than the tier's, so an item kept a little past its TTL is never served. The hot
        path of every memoised hit, so it reads without the lock (one dict read, atomic)
        and moves the entry to the recent end of the LRU order at most once a second: a
        hot entry then never drifts more than a second's worth of writes from that end.
        """
        try:
            item: MemoryItem = _read(self._lru, key)
        except KeyError:
            return None
        now = self._clock()
        if now - item.touched >= _TOUCH_EVERY:
            with self._lock:
                try:
                    self._lru[key]  # the LRU lookup is the touch
                except KeyError:  # evicted meanwhile
                    return None
            item.touched = now
        return item

    def set(self, key: str, value: bytes, ttl: float | None) -> None:
        """Store ``value`` for ``ttl`` seconds, evicting least recently used entries to fit."""
        now = self._clock()
        expires = None if ttl is None else now + ttl
        with self._lock:
            try:
                self._lru[key] = MemoryItem(value, expires, now)
            except ValueError:  # larger than the whole tier: not stored
                self._lru.pop(key, None)
                return
            while len(self._lru) > self.max_entries:
                self._lru.popitem()
            self._sets += 1
            if self._sets % _PURGE_EVERY == 0:
                self._purge_locked()

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        with self._lock:
            self._lru.pop(key, None)

    def clear(self, prefix: str = "") -> int:
        """Remove every key starting with ``prefix``; return how many were removed."""
        with self._lock:
            if not prefix:
                n = len(self._lru)
                self._lru.clear()
                self._counts.clear()
                return n
            for k in [k for k in self._counts if k.startswith(prefix)]:
                del self._counts[k]
            doomed = [k for k in self._lru if k.startswith(prefix)]
            for k in doomed:
                del self._lru[k]
            return len(doomed)

    def purge(self) -> int:
        """Drop expired entries now; return how many were dropped."""
        with self._lock:
            return self._purge_locked()

    def _purge_locked(self) -> int:
        now = self._clock()
        # Cache.__getitem__ reads without touching the LRU order.
        peek = Cache.__getitem__
        doomed = [k for k in self._lru if (exp := peek(self._lru, k).expires) is not None and exp <= now]
        for k in doomed:
            del self._lru[k]
        return len(doomed)

    def add_counts(self, key: str, deltas: dict[str, int], ttl: float | None) -> None:
        """Add ``deltas`` to the counters under ``key``, which then live ``ttl`` seconds."""
        now = self._clock()
        with self._lock:
            found = self._counts.get(key)
            fields = {} if found is None or (found[1] is not None and found[1] <= now) else found[0]
            for name, delta in deltas.items():
                fields[name] = fields.get(name, 0) + delta
            self._counts[key] = (fields, None if ttl is None else now + ttl)

    def get_counts(self, key: str) -> dict[str, int]:
        """The counters under ``key`` (empty if none or expired)."""
        with self._lock:
            found = self._counts.get(key)
            if found is None or (found[1] is not None and found[1] <= self._clock()):
                return {}
            return dict(found[0])

    async def aget(self, key: str) -> bytes | None:
        """Async face of :meth:`get` (in-process, so it never waits)."""
        return self.get(key)

    async def aset(self, key: str, value: bytes, ttl: float | None) -> None:
        """Async face of :meth:`set`."""
        self.set(key, value, ttl)

    async def adelete(self, key: str) -> None:
        """Async face of :meth:`delete`."""
        self.delete(key)

    async def aclear(self, prefix: str = "") -> int:
        """Async face of :meth:`clear`."""
        return self.clear(prefix)
