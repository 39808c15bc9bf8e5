"""LLMCache: the object behind every decorated function, reached as ``fn.cache``.

It holds the function's :class:`~memollm.core.state.State` and gives the helpers users call
(stats, clear, invalidate, store, explain_key, ...). The decorator only picks one of its two
faces, sync or async, at decoration time.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .. import events
from ..codec import KIND_VALUE
from ..config import generation
from ..errors import UncacheableArgumentError
from ..keys import KeyExplanation, SemanticParts
from ..policy import Policy
from ..statistics import CacheStats, track
from ..switches import NORMAL, mode
from . import wrapper
from .aio import AsyncFace
from .aio import helpers as async_helpers
from .encode import encode
from .plan import Plan
from .semantic import lookup
from .state import State
from .sync import SyncFace, helpers, tiers

__all__ = ["LLMCache"]


class LLMCache:
    """Caches the results of one function according to its policy.

    Reached from a decorated function as ``fn.cache``.
    """

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        settings: Mapping[str, Any] | None = None,
        name: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = State(func, settings=settings, name=name, clock=clock)
        self.name = self.state.name
        self.function_id = self.state.function_id
        self._sync = SyncFace(self.state)
        self._async = AsyncFace(self.state)
        self.state.build()  # surfaces a bad setting at decoration time
        track(self)

    def __repr__(self) -> str:
        return f"<LLMCache {self.name}>"

    @property
    def policy(self) -> Policy:
        """The policy in force now (decorator settings merged with configuration)."""
        return self.state.current().policy

    @property
    def uncached(self) -> Callable[..., Any]:
        """The original function: call it to skip the cache (pass ``self`` for methods)."""
        return self.state.raw

    def stats(self) -> CacheStats:
        """Counts of hits by tier, misses, stores, bypasses and errors."""
        return self.state.stats.snapshot()

    def reset_stats(self) -> None:
        """Set this function's counters back to zero."""
        self.state.stats.reset()

    def clear(self) -> int:
        """Remove this function's entries (all argument values, all versions) from every tier."""
        return helpers.clear(self.state, self.state.current())

    async def aclear(self) -> int:
        """Async face of :meth:`clear`."""
        return await async_helpers.clear(self.state, self.state.current())

    def invalidate(self, *args: Any, **kwargs: Any) -> None:
        """Remove the entry for one call, given the function's arguments (``self`` first for methods)."""
        helpers.invalidate(self.state, *self._one(args, kwargs))

    async def ainvalidate(self, *args: Any, **kwargs: Any) -> None:
        """Async face of :meth:`invalidate`."""
        await async_helpers.invalidate(self.state, *self._one(args, kwargs))

    def _one(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Plan, str, str | None]:
        """The plan, the entry key and (with a semantic tier) the partition of one call."""
        plan = self.state.current()
        key = plan.keys.info(self.state.bound, args, kwargs).key
        parts = plan.keys.semantic(self.state.bound, args, kwargs) if plan.semantic is not None else None
        if parts is not None and plan.semantic is not None:
            parts = plan.semantic.routed(parts)
        return plan, key, None if parts is None else parts.partition

    def store(self, result: Any, *args: Any, **kwargs: Any) -> bool:
        """Store ``result`` as the answer to a call with these arguments, without making the call.

        For preloading answers you already have (an FAQ, a warm-up from logs). The entry is
        written to every tier and, with a semantic tier, its prompt is indexed. It records no
        savings: no call was paid for. Returns whether it was stored (not when caching is
        off, the arguments cannot be keyed, or ``cache_if`` refuses the result).
        """
        plan = self.state.current()
        stored = self._store(plan, args, kwargs, result)
        if stored is not None and stored[1] is not None:
            lookup.index_many(self.state, plan, [stored])  # type: ignore[list-item]  # parts is set
        return stored is not None

    def store_many(self, calls: Iterable[tuple[Any, Any]]) -> int:
        """Preload many answers at once: ``calls`` yields ``(arguments, result)`` pairs.

        ``arguments`` is a tuple of positional arguments, a dict of keyword arguments, or any
        other value as the single positional argument (wrap a tuple or dict meant as the one
        argument in a tuple). With a semantic tier, the prompts are embedded in batches and
        indexed together, far faster than :meth:`store` one by one. Returns how many results
        were stored; calls whose arguments cannot be keyed are skipped (``strict`` raises).
        """
        plan = self.state.current()
        count, indexed = 0, []
        for arguments, result in calls:
            stored = self._store(plan, *_split(arguments), result)
            if stored is not None:
                count += 1
                if stored[1] is not None:
                    indexed.append(stored)
        if indexed:
            lookup.index_many(self.state, plan, indexed)  # type: ignore[arg-type]  # parts are set
        return count

    def _store(
        self, plan: Plan, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any
    ) -> tuple[str, SemanticParts | None] | None:
        """Write one preloaded answer: its key and semantic parts, or None if it was not stored."""
        state = self.state
        if not plan.enabled:
            return None
        try:
            key = plan.keys.info(state.bound, args, kwargs).key
        except (UncacheableArgumentError, TypeError):
            if plan.policy.strict:
                raise
            return None
        data = encode(state, plan, result, KIND_VALUE)
        if data is None:
            return None
        tiers.write(state, plan, key, data)
        parts = None
        if plan.semantic is not None:
            try:
                parts = plan.keys.semantic(state.bound, args, kwargs)
            except (UncacheableArgumentError, TypeError):
                parts = None
        return key, parts

    def serve_memo(self, key: str) -> tuple[Any, float | None] | None:
        """A fresh, decoded, immutable value kept beside a memory-tier entry, counted as a hit.

        (value, when it was stored) or None. For callers that computed the key themselves
        (the ASGI middleware's fast path); the full call path remains the authority.
        """
        hooks = events.hooks
        started = time.perf_counter() if hooks else 0.0
        state = self.state
        plan = state.plan
        if plan is None or plan.generation != generation.value:
            plan = state.current()
        if not plan.flat or mode() != NORMAL:
            return None
        item = plan.peek(key)  # type: ignore[misc]  # flat implies peek
        if item is None or item.memo is None:
            return None
        kind, expires, value, hits, tally = item.memo  # a Memo, unpacked once: this is a hot path
        if kind != KIND_VALUE or (expires is not None and expires <= state.clock() + plan.refresh_window):
            return None
        next(plan.hits[0])
        next(hits)
        if hooks:
            events.emit_hit(self.name, plan.names[0], started, tally.worth)
        return value, None if expires is None or plan.ttl is None else expires - plan.ttl

    def get(self, *args: Any, default: Any = None, **kwargs: Any) -> Any:
        """The cached answer to a call with these arguments (exact, then semantic), or ``default``.

        Never calls the function; counted as a hit or a miss like a call. For code that
        decides itself when to call and when to :meth:`store` (framework adapters).
        """
        return helpers.get(self.state, args, kwargs, default)

    async def aget(self, *args: Any, default: Any = None, **kwargs: Any) -> Any:
        """Async face of :meth:`get`."""
        return await async_helpers.get(self.state, args, kwargs, default)

    def explain_key(self, *args: Any, **kwargs: Any) -> KeyExplanation:
        """Show the canonical parts of the key for a call (``self`` first for methods)."""
        return self.state.current().keys.explain(self.state.bound, args, kwargs)

    def key_for(self, *args: Any, **kwargs: Any) -> str:
        """Return the storage key for a call (``self`` first for methods)."""
        return self.state.current().keys.info(self.state.bound, args, kwargs).key

    def wrap(self, func: Callable[..., Any]) -> Any:
        """Return ``func`` wrapped with the wrapper that fits its kind."""
        raw = self.state.raw
        if inspect.isasyncgenfunction(raw):
            call = self._async.gen
        elif inspect.isgeneratorfunction(raw):
            call = self._sync.gen
        elif inspect.iscoroutinefunction(raw):
            call = self._async.call
        else:
            call = self._sync.call
        return wrapper.wrap(func, call, self)


def _split(arguments: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if type(arguments) is tuple:
        return arguments, {}
    if isinstance(arguments, Mapping):
        return (), dict(arguments)
    return (arguments,), {}
