"""Per-context switches: skip the cache, skip only the read, or cache for one tenant.

Each is a context manager over a context variable: it applies to the thread or asyncio
task that enters it (and tasks it starts), never to others.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["BYPASS", "NORMAL", "REFRESH", "bypass", "current_tenant", "mode", "refresh", "tenant"]

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
