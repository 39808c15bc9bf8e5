"""Refresh-ahead and adaptive TTL at work: refresh an entry in the background, move a hot one's expiry.

The decisions are :mod:`memollm.core.keeping`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._log import logger
from ...codec import KIND_VALUE
from ..encode import encode
from ..keeping import UNKNOWN, hot, rewrite
from . import tiers, upstream

if TYPE_CHECKING:
    from ..calls import Call
    from ..plan import Plan
    from ..state import State

__all__ = ["refresh", "warm"]


def refresh(state: State, plan: Plan, key: str, made: Call) -> None:
    """Refresh an entry close to expiry in the background, once per key at a time."""
    if not state.refreshes.claim(key):
        return

    async def job() -> None:
        try:
            result, worth = await upstream.paid(state, plan, made)
            data = encode(state, plan, result, KIND_VALUE, worth)
            if data is not None:
                await tiers.write(state, plan, key, data)
            state.stats.add("refreshes")
        except Exception as exc:  # noqa: BLE001 - the entry is still served until it expires
            logger.debug("%s: background refresh failed: %r", state.name, exc)
        finally:
            state.refreshes.release(key)

    state.refreshes.start_task(job)


async def warm(state: State, plan: Plan, key: str, kind: int, expires: float | None = UNKNOWN) -> None:
    """Count a hit on ``key``; once it is hot and near expiry, move its expiry out in every tier."""
    adaptive = plan.adaptive
    if adaptive is None or not hot(state.heat, state.clock(), adaptive, key, expires):
        return
    found = await tiers.quiet(state, plan, key, kind)
    rewritten = None if found is None else rewrite(state.codec, state.clock(), plan, adaptive, found.entry)
    if rewritten is not None:
        data, ttl = rewritten
        await tiers.each(state, plan, lambda tier: tier.aset(key, data, ttl))
