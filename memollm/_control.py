"""Per-context switches: skip the cache, or skip only the read."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["BYPASS", "NORMAL", "REFRESH", "bypass", "mode", "refresh"]

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
