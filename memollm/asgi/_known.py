"""The middleware's fast path: request bytes answered before (a bounded LRU) and their replies."""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

__all__ = ["Known", "KnownRequests", "age", "header_lines"]

_AGES = tuple(str(n).encode() for n in range(3600))
_MAX_AGE = len(_AGES)


class Known:
    """One request's storage key and cache, and the headers of the last reply built for it."""

    __slots__ = ("cache", "head", "key", "used")

    def __init__(self, key: str, cache: Any) -> None:
        self.key, self.cache = key, cache
        self.head: tuple[Any, list[tuple[bytes, bytes]]] = (None, [])
        self.used = False  # served since eviction last passed it by

    def reply(self) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """(status, headers, body) from the memory tier's decoded copy, if it holds a fresh one."""
        served = self.cache.serve_memo(self.key)
        if served is None:
            return None
        value, created = served
        self.used = True
        head = self.head
        if head[0] is not value:  # a new entry under this key: build its headers once
            _, text, body = value
            lines = [*header_lines(text), (b"content-length", str(len(body)).encode()), (b"x-cache", b"HIT")]
            head = self.head = (value, lines)
        if created is None:
            return value[0], head[1], value[2]
        seconds = int(time.time() - created)  # age(), inline: this is every fast hit
        aged = _AGES[seconds] if 0 <= seconds < _MAX_AGE else str(max(0, seconds)).encode()
        return value[0], [*head[1], (b"age", aged)], value[2]


class KnownRequests:
    """Request identities (path, namespace, max-age, tenant, body bytes) mapped to :class:`Known`.

    Bounded by entries and by the body bytes it keeps, so one-off requests never crowd out
    hot ones and large bodies never pile up. Eviction is CLOCK, LRU's usual approximation:
    an entry served since eviction last reached it gets a second chance, which costs a hit
    one flag instead of a reordering. Bodies over ``max_body`` are not kept: they take the
    full path every time.
    """

    def __init__(
        self, *, max_entries: int = 10_000, max_bytes: int = 64 * 1024 * 1024, max_body: int = 256 * 1024
    ) -> None:
        self.max_entries, self.max_bytes, self.max_body = max_entries, max_bytes, max_body
        self._map: OrderedDict[tuple[Any, ...], Known] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()  # for add and forget; get is one atomic lookup
        # The dict's own get: the hot path makes no Python call to find an entry.
        self.get: Callable[[tuple[Any, ...]], Known | None] = self._map.get

    def __len__(self) -> int:
        return len(self._map)

    def entries(self) -> list[Known]:
        """A snapshot of the entries, oldest first."""
        return list(self._map.values())

    def identities(self) -> list[tuple[Any, ...]]:
        """A snapshot of the request identities known, oldest first."""
        return list(self._map)

    @property
    def bytes(self) -> int:
        """Body bytes held."""
        return self._bytes

    def add(self, identity: tuple[Any, ...], key: str, cache: Any) -> None:
        """Remember ``identity`` (its last item is the body), evicting to stay within bounds."""
        size = len(identity[-1])
        if size > self.max_body:
            return
        with self._lock:
            old = self._map.pop(identity, None)
            if old is not None:
                self._bytes -= size
            self._map[identity] = entry = Known(key, cache)
            entry.used = True  # it was just answered: it starts with its second chance
            self._bytes += size
            while len(self._map) > self.max_entries or self._bytes > self.max_bytes:
                evicted, entry = self._map.popitem(last=False)
                if entry.used:
                    entry.used = False  # a second chance, at the back of the queue
                    self._map[evicted] = entry
                else:
                    self._bytes -= len(evicted[-1])

    def forget(self, identity: tuple[Any, ...]) -> None:
        """Drop ``identity`` (its answer left the memory tier)."""
        with self._lock:
            if self._map.pop(identity, None) is not None:
                self._bytes -= len(identity[-1])


def age(created: float) -> bytes:
    """The Age header's value for an entry stored at wall-clock time ``created``."""
    seconds = int(time.time() - created)
    return _AGES[seconds] if 0 <= seconds < len(_AGES) else str(max(0, seconds)).encode()


@functools.lru_cache(maxsize=256)
def header_lines(text: str) -> tuple[tuple[bytes, bytes], ...]:
    """Stored "name: value" lines as ASGI header pairs (one upstream repeats a few header sets)."""
    pairs = []
    for line in text.split("\n") if text else ():
        name, _, value = line.partition(": ")
        pairs.append((name.encode("latin-1"), value.encode("latin-1")))
    return tuple(pairs)
