"""Concurrent identical streaming misses in one process share one upstream stream, chunk by chunk."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from typing import Any

__all__ = ["AsyncStreamFlights", "StreamFlights"]

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
