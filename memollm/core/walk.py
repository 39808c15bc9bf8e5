"""The tier walk's decisions, shared by both faces: judge stored bytes, count a hit or a miss, fail open.

The loops that touch the tiers are :mod:`memollm.core.aio.tiers` and its generated twin
:mod:`memollm.core.sync.tiers`; everything they decide is here. A failing tier is skipped
(counted in ``stats().errors``, or raised with ``strict``); bytes that fail the codec's
validator are deleted from their tier and never copied upwards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from .._log import logger, warn_once
from ..codec import Entry
from ..errors import BackendError, TierUnavailableError
from ..outcomes import Outcome
from ..statistics import Worth
from .entry import MISSING, Memo, Rejected, accept, fresh_memo, live, shareable, stale_ok
from .observe import note, why

if TYPE_CHECKING:
    from .plan import Plan
    from .state import State

__all__ = [
    "Found",
    "Stored",
    "failed",
    "fenced_out",
    "hit",
    "judge",
    "memo_of",
    "memory",
    "missed",
    "recheck",
    "stored",
]  # fmt: skip


# A lookup's answer: (the value or MISSING on a miss, its expiry, a stale entry to fall back on).
# A plain tuple, unpacked at once: a named tuple would cost every lookup a tenth of a hit.
Found = tuple[Any, "float | None", "Entry | None"]


class Stored(NamedTuple):
    """A live entry found without counting a lookup (for waits and re-checks), and its bytes."""

    entry: Entry
    data: bytes


def failed(state: State, plan: Plan, name: str, exc: Exception) -> None:
    """Count a tier's failure and go on without it (``strict`` raises instead): fail-open's one rule."""
    if isinstance(exc, TierUnavailableError):  # skipped by its open breaker, not a new failure
        if plan.policy.strict:
            raise exc
        return
    state.stats.add("errors")
    if plan.policy.strict:
        raise BackendError(f"cache tier {name!r} failed: {exc!r}") from exc
    # Guarded tiers log through their breaker, once per state change.
    logger.debug("cache tier %r failed: %r", name, exc)


def judge(state: State, data: bytes, kind: int) -> Entry | Rejected:
    """The entry stored bytes hold, or why they are refused (counted; DROP: delete them)."""
    verdict = accept(state.codec, data, kind)
    if type(verdict) is Rejected:
        state.stats.add("corrupt")
        if verdict is Rejected.DROP:
            warn_once(("corrupt", state.name), "%s: dropping an entry that does not decode", state.name)
    return verdict


def stored(state: State, data: bytes, kind: int, now: float) -> Stored | None:
    """``data`` as a live entry, without counting anything; None if it is not one."""
    entry = accept(state.codec, data, kind)
    return Stored(entry, data) if type(entry) is Entry and live(entry, now) else None


def hit(state: State, plan: Plan, index: int, entry: Entry | None, memo: Memo | None = None) -> Any:
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
            state.stats.saved_once(worth)
    note(Outcome.HIT, plan.names[index], created=None if entry is None else entry.created, worth=worth)
    return memo.value if entry is None else entry.value  # type: ignore[union-attr]


def missed(state: State, stale: Entry | None) -> Found:
    """Count a miss; the lookup's answer, with the stale entry to fall back on."""
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


def memory(state: State, plan: Plan, key: str, kind: int, now: float) -> tuple[Found | None, Entry | None]:
    """The first tier when it is in-process (it never waits): (a hit or None, a stale entry or None)."""
    item = plan.peek(key)  # type: ignore[misc]  # only called with a peek
    if item is None:
        return None, None
    memo = fresh_memo(item, kind, now)
    if memo is not None:
        return (hit(state, plan, 0, None, memo), memo.expires, None), None
    entry = judge(state, item.data, kind)
    if type(entry) is not Entry:
        if entry is Rejected.DROP:
            plan.tiers[0].delete(key)
        return None, None
    if not live(entry, now):
        return None, entry if stale_ok(entry, plan.stale, now) else None
    memo = item.memo = memo_of(state, entry)
    return (hit(state, plan, 0, entry, memo), entry.expires, None), None


def recheck(state: State, plan: Plan, key: str, kind: int) -> Stored | None:
    """The live entry a caller that finished just before us left in the memory tier, if any."""
    if plan.peek is None:
        return None
    item = plan.peek(key)
    return None if item is None else stored(state, item.data, kind, state.clock())


def fenced_out(state: State) -> None:
    """Say why an answer was not stored: its lease lapsed and the next holder stored its own."""
    logger.info("%s: an answer made under a lease that lapsed was not stored: the process that took "
                "the lease over stored its own", state.name)  # fmt: skip
