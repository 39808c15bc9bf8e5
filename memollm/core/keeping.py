"""How long entries live past their first answer, decided: refresh-ahead and adaptive TTL.

Refresh-ahead: a hit with less than ``refresh_ahead`` of its TTL left is served, and the call
is made again in the background (one at a time per key) to store a fresh answer.

Adaptive TTL: each process counts the hits it serves per key; once an entry is hot and near
its expiry, it is rewritten in every tier with a later expiry, never past its cap from
creation, so at most about twice per ``hot`` seconds.

The I/O is :mod:`memollm.core.aio.lifetime` and its generated twin; what a cached function
keeps for it between calls (its refreshes under way, its hot keys) is here.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from cachetools import LRUCache

from ..codec import Codec, Entry
from ..errors import CodecError

if TYPE_CHECKING:
    from ..policy import AdaptiveTTL
    from .plan import Plan

__all__ = ["UNKNOWN", "Heat", "Refreshes", "due", "hot", "rewrite"]

UNKNOWN: Any = -1.0  # an expiry the caller of warm() does not know


class Refreshes:
    """The keys being refreshed now (one refresh per key at a time), and the async refresh tasks."""

    def __init__(self) -> None:
        self._keys: set[str] = set()
        self._lock = threading.Lock()
        self.tasks: set[asyncio.Task[None]] = set()

    def claim(self, key: str) -> bool:
        """Whether this caller may refresh ``key`` (False if another refresh of it runs)."""
        with self._lock:
            if key in self._keys:
                return False
            self._keys.add(key)
            return True

    def release(self, key: str) -> None:
        """``key``'s refresh has ended."""
        with self._lock:
            self._keys.discard(key)

    def start_thread(self, job: Callable[[], None]) -> None:
        """Run a sync function's refresh on a background thread."""
        threading.Thread(target=job, name="memollm-refresh", daemon=True).start()

    def start_task(self, job: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run an async function's refresh as a task on the running loop, referenced until it ends."""
        task = asyncio.get_running_loop().create_task(job())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


class Heat:
    """Hits per key served by this process (bounded: the least recently hit keys are forgotten)."""

    def __init__(self, size: int = 65_536) -> None:
        self._hits: LRUCache[str, int] = LRUCache(maxsize=size)
        self._lock = threading.Lock()

    def count(self, key: str) -> int:
        """Count a hit on ``key``; how many it has had."""
        with self._lock:
            hits = self._hits.get(key, 0) + 1
            self._hits[key] = hits
        return hits


def due(plan: Plan, expires: float | None, now: float) -> bool:
    """Whether a hit expiring at ``expires`` should be refreshed in the background."""
    return bool(plan.refresh_window) and expires is not None and expires - now < plan.refresh_window


def hot(heat: Heat, now: float, adaptive: AdaptiveTTL, key: str, expires: float | None) -> bool:
    """Count a hit; whether the entry is hot and (as far as known) due for a later expiry."""
    if heat.count(key) < adaptive.hot_after:
        return False
    return expires is UNKNOWN or (expires is not None and expires - now < adaptive.hot / 2)


def rewrite(
    codec: Codec, now: float, plan: Plan, adaptive: AdaptiveTTL, entry: Entry
) -> tuple[bytes, float] | None:
    """The entry re-encoded with its later expiry, and the TTL to store it with; None if not due."""
    target = min(now + adaptive.hot, entry.created + adaptive.cap)
    if entry.expires is None or entry.expires - now >= adaptive.hot / 2 or target <= entry.expires:
        return None
    try:
        data = codec.encode(
            entry.value, kind=entry.kind, created=entry.created, expires=target, meta=entry.meta
        )
    except CodecError:
        return None
    return data, target - now + (plan.stale or 0.0)
