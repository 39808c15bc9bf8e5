"""Per-context switches: skip the cache, or skip only the read."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BYPASS", "NORMAL", "REFRESH", "Lookup", "Observation", "bypass", "current_tenant", "lookup", "mode",
    "note", "observe", "observing", "record", "refresh", "tenant",
]  # fmt: skip

NORMAL = 0
BYPASS = 1
REFRESH = 2

_mode: ContextVar[int] = ContextVar("memollm_mode", default=NORMAL)
mode = _mode.get


@contextmanager
def bypass() -> Iterator[None]:
    """Inside this block, cached functions neither read nor write the cache.

    Context-local: other threads and asyncio tasks are unaffected.
    """
    token = _mode.set(BYPASS)
    try:
        yield
    finally:
        _mode.reset(token)


@contextmanager
def refresh() -> Iterator[None]:
    """Inside this block, cached functions skip the read, call through and store the fresh result.

    Context-local: other threads and asyncio tasks are unaffected.
    """
    token = _mode.set(REFRESH)
    try:
        yield
    finally:
        _mode.reset(token)


@dataclass(slots=True)
class Lookup:
    """What happened to the last cached call made inside a :func:`lookup` block.

    ``outcome`` is ``"hit"``, ``"semantic-hit"`` (with its ``similarity``), ``"miss"``,
    ``"stale"`` (the call failed and an expired entry was served), ``"coalesced"`` (another
    caller's call was shared), ``"bypass"`` or ``"uncacheable"``; ``tier`` names the tier
    of a hit.
    """

    outcome: str | None = None
    tier: str | None = None
    similarity: float | None = None
    created: float | None = None  # when the served entry was stored (wall clock)

    @property
    def stale(self) -> bool:
        """Whether the answer was an expired entry served because the call failed."""
        return self.outcome == "stale"


_record: ContextVar[Lookup | None] = ContextVar("memollm_lookup", default=None)
record = _record.get


@contextmanager
def lookup() -> Iterator[Lookup]:
    """Record what happens to cached calls in this block (context-local).

    For example::

    with memollm.lookup() as seen:
        answer = ask(question)
    if seen.stale: ...
    """
    seen = Lookup()
    token = _record.set(seen)
    try:
        yield seen
    finally:
        _record.reset(token)


@dataclass(slots=True)
class Observation:
    """What one call did, gathered for its :class:`~memollm.events.CacheEvent`.

    ``looked`` is when the lookup ended (the first outcome noted); ``worth`` is the
    :class:`~memollm._stats.Worth` of the entry served, or of the fresh result stored.
    """

    outcome: str | None = None
    tier: str | None = None
    similarity: float | None = None
    looked: float | None = None
    worth: Any = None


_observe: ContextVar[Observation | None] = ContextVar("memollm_observe", default=None)
observing = _observe.get


@contextmanager
def observe() -> Iterator[Observation]:
    """Gather what the cached call made in this block does (one call; nested calls have their own)."""
    seen = Observation()
    token = _observe.set(seen)
    try:
        yield seen
    finally:
        _observe.reset(token)


def note(
    outcome: str,
    tier: str | None = None,
    similarity: float | None = None,
    created: float | None = None,
    worth: Any = None,
) -> None:
    """Write to the active :func:`lookup` record and call observation, if there are any."""
    seen = _record.get()
    if seen is not None:
        seen.outcome, seen.tier, seen.similarity, seen.created = outcome, tier, similarity, created
    obs = _observe.get()
    if obs is not None:
        if obs.looked is None:
            obs.looked = time.perf_counter()
        obs.outcome, obs.tier, obs.similarity = outcome, tier, similarity
        if worth is not None:
            obs.worth = worth


_tenant: ContextVar[object] = ContextVar("memollm_tenant", default=None)
current_tenant = _tenant.get


@contextmanager
def tenant(scope: object) -> Iterator[None]:
    """Calls in this block are cached for ``scope`` (a tenant or user id) alone.

    The scope is part of every exact key and every semantic partition: one tenant's
    answers are never served to another. Context-local, like :func:`bypass`.
    """
    token = _tenant.set(scope)
    try:
        yield
    finally:
        _tenant.reset(token)
