"""The ``fn.cache`` helpers that touch the tiers: read without calling, clear, invalidate.

:func:`get` makes the same lookup a call makes (exact tiers with promotion, then the semantic
tier), counted as a hit or a miss; on a miss nothing is called and nothing is stored. The
semantic step and the server index are sync work: an async function runs them on a worker thread.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ...codec import KIND_VALUE
from ..decide import decide
from ..entry import MISSING
from ..semantic import lookup, vectors
from . import tiers

if TYPE_CHECKING:
    from ..plan import Plan
    from ..state import State

__all__ = ["clear", "get", "invalidate"]


async def get(state: State, args: tuple[Any, ...], kwargs: dict[str, Any], default: Any = None) -> Any:
    """The cached answer to a call with these arguments, or ``default``."""
    plan, key, read = decide(state, state.bound, args, kwargs)
    if key is None or not read:
        return default
    value, _, _ = await tiers.read(state, plan, key, KIND_VALUE)
    if value is MISSING and plan.semantic is not None:
        made = (state.raw, args, kwargs)
        value, _ = await asyncio.to_thread(lookup.find, state, plan, state.bound, made, KIND_VALUE)
    return default if value is MISSING else value


async def clear(state: State, plan: Plan) -> int:
    """Remove the function's entries (all argument values, all versions) from every tier and index."""
    if plan.semantic is not None:
        await asyncio.to_thread(vectors.clear, state, plan, plan.keys.prefix)
    return await tiers.each(state, plan, lambda tier: tier.aclear(plan.keys.prefix))


async def invalidate(state: State, plan: Plan, key: str, partition: str | None) -> None:
    """Remove one call's entry from every tier, and its prompt from the index."""
    if plan.semantic is not None and partition is not None:
        await asyncio.to_thread(vectors.remove, state, plan, partition, key)
    await tiers.each(state, plan, lambda tier: tier.adelete(key))
