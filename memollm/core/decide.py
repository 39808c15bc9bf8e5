"""The decisions of a call that both faces share.

Whether and how a call uses the cache, and what a follower of another caller's call, or a
failed call with a stale entry, gets back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._log import warn_once
from ..codec import Entry
from ..errors import CodecError, UncacheableArgumentError
from ..outcomes import Outcome
from ..statistics import Worth
from ..switches import BYPASS, REFRESH, mode
from .observe import note

if TYPE_CHECKING:
    from .plan import Plan
    from .state import State

__all__ = ["Decision", "decide", "followed", "serve_stale", "shared"]


# How one call uses the cache: its plan, its key (None: straight to the model), whether to read.
# A plain tuple, unpacked at once: a named tuple would cost every call a tenth of a hit.
Decision = tuple["Plan", "str | None", bool]


def decide(state: State, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Decision:
    """Key the call, unless the cache is bypassed; an argument that cannot be keyed calls through."""
    plan = state.current()
    current = mode()
    if current == BYPASS or not plan.enabled:
        return _bypass(state, plan)
    try:
        info = plan.keys.info(instance, args, kwargs)
    except UncacheableArgumentError as exc:
        if plan.policy.strict:
            raise
        _uncacheable(
            state, ("arg", state.name, exc.path, exc.type_name), "%s: calling through uncached: %s", exc
        )
        return (plan, None, False)
    except TypeError:  # the arguments do not fit: let the function itself say so
        return (plan, None, False)
    except Exception as exc:
        if plan.policy.strict:
            raise
        _uncacheable(state, ("key", state.name, type(exc)),
                     "%s: calling through uncached: the key could not be built: %r", exc)  # fmt: skip
        return (plan, None, False)
    if info.sampled and plan.skip_sampled:
        return _bypass(state, plan)
    return (plan, info.key, current != REFRESH)


def _bypass(state: State, plan: Plan) -> Decision:
    state.stats.add("bypasses")
    note(Outcome.BYPASS)
    return (plan, None, False)


def _uncacheable(state: State, cause: tuple[object, ...], message: str, exc: Exception) -> None:
    state.stats.add("uncacheable")
    note(Outcome.UNCACHEABLE)
    warn_once(cause, message, state.name, exc)


def shared(state: State, result: Any, data: bytes | None, *, looked: bool = True) -> Any:
    """A follower's copy of the leader's result (decoded afresh when it was stored): a coalesced hit."""
    value, entry = result, None
    if data is not None:
        try:
            entry = state.codec.decode(data)
            value = entry.value
        except CodecError:
            value = result
    _coalesced(state, entry, looked)
    return value


def followed(state: State, entry: Entry, data: bytes | None, *, looked: bool) -> tuple[Any, bytes | None]:
    """A leader that found the answer another caller (or process) had just stored: a coalesced hit."""
    _coalesced(state, entry, looked)
    return entry.value, data


def _coalesced(state: State, entry: Entry | None, looked: bool) -> None:
    state.count_coalesced(looked)
    worth = None if entry is None else Worth.from_meta(entry.meta)
    if worth is not None:
        state.stats.saved(worth)
    note(Outcome.COALESCED, worth=worth)


def serve_stale(state: State, entry: Entry) -> Any:
    """An expired entry's value, served because the call failed."""
    state.stats.add("stale")
    note(Outcome.STALE)
    return entry.value
