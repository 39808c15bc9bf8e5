"""The tier walk: read through the tiers fastest first, promote a lower hit, write to every tier.

A failing tier is skipped (counted in ``stats().errors``, or raised with ``strict``); bytes
that fail the codec's validator are deleted from their tier and never copied upwards. The
sync and async faces share every decision below; only the loops that touch a tier are
written twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from .._log import logger, warn_once
from ..backends import Backend
from ..codec import Entry
from ..outcomes import Outcome
from ..statistics import Worth
from .entry import MISSING, Memo, Rejected, accept, fresh_memo, live, remaining, shareable, stale_ok
from .observe import note, why

if TYPE_CHECKING:
    from .plan import Plan
    from .state import State

__all__ = [
    "Found", "Stored", "aeach", "aquiet", "aread", "awrite", "each", "quiet", "read", "recheck", "write",
]  # fmt: skip


# A lookup's answer: (the value or MISSING on a miss, its expiry, a stale entry to fall back on).
# A plain tuple, unpacked at once: a named tuple would cost every lookup a tenth of a hit.
Found = tuple[Any, "float | None", "Entry | None"]


class Stored(NamedTuple):
    """A live entry found without counting a lookup (for waits and re-checks), and its bytes."""

    entry: Entry
    data: bytes


def _judge(state: State, data: bytes, kind: int) -> Entry | Rejected:
    verdict = accept(state.codec, data, kind)
    if type(verdict) is Rejected:
        state.stats.add("corrupt")
        if verdict is Rejected.DROP:
            warn_once(("corrupt", state.name), "%s: dropping an entry that does not decode", state.name)
    return verdict


def _hit(state: State, plan: Plan, index: int, entry: Entry | None, memo: Memo | None = None) -> Any:
    """Count a hit in tier ``index`` and what it saved; the value to return.

    ``memo``: the entry's memo, whose lock-free counter folds its savings in later.
    """
    next(plan.hits[index])
    if memo is not None:
        next(memo.hits)
        worth = memo.tally.worth
    else:
        worth = Worth.from_meta(entry.meta)  # type: ignore[union-attr]  # an entry or a memo
        if worth is not None:
            state.stats.saved(worth)
    note(Outcome.HIT, plan.names[index], created=None if entry is None else entry.created, worth=worth)
    return memo.value if entry is None else entry.value  # type: ignore[union-attr]


def _missed(state: State, stale: Entry | None) -> Found:
    state.stats.add("misses")
    note(Outcome.MISS)
    why(None)
    return (MISSING, None, stale)


def memo_of(state: State, entry: Entry) -> Memo | None:
    """What to keep beside a memory entry's bytes, if every caller may share its value."""
    value = shareable(entry)
    if value is MISSING:
        return None
    tally = state.stats.tally(Worth.from_meta(entry.meta))
    return Memo(entry.kind, entry.expires, value, tally.count, tally)


def _memory(state: State, plan: Plan, key: str, kind: int, now: float) -> tuple[Found | None, Entry | None]:
    """The first tier when it is in-process: (a hit or None, a stale entry or None)."""
    item = plan.peek(key)  # type: ignore[misc]  # only called with a peek
    if item is None:
        return None, None
    memo = fresh_memo(item, kind, now)
    if memo is not None:
        return (_hit(state, plan, 0, None, memo), memo.expires, None), None
    entry = _judge(state, item.data, kind)
    if type(entry) is not Entry:
        if entry is Rejected.DROP:
            plan.tiers[0].delete(key)
        return None, None
    if not live(entry, now):
        return None, entry if stale_ok(entry, plan.stale, now) else None
    memo = item.memo = memo_of(state, entry)
    return (_hit(state, plan, 0, entry, memo), entry.expires, None), None


def read(state: State, plan: Plan, key: str, kind: int) -> Found:
    """Look ``key`` up tier by tier, counting the hit or the miss."""
    now = state.clock()
    stale, start = None, 0
    if plan.peek is not None:
        start = 1
        found, stale = _memory(state, plan, key, kind, now)
        if found is not None:
            return found
    for index in range(start, len(plan.tiers)):
        tier = plan.tiers[index]
        try:
            data = tier.get(key)
            if data is None:
                continue
            entry = _judge(state, data, kind)
            if entry is Rejected.DROP:
                tier.delete(key)
            if type(entry) is not Entry:
                continue
        except Exception as exc:  # noqa: BLE001 - a failing tier is skipped
            state.tier_failed(plan, plan.names[index], exc)
            continue
        if not live(entry, now):
            stale = stale or (entry if stale_ok(entry, plan.stale, now) else None)
            continue
        if index:  # copy a lower tier's hit upwards with the TTL it has left, never a fresh one
            left = remaining(plan.ttl, plan.stale, entry.expires, now)
            each(state, plan, lambda up: up.set(key, data, left), upto=index)  # noqa: B023 - runs now
        return (_hit(state, plan, index, entry), entry.expires, None)
    return _missed(state, stale)


async def aread(state: State, plan: Plan, key: str, kind: int) -> Found:
    """Async :func:`read` (the in-process memory tier is read inline: it never waits)."""
    now = state.clock()
    stale, start = None, 0
    if plan.peek is not None:
        start = 1
        found, stale = _memory(state, plan, key, kind, now)
        if found is not None:
            return found
    for index in range(start, len(plan.tiers)):
        tier = plan.tiers[index]
        try:
            data = await tier.aget(key)
            if data is None:
                continue
            entry = _judge(state, data, kind)
            if entry is Rejected.DROP:
                await tier.adelete(key)
            if type(entry) is not Entry:
                continue
        except Exception as exc:  # noqa: BLE001 - a failing tier is skipped
            state.tier_failed(plan, plan.names[index], exc)
            continue
        if not live(entry, now):
            stale = stale or (entry if stale_ok(entry, plan.stale, now) else None)
            continue
        if index:
            left = remaining(plan.ttl, plan.stale, entry.expires, now)
            await aeach(state, plan, lambda up: up.aset(key, data, left), upto=index)  # noqa: B023 - runs now
        return (_hit(state, plan, index, entry), entry.expires, None)
    return _missed(state, stale)


def recheck(state: State, plan: Plan, key: str, kind: int) -> Stored | None:
    """The live entry a caller that finished just before us left in the memory tier, if any."""
    if plan.peek is None:
        return None
    item = plan.peek(key)
    if item is None:
        return None
    entry = accept(state.codec, item.data, kind)
    return Stored(entry, item.data) if type(entry) is Entry and live(entry, state.clock()) else None


def quiet(state: State, plan: Plan, key: str, kind: int) -> Stored | None:
    """A live entry under ``key`` in any tier, without counting a lookup."""
    now = state.clock()
    for index, tier in enumerate(plan.tiers):
        try:
            data = tier.get(key)
        except Exception as exc:  # noqa: BLE001 - a failing tier is skipped
            state.tier_failed(plan, plan.names[index], exc)
            continue
        if data is not None:
            entry = accept(state.codec, data, kind)
            if type(entry) is Entry and live(entry, now):
                return Stored(entry, data)
    return None


async def aquiet(state: State, plan: Plan, key: str, kind: int) -> Stored | None:
    """Async :func:`quiet`."""
    now = state.clock()
    for index, tier in enumerate(plan.tiers):
        try:
            data = await tier.aget(key)
        except Exception as exc:  # noqa: BLE001 - a failing tier is skipped
            state.tier_failed(plan, plan.names[index], exc)
            continue
        if data is not None:
            entry = accept(state.codec, data, kind)
            if type(entry) is Entry and live(entry, now):
                return Stored(entry, data)
    return None


def write(state: State, plan: Plan, key: str, data: bytes, fence: int | None = None) -> None:
    """Store an entry in every tier, for its TTL plus the stale window.

    ``fence``: the token of the lease it was made under. The lock tier is written first and
    refuses it if a later holder stored its answer; then no tier is written.
    """
    ttl = plan.physical_ttl
    done = None
    lock = plan.lock
    if fence is not None and lock is not None and callable(getattr(lock.backend, "set_fenced", None)):
        try:
            if not lock.call(lambda: lock.backend.set_fenced(key, data, ttl, fence)):
                _fenced_out(state)
                return
            done = lock
        except Exception as exc:  # noqa: BLE001 - a failing tier is skipped
            state.tier_failed(plan, lock.name, exc)
    each(state, plan, lambda tier: None if tier is done else tier.set(key, data, ttl))
    state.stats.add("stores")


async def awrite(state: State, plan: Plan, key: str, data: bytes, fence: int | None = None) -> None:
    """Async :func:`write`."""
    ttl = plan.physical_ttl
    done = None
    lock = plan.lock
    if fence is not None and lock is not None and callable(getattr(lock.backend, "aset_fenced", None)):
        try:
            if not await lock.acall(lambda: lock.backend.aset_fenced(key, data, ttl, fence)):
                _fenced_out(state)
                return
            done = lock
        except Exception as exc:  # noqa: BLE001 - a failing tier is skipped
            state.tier_failed(plan, lock.name, exc)
    await aeach(state, plan, lambda tier: _nothing() if tier is done else tier.aset(key, data, ttl))
    state.stats.add("stores")


async def _nothing() -> None:
    return None


def _fenced_out(state: State) -> None:
    logger.info("%s: an answer made under a lease that lapsed was not stored: the process that took "
                "the lease over stored its own", state.name)  # fmt: skip


def each(state: State, plan: Plan, op: Callable[[Backend], int | None], upto: int | None = None) -> int:
    """Run ``op`` on each tier (the first ``upto``), skipping failures; sum what it returns."""
    total = 0
    for name, tier in zip(plan.names[:upto], plan.tiers[:upto], strict=True):
        try:
            total += op(tier) or 0
        except Exception as exc:  # noqa: BLE001 - a failing tier is skipped
            state.tier_failed(plan, name, exc)
    return total


async def aeach(
    state: State, plan: Plan, op: Callable[[Backend], Awaitable[int | None]], upto: int | None = None
) -> int:
    """Async :func:`each`."""
    total = 0
    for name, tier in zip(plan.names[:upto], plan.tiers[:upto], strict=True):
        try:
            total += await op(tier) or 0
        except Exception as exc:  # noqa: BLE001 - a failing tier is skipped
            state.tier_failed(plan, name, exc)
    return total
