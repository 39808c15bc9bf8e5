"""The call a miss makes: the wrapped function, through retries and key failover, and what it cost."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ...resilience import retry as resilient
from ...statistics import Worth
from ..calls import Call, with_key, worth_of
from ..entry import END

if TYPE_CHECKING:
    from ..plan import Plan
    from ..state import State

__all__ = ["call", "first", "paid"]


async def call(
    state: State, plan: Plan, made: Call, first_chunk: Callable[[Any], Awaitable[Any]] | None = None
) -> Any:
    """Make the call (``first_chunk`` opens a stream inside the retries); retries are counted."""
    wrapped, args, kwargs = made

    async def once(key: str | None) -> Any:
        out = wrapped(*args, **with_key(plan, kwargs, key))
        return await first_chunk(out) if first_chunk is not None else await out

    if not plan.resilient:
        return await once(None)
    return await resilient.acall(once, retry=plan.retry, keys=plan.keys_pool, on_retry=state.count_retry)


async def paid(state: State, plan: Plan, made: Call) -> tuple[Any, Worth | None]:
    """The call's result, and what a later hit on it will save."""
    started = time.perf_counter()
    result = await call(state, plan, made)
    return result, worth_of(state, plan, made, result, time.perf_counter() - started)


async def first(stream: Any) -> tuple[Any, Any]:
    """Open a stream far enough to see its first chunk (or its end)."""
    try:
        return await stream.__anext__(), stream
    except StopAsyncIteration:
        return END, stream
