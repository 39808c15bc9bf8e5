"""The call a miss makes: the wrapped function, through retries and key failover, and what it cost.

What a call cost (its tokens, price and duration) is written into the stored entry, so every
later hit on it, in any tier and any process, adds it to the savings.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from types import MethodType
from typing import TYPE_CHECKING, Any

from .._log import warn_limited
from ..pricing import cost_of
from ..resilience import retry as resilient
from ..statistics import Worth
from ..usage import prompt_text, usage_of

if TYPE_CHECKING:
    from .plan import Plan
    from .state import State

__all__ = ["END", "Call", "acall", "afirst", "apaid", "call", "first", "paid", "worth_of"]

END: Any = object()  # a stream that ended before its first chunk


# The wrapped callable and the arguments of one call: (wrapped, args, kwargs). A plain tuple:
# every call makes one, and a named tuple would cost it a tenth of a hit.
Call = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]


def _with_key(plan: Plan, kwargs: dict[str, Any], key: str | None) -> dict[str, Any]:
    param = plan.key_param
    return {**kwargs, param: key} if param and key is not None else kwargs


def call(state: State, plan: Plan, made: Call, first_chunk: Callable[[Any], Any] | None = None) -> Any:
    """Make the call (``first_chunk`` opens a stream inside the retries); retries are counted."""
    wrapped, args, kwargs = made

    def once(key: str | None) -> Any:
        out = wrapped(*args, **_with_key(plan, kwargs, key))
        return first_chunk(out) if first_chunk is not None else out

    if not plan.resilient:
        return once(None)
    return resilient.call(once, retry=plan.retry, keys=plan.keys_pool, on_retry=state.count_retry)


async def acall(
    state: State, plan: Plan, made: Call, first_chunk: Callable[[Any], Awaitable[Any]] | None = None
) -> Any:
    """Async :func:`call`."""
    wrapped, args, kwargs = made

    async def once(key: str | None) -> Any:
        out = wrapped(*args, **_with_key(plan, kwargs, key))
        return await (first_chunk(out) if first_chunk is not None else out)

    if not plan.resilient:
        return await once(None)
    return await resilient.acall(once, retry=plan.retry, keys=plan.keys_pool, on_retry=state.count_retry)


def paid(state: State, plan: Plan, made: Call) -> tuple[Any, Worth | None]:
    """The call's result, and what a later hit on it will save."""
    started = time.perf_counter()
    result = call(state, plan, made)
    return result, worth_of(state, plan, made, result, time.perf_counter() - started)


async def apaid(state: State, plan: Plan, made: Call) -> tuple[Any, Worth | None]:
    """Async :func:`paid`."""
    started = time.perf_counter()
    result = await acall(state, plan, made)
    return result, worth_of(state, plan, made, result, time.perf_counter() - started)


def worth_of(state: State, plan: Plan, made: Call, result: Any, latency: float) -> Worth | None:
    """What a hit on this fresh result will save: its call's tokens, cost and duration."""
    try:
        wrapped, args, kwargs = made
        # The same bound arguments the key reads: a default model prices the call too.
        instance = wrapped.__self__ if isinstance(wrapped, MethodType) else None
        model = plan.keys.model_of(instance, args, kwargs)
        prompt = prompt_text((*args, *kwargs.values()))
        usage = (plan.policy.usage or usage_of)(result, prompt, model)
        return Worth(
            usage.input_tokens, usage.output_tokens, usage.estimated, usage.model, latency, cost_of(usage)
        )
    except Exception as exc:  # noqa: BLE001 - savings are reporting; the call must go on
        warn_limited(("usage", state.name), "%s: could not count a result's tokens: %r", state.name, exc)
        return None


def first(stream: Any) -> tuple[Any, Any]:
    """Open a stream far enough to see its first chunk (or its end)."""
    try:
        return next(stream), stream
    except StopIteration:
        return END, stream


async def afirst(stream: Any) -> tuple[Any, Any]:
    """Async :func:`first`."""
    try:
        return await stream.__anext__(), stream
    except StopAsyncIteration:
        return END, stream
