"""Both faces of a cached function from one test: written once, run sync and async.

A feature suite takes the ``face`` fixture and writes plain functions; ``face.shaped`` turns a
function (or generator function) into the face's kind, and ``face.call``/``face.read`` call
the cached result, awaiting it on the face's own event loop when the face is async.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any


class Face:
    """``sync`` or ``async``: how the functions of one test are written and called."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop = asyncio.new_event_loop() if name == "async" else None
        self.backends: list[Any] = []

    def __repr__(self) -> str:
        return f"Face({self.name})"

    def shaped(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` as this face writes it: itself, or an async function (async generator) calling it."""
        if self.loop is None:
            return fn
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            async def agen(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
                for chunk in fn(*args, **kwargs):
                    yield chunk

            return agen

        @functools.wraps(fn)
        async def afn(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

        return afn

    def call(self, cached: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a cached function of this face and return its result."""
        if self.loop is None:
            return cached(*args, **kwargs)
        return self.loop.run_until_complete(cached(*args, **kwargs))

    def read(self, cached: Callable[..., Any], *args: Any, **kwargs: Any) -> list[Any]:
        """Call a cached generator function of this face and read the whole stream."""
        if self.loop is None:
            return list(cached(*args, **kwargs))

        async def drain() -> list[Any]:
            return [chunk async for chunk in cached(*args, **kwargs)]

        return self.loop.run_until_complete(drain())

    def uses(self, backend: Any) -> None:
        """Close ``backend``'s connections on this face's loop when the test ends."""
        self.backends.append(backend)

    def close(self) -> None:
        """Close the loop's connections of the backends used, then the loop."""
        if self.loop is None:
            return
        for backend in self.backends:
            aclose = getattr(backend, "aclose", None)
            if aclose is not None:
                self.loop.run_until_complete(aclose())
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()
