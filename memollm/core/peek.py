"""Reading the cache without calling the function: ``fn.cache.get`` (for adapters like LangChain's).

The same lookup a call makes (exact tiers with promotion, then the semantic tier), counted
as a hit or a miss; on a miss nothing is called and nothing is stored.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..codec import KIND_VALUE
from . import similar, tiers
from .decide import decide
from .entry import MISSING

if TYPE_CHECKING:
    from .state import State

__all__ = ["aget", "get"]


def get(state: State, args: tuple[Any, ...], kwargs: dict[str, Any], default: Any = None) -> Any:
    """The cached answer to a call with these arguments, or ``default``."""
    plan, key, read = decide(state, state.bound, args, kwargs)
    if key is None or not read:
        return default
    value, _, _ = tiers.read(state, plan, key, KIND_VALUE)
    if value is MISSING and plan.semantic is not None:
        value, _ = similar.find(state, plan, state.bound, (state.raw, args, kwargs), KIND_VALUE)
    return default if value is MISSING else value


async def aget(state: State, args: tuple[Any, ...], kwargs: dict[str, Any], default: Any = None) -> Any:
    """Async :func:`get`: tier I/O awaited, the semantic step on a worker thread."""
    plan, key, read = decide(state, state.bound, args, kwargs)
    if key is None or not read:
        return default
    value, _, _ = await tiers.aread(state, plan, key, KIND_VALUE)
    if value is MISSING and plan.semantic is not None:
        value, _ = await asyncio.to_thread(
            similar.find, state, plan, state.bound, (state.raw, args, kwargs), KIND_VALUE
        )
    return default if value is MISSING else value
