"""Concurrent identical streaming misses in one process share one upstream stream, chunk by chunk."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from typing import Any

__all__ = ["AsyncStreamFlights", "StreamFlights"]

_PULL: Any = object()  # steps a consumer takes when no chunk is waiting for it
_LAST: Any = object()
_END: Any = object()


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

    # The steps below decide; the two loops only lock, wait and do I/O. Call them under ``cond``.

    def must_wait(self, index: int) -> bool:
        """Whether a consumer at ``index`` waits: its chunk has not come and another is fetching it."""
        return index >= len(self.chunks) and not self.done and self.pulling

    def step(self, index: int) -> Any:
        """What a consumer at ``index`` does next: the chunk there, ``_PULL``, ``_LAST`` or ``_END``.

        ``_LAST``: the stream ended and this consumer reports it (once, ``on_complete``).
        Raises how the upstream failed, to every consumer.
        """
        if index < len(self.chunks):
            return self.chunks[index]
        if self.done:
            if self.error is not None:
                raise self.error
            first, self.completed = not self.completed, True
            return _LAST if first else _END
        self.pulling = True
        return _PULL

    def took(self, chunk: Any, end: object) -> bool:
        """Record what a pull brought (a chunk, or ``end``); True if the stream has ended."""
        if chunk is end:
            self.done = True
        else:
            self.chunks.append(chunk)
        self.pulling = False
        return chunk is end

    def broke(self, exc: BaseException) -> None:
        """Record that the upstream failed: every consumer raises it."""
        self.error, self.done, self.pulling = exc, True, False

    def left(self) -> bool:
        """A consumer left; True if it was the last before the end (the upstream must be closed)."""
        self.readers -= 1
        if self.readers == 0 and not self.done:
            self.done = True
            return True
        return False


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
                with shared.cond:
                    while shared.must_wait(index):
                        shared.cond.wait()
                    chunk = shared.step(index)
                if chunk is _PULL:
                    self._pull(key, shared)
                elif chunk is _LAST or chunk is _END:
                    break
                else:
                    index += 1
                    yield chunk
            if chunk is _LAST:
                on_complete(shared.chunks)
        finally:
            with shared.cond:
                abandoned = shared.left()
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
                shared.broke(exc)
                shared.cond.notify_all()
            self._forget(key, shared)
            return
        with shared.cond:
            ended = shared.took(chunk, self._end)
            shared.cond.notify_all()
        if ended:
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
                async with shared.cond:
                    while shared.must_wait(index):
                        await shared.cond.wait()
                    chunk = shared.step(index)
                if chunk is _PULL:
                    await self._pull(slot, shared)
                elif chunk is _LAST or chunk is _END:
                    break
                else:
                    index += 1
                    yield chunk
            if chunk is _LAST:
                await on_complete(shared.chunks)
        finally:
            if shared.left():
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
                shared.broke(exc)
                shared.cond.notify_all()
            self._forget(slot, shared)
            return
        async with shared.cond:
            ended = shared.took(chunk, self._end)
            shared.cond.notify_all()
        if ended:
            self._forget(slot, shared)

    def _forget(self, slot: tuple[asyncio.AbstractEventLoop, str], shared: _SharedStream) -> None:
        if self._streams.get(slot) is shared:
            del self._streams[slot]
