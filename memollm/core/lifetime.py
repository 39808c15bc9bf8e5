"""How long entries live past their first answer: refresh-ahead, and adaptive TTL for hot entries.

Refresh-ahead: a hit with less than ``refresh_ahead`` of its TTL left is served, and the call
is made again in the background (one at a time per key) to store a fresh answer.

Adaptive TTL: each process counts the hits it serves per key; once an entry is hot and near
its expiry, it is rewritten in every tier with a later expiry, never past its cap from
creation, so at most about twice per ``hot`` seconds.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from cachetools import LRUCache

from .._log import logger
from ..codec import KIND_VALUE, Entry
from ..errors import CodecError
from . import tiers, upstream
from .encode import encode

if TYPE_CHECKING:
    from ..policy import AdaptiveTTL
    from .plan import Plan
    from .state import State
    from .upstream import Call

__all__ = ["UNKNOWN", "Heat", "Refreshes", "awarm", "due", "refresh_in_task", "refresh_in_thread", "warm"]

UNKNOWN: Any = -1.0  # an expiry the caller of warm() does not know


def due(plan: Plan, expires: float | None, now: float) -> bool:
    """Whether a hit expiring at ``expires`` should be refreshed in the background."""
    return bool(plan.refresh_window) and expires is not None and expires - now < plan.refresh_window


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


def refresh_in_thread(state: State, plan: Plan, key: str, made: Call) -> None:
    """Refresh an entry close to expiry on a background thread, once per key at a time."""
    if not state.refreshes.claim(key):
        return

    def job() -> None:
        try:
            result, worth = upstream.paid(state, plan, made)
            data = encode(state, plan, result, KIND_VALUE, worth)
            if data is not None:
                tiers.write(state, plan, key, data)
            state.stats.add("refreshes")
        except Exception as exc:  # noqa: BLE001 - the entry is still served until it expires
            logger.debug("%s: background refresh failed: %r", state.name, exc)
        finally:
            state.refreshes.release(key)

    threading.Thread(target=job, name="memollm-refresh", daemon=True).start()


def refresh_in_task(state: State, plan: Plan, key: str, made: Call) -> None:
    """:func:`refresh_in_thread` for async functions, as a task on the running loop."""
    if not state.refreshes.claim(key):
        return

    async def job() -> None:
        try:
            result, worth = await upstream.apaid(state, plan, made)
            data = encode(state, plan, result, KIND_VALUE, worth)
            if data is not None:
                await tiers.awrite(state, plan, key, data)
            state.stats.add("refreshes")
        except Exception as exc:  # noqa: BLE001 - the entry is still served until it expires
            logger.debug("%s: background refresh failed: %r", state.name, exc)
        finally:
            state.refreshes.release(key)

    task = asyncio.get_running_loop().create_task(job())
    state.refreshes.tasks.add(task)  # keep a reference until it is done
    task.add_done_callback(state.refreshes.tasks.discard)


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


def _hot(state: State, adaptive: AdaptiveTTL, key: str, expires: float | None) -> bool:
    """Count a hit; whether the entry is hot and (as far as known) due for a later expiry."""
    if state.heat.count(key) < adaptive.hot_after:
        return False
    return expires is UNKNOWN or (expires is not None and expires - state.clock() < adaptive.hot / 2)


def _rewrite(state: State, plan: Plan, adaptive: AdaptiveTTL, entry: Entry) -> tuple[bytes, float] | None:
    """The entry re-encoded with its later expiry, and the TTL to store it with; None if not due."""
    now = state.clock()
    target = min(now + adaptive.hot, entry.created + adaptive.cap)
    if entry.expires is None or entry.expires - now >= adaptive.hot / 2 or target <= entry.expires:
        return None
    try:
        data = state.codec.encode(
            entry.value, kind=entry.kind, created=entry.created, expires=target, meta=entry.meta
        )
    except CodecError:
        return None
    return data, target - now + (plan.stale or 0.0)


def warm(state: State, plan: Plan, key: str, kind: int, expires: float | None = UNKNOWN) -> None:
    """Count a hit on ``key``; once it is hot and near expiry, move its expiry out in every tier."""
    adaptive = plan.adaptive
    if adaptive is None or not _hot(state, adaptive, key, expires):
        return
    found = tiers.quiet(state, plan, key, kind)
    rewritten = None if found is None else _rewrite(state, plan, adaptive, found.entry)
    if rewritten is not None:
        data, ttl = rewritten
        tiers.each(state, plan, lambda tier: tier.set(key, data, ttl))


async def awarm(state: State, plan: Plan, key: str, kind: int, expires: float | None = UNKNOWN) -> None:
    """Async :func:`warm`."""
    adaptive = plan.adaptive
    if adaptive is None or not _hot(state, adaptive, key, expires):
        return
    found = await tiers.aquiet(state, plan, key, kind)
    rewritten = None if found is None else _rewrite(state, plan, adaptive, found.entry)
    if rewritten is not None:
        data, ttl = rewritten
        await tiers.aeach(state, plan, lambda tier: tier.aset(key, data, ttl))
