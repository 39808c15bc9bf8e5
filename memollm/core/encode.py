"""A fresh result into the bytes every tier stores: ``cache_if``, then the codec, with its worth."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._log import warn_limited, warn_once
from ..complete import Incomplete
from ..errors import CodecError
from ..statistics import Worth

if TYPE_CHECKING:
    from .plan import Plan
    from .state import State

__all__ = ["encode"]


def encode(state: State, plan: Plan, value: Any, kind: int, worth: Worth | None = None) -> bytes | None:
    """The envelope to store for ``value``, or None when it is not to be stored (counted, warned once).

    ``strict`` raises instead: a ``cache_if`` that raises, a value the codec refuses.
    """
    policy = plan.policy
    if policy.cache_if is not None:
        try:
            keep = policy.cache_if(value)
        except Exception as exc:
            if policy.strict:
                raise
            warn_once(("cache_if", state.name), "%s: cache_if raised %r; result not cached", state.name, exc)
            keep = False
        if not keep:
            state.stats.add("skipped")
            if isinstance(keep, Incomplete):
                state.stats.add("incomplete")
                warn_limited(("incomplete", state.name), "%s: not stored, passed through uncached: %s",
                             state.name, keep.reason)  # fmt: skip
            return None
    now = state.clock()
    meta: dict[str, Any] = {"f": state.name} if worth is None else {"f": state.name, "u": worth.meta()}
    try:
        return state.codec.encode(
            value, kind=kind, created=now, expires=None if plan.ttl is None else now + plan.ttl, meta=meta
        )
    except CodecError as exc:
        if state.ensure_types_late():  # the return annotation only now resolves: try again
            return encode(state, plan, value, kind, worth)
        if state.learn_types(value):  # no annotation: what the function returned is what it may get back
            return encode(state, plan, value, kind, worth)
        state.stats.add("errors")
        if policy.strict:
            raise
        warn_once(("encode", state.name, type(value)), "%s: result not cached: %s", state.name, exc)
        return None
