"""The tier walk: read through the tiers fastest first, promote a lower hit, write to every tier.

Every decision is :mod:`memollm.core.walk`'s; these loops only move bytes. The in-process
memory tier is read inline: it never waits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ...backends import Backend
from ...backends.capabilities import Fencing
from ...codec import Entry
from ..entry import Rejected, live, remaining, stale_ok
from ..walk import Found, Stored, failed, fenced_out, hit, judge, memory, missed, stored

if TYPE_CHECKING:
    from ..plan import Plan
    from ..state import State

__all__ = ["each", "quiet", "read", "write"]


async def read(state: State, plan: Plan, key: str, kind: int) -> Found:
    """Look ``key`` up tier by tier, counting the hit or the miss."""
    now = state.clock()
    stale, start = None, 0
    if plan.peek is not None:
        start = 1
        found, stale = memory(state, plan, key, kind, now)
        if found is not None:
            return found
    for index in range(start, len(plan.tiers)):
        tier = plan.tiers[index]
        try:
            data = await tier.aget(key)
            if data is None:
                continue
            entry = judge(state, data, kind)
            if entry is Rejected.DROP:
                await tier.adelete(key)
            if type(entry) is not Entry:
                continue
        except Exception as exc:  # noqa: BLE001 - a failing tier is skipped
            failed(state, plan, plan.names[index], exc)
            continue
        if not live(entry, now):
            stale = stale or (entry if stale_ok(entry, plan.stale, now) else None)
            continue
        if index:  # copy a lower tier's hit upwards with the TTL it has left, never a fresh one
            left = remaining(plan.ttl, plan.stale, entry.expires, now)
            await each(state, plan, lambda up: up.aset(key, data, left), upto=index)  # noqa: B023 - runs now
        return (hit(state, plan, index, entry), entry.expires, None)
    return missed(state, stale)


async def quiet(state: State, plan: Plan, key: str, kind: int) -> Stored | None:
    """A live entry under ``key`` in any tier, without counting a lookup."""
    now = state.clock()
    for index, tier in enumerate(plan.tiers):
        try:
            data = await tier.aget(key)
        except Exception as exc:  # noqa: BLE001 - a failing tier is skipped
            failed(state, plan, plan.names[index], exc)
            continue
        found = None if data is None else stored(state, data, kind, now)
        if found is not None:
            return found
    return None


async def write(state: State, plan: Plan, key: str, data: bytes, fence: int | None = None) -> None:
    """Store an entry in every tier, for its TTL plus the stale window.

    ``fence``: the token of the lease it was made under. The lock tier is written first and
    refuses it if a later holder stored its answer; then no tier is written.
    """
    ttl = plan.physical_ttl
    done = None
    lock = plan.lock
    if fence is not None and lock is not None:
        backend = lock.backend
        if isinstance(backend, Fencing):
            try:
                if not await lock.acall(lambda: backend.aset_fenced(key, data, ttl, fence)):
                    fenced_out(state)
                    return
                done = lock
            except Exception as exc:  # noqa: BLE001 - a failing tier is skipped
                failed(state, plan, lock.name, exc)
    await each(state, plan, lambda tier: tier.aset(key, data, ttl), skip=done)
    state.stats.add("stores")


async def each(
    state: State,
    plan: Plan,
    op: Callable[[Backend], Awaitable[int | None]],
    upto: int | None = None,
    skip: object = None,
) -> int:
    """Run ``op`` on each tier (the first ``upto``, but ``skip``), skipping failures; sum what it returns."""
    total = 0
    for name, tier in zip(plan.names[:upto], plan.tiers[:upto], strict=True):
        if tier is skip:
            continue
        try:
            total += await op(tier) or 0
        except Exception as exc:  # noqa: BLE001 - a failing tier is skipped
            failed(state, plan, name, exc)
    return total
