"""A call or a stream observed whole: what it did, delivered to the event hooks when it ends."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from ... import events
from ..observe import Observation, observe

__all__ = ["observed", "observed_stream"]


async def observed(name: str, call: Callable[..., Any], *args: Any) -> Any:
    """``call(*args)``, with the event of what it did delivered to the hooks."""
    wall, started = time.time(), time.perf_counter()
    with observe() as seen:
        try:
            result = await call(*args)
        except BaseException:
            events.emit(events.build(name, started, wall, seen, failed=True))
            raise
    events.emit(events.build(name, started, wall, seen))
    return result


async def observed_stream(
    name: str, stream: AsyncGenerator[Any, None], seen: Observation, started: float, wall: float
) -> AsyncIterator[Any]:
    """``stream`` with its event delivered when it ends; each step runs with ``seen`` current.

    The context variable is set around each step, not across yields: a generator's caller
    owns the context between steps.
    """
    failed = False
    try:
        while True:
            with observe(seen):
                try:
                    chunk = await stream.__anext__()
                except StopAsyncIteration:
                    return
                except BaseException:
                    failed = True
                    raise
            yield chunk
    finally:
        await stream.aclose()
        events.emit(events.build(name, started, wall, seen, failed=failed))
