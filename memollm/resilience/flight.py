"""Single-flight: concurrent identical misses make one upstream call and share its outcome."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from typing import Any, Generic, TypeVar

__all__ = ["AsyncStreamFlights", "SingleFlight", "StreamFlights"]

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


_NOTHING: Any = object()


class _SharedStream:
    """One upstream stream read by every consumer, each from the first chunk."""

    def __init__(self, open_stream: Callable[[], Any], cond: Any) -> None:
        self.open_stream = open_stream  # -> (first chunk or the end marker, the iterator)
        self.cond = cond  # threading.Condition, or asyncio.Condition for async streams
        self.chunks: list[Any] = []
        self.done = False
        self.error: BaseException | None = None
        self.pulling = False
        self.readers = 0
        self.upstream: Any = None
        self.completed = False  # claimed by the reader that reports completion


class StreamFlights:
    """Concurrent identical streaming misses share one upstream stream.

    Every consumer reads the same chunks from the start. Whoever needs a chunk that
    has not arrived, while no one else is fetching one, pulls it from upstream; so a
    consumer that stops early does not stop the others. The upstream is closed only
    when every consumer has left before its end. ``on_complete(chunks)`` runs once,
    when the stream ends normally.
    """

    def __init__(self, end: object) -> None:
        self._end = end
        self._lock = threading.Lock()
        self._streams: dict[str, _SharedStream] = {}

    def read(
        self,
        key: str,
        open_stream: Callable[[], tuple[Any, Any]],
        on_complete: Callable[[list[Any]], object],
        on_join: Callable[[], None],
    ) -> Generator[Any, None, None]:
        """A generator of the shared stream's chunks for one consumer."""
        with self._lock:
            shared = self._streams.get(key)
            if shared is None:
                shared = self._streams[key] = _SharedStream(open_stream, threading.Condition())
            else:
                on_join()
            with shared.cond:
                shared.readers += 1
        return self._consume(key, shared, on_complete)

    def _consume(
        self, key: str, shared: _SharedStream, on_complete: Callable[[list[Any]], object]
    ) -> Generator[Any, None, None]:
        index = 0
        try:
            while True:
                chunk = _NOTHING
                with shared.cond:
                    while index >= len(shared.chunks) and not shared.done and shared.pulling:
                        shared.cond.wait()
                    if index < len(shared.chunks):
                        chunk = shared.chunks[index]
                        index += 1
                    elif shared.done:
                        if shared.error is not None:
                            raise shared.error
                        claim = not shared.completed
                        shared.completed = True
                        break
                    else:
                        shared.pulling = True
                if chunk is _NOTHING:
                    self._pull(key, shared)
                    continue
                yield chunk
            if claim:
                on_complete(shared.chunks)
        finally:
            with shared.cond:
                shared.readers -= 1
                abandoned = shared.readers == 0 and not shared.done
                if abandoned:
                    shared.done = True
            if abandoned:
                self._forget(key, shared)
                close = getattr(shared.upstream, "close", None)
                if close is not None:
                    close()

    def _pull(self, key: str, shared: _SharedStream) -> None:
        try:
            if shared.upstream is None:
                chunk, shared.upstream = shared.open_stream()
            else:
                chunk = next(shared.upstream)
        except StopIteration:
            chunk = self._end
        except BaseException as exc:  # noqa: BLE001 - every consumer must learn how it ended
            with shared.cond:
                shared.error, shared.done, shared.pulling = exc, True, False
                shared.cond.notify_all()
            self._forget(key, shared)
            return
        with shared.cond:
            if chunk is self._end:
                shared.done = True
            else:
                shared.chunks.append(chunk)
            shared.pulling = False
            shared.cond.notify_all()
        if chunk is self._end:
            self._forget(key, shared)

    def _forget(self, key: str, shared: _SharedStream) -> None:
        with self._lock:
            if self._streams.get(key) is shared:
                del self._streams[key]


class AsyncStreamFlights:
    """:class:`StreamFlights` for async generators, among the tasks of one event loop."""

    def __init__(self, end: object) -> None:
        self._end = end
        self._streams: dict[tuple[asyncio.AbstractEventLoop, str], _SharedStream] = {}

    def read(
        self,
        key: str,
        open_stream: Callable[[], Awaitable[tuple[Any, Any]]],
        on_complete: Callable[[list[Any]], Awaitable[None]],
        on_join: Callable[[], None],
    ) -> AsyncGenerator[Any, None]:
        """An async generator of the shared stream's chunks for one consumer."""
        slot = (asyncio.get_running_loop(), key)
        shared = self._streams.get(slot)
        if shared is None:
            shared = self._streams[slot] = _SharedStream(open_stream, asyncio.Condition())
        else:
            on_join()
        shared.readers += 1
        return self._consume(slot, shared, on_complete)

    async def _consume(
        self,
        slot: tuple[asyncio.AbstractEventLoop, str],
        shared: _SharedStream,
        on_complete: Callable[[list[Any]], Awaitable[None]],
    ) -> AsyncGenerator[Any, None]:
        index = 0
        try:
            while True:
                chunk = _NOTHING
                async with shared.cond:
                    while index >= len(shared.chunks) and not shared.done and shared.pulling:
                        await shared.cond.wait()
                    if index < len(shared.chunks):
                        chunk = shared.chunks[index]
                        index += 1
                    elif shared.done:
                        if shared.error is not None:
                            raise shared.error
                        claim = not shared.completed
                        shared.completed = True
                        break
                    else:
                        shared.pulling = True
                if chunk is _NOTHING:
                    await self._pull(slot, shared)
                    continue
                yield chunk
            if claim:
                await on_complete(shared.chunks)
        finally:
            shared.readers -= 1
            if shared.readers == 0 and not shared.done:
                shared.done = True
                self._forget(slot, shared)
                if shared.upstream is not None:
                    await shared.upstream.aclose()

    async def _pull(self, slot: tuple[asyncio.AbstractEventLoop, str], shared: _SharedStream) -> None:
        try:
            if shared.upstream is None:
                chunk, shared.upstream = await shared.open_stream()
            else:
                chunk = await shared.upstream.__anext__()
        except StopAsyncIteration:
            chunk = self._end
        except BaseException as exc:  # noqa: BLE001 - every consumer must learn how it ended
            async with shared.cond:
                shared.error, shared.done, shared.pulling = exc, True, False
                shared.cond.notify_all()
            self._forget(slot, shared)
            return
        async with shared.cond:
            if chunk is self._end:
                shared.done = True
            else:
                shared.chunks.append(chunk)
            shared.pulling = False
            shared.cond.notify_all()
        if chunk is self._end:
            self._forget(slot, shared)

    def _forget(self, slot: tuple[asyncio.AbstractEventLoop, str], shared: _SharedStream) -> None:
        if self._streams.get(slot) is shared:
            del self._streams[slot]
