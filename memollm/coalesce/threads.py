"""Concurrent identical misses in one process, threads or asyncio tasks, make one upstream call."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

__all__ = ["SingleFlight"]

T = TypeVar("T")


class _LeaderGone(Exception):
    """The leader stopped without an outcome to share (cancelled, interrupted)."""


class _Flight(Generic[T]):
    __slots__ = ("done", "error", "result", "waiters")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None
        self.waiters = 0


class SingleFlight:
    """One upstream call per key at a time, among threads and among asyncio tasks.

    The first caller of a key (the leader) runs the call; callers that arrive while it
    runs (followers) wait and get the same result, or the same exception. If the leader
    is cancelled or interrupted, followers run the call themselves.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: dict[str, _Flight[Any]] = {}
        self._tasks: dict[tuple[asyncio.AbstractEventLoop, str], asyncio.Future[Any]] = {}

    def waiting(self, key: str) -> int:
        """How many threads wait on the call in flight for ``key``."""
        with self._lock:
            flight = self._threads.get(key)
            return 0 if flight is None else flight.waiters

    def run(self, key: str, fn: Callable[[], T]) -> tuple[T, bool]:
        """Run ``fn`` once for all concurrent callers of ``key``; return (result, led)."""
        with self._lock:
            flight = self._threads.get(key)
            leader = flight is None
            if flight is None:
                flight = self._threads[key] = _Flight()
            else:
                flight.waiters += 1
        if not leader:
            flight.done.wait()
            if isinstance(flight.error, _LeaderGone):
                return fn(), True
            if flight.error is not None:
                raise flight.error
            return flight.result, False  # type: ignore[return-value]
        try:
            flight.result = fn()
        except Exception as exc:
            flight.error = exc
            raise
        except BaseException:
            flight.error = _LeaderGone()
            raise
        finally:
            with self._lock:
                del self._threads[key]
            flight.done.set()
        return flight.result, True

    async def arun(self, key: str, fn: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """Async :meth:`run`, among the tasks of one event loop."""
        loop = asyncio.get_running_loop()
        slot = (loop, key)
        with self._lock:
            future = self._tasks.get(slot)
            leader = future is None
            if future is None:
                future = self._tasks[slot] = loop.create_future()
        if not leader:
            try:
                # shield: a follower being cancelled must not cancel the shared outcome.
                return await asyncio.shield(future), False
            except _LeaderGone:
                return await fn(), True
        try:
            result = await fn()
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: asyncio must not report it when no one followed
            raise
        except BaseException:
            future.set_exception(_LeaderGone())
            future.exception()
            raise
        else:
            future.set_result(result)
            return result, True
        finally:
            with self._lock:
                del self._tasks[slot]
