"""Per-context switches: skip the cache, or skip only the read."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = [
    "BYPASS", "NORMAL", "REFRESH", "Lookup", "bypass", "current_tenant", "lookup", "mode", "note", "record",
    "refresh", "tenant",
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


def note(
    outcome: str, tier: str | None = None, similarity: float | None = None, created: float | None = None
) -> None:
    """Write to the active :func:`lookup` record, if there is one."""
    seen = _record.get()
    if seen is not None:
        seen.outcome, seen.tier, seen.similarity, seen.created = outcome, tier, similarity, created


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
