"""LLMCache: the object behind every decorated function.

The decorator only picks one of four thin wrappers (sync, async, generator,
async generator); this class does the work and can be used without decorating
anything.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MethodType
from typing import Any

from . import _wrapper, config
from ._control import BYPASS, NORMAL, REFRESH, mode
from ._log import logger, warn_once
from ._stats import CacheStats, StatsRecorder
from .backends import Backend
from .backends.memory import MemoryBackend, MemoryItem
from .codec import KIND_STREAM, KIND_VALUE, Codec, _resolve_return, restorable_types
from .errors import (
    BackendError,
    CodecError,
    IncompatibleEntryError,
    TierUnavailableError,
    UncacheableArgumentError,
)
from .keys import KeyBuilder, KeyExplanation, function_id
from .policy import Policy

__all__ = ["LLMCache", "global_stats"]

_MISS: Any = object()
_caches: weakref.WeakSet[LLMCache] = weakref.WeakSet()
_config = config._state


@dataclass(frozen=True, slots=True)
class _Plan:
    """A policy resolved for one configuration generation, with everything derived from it."""

    generation: int
    policy: Policy
    keys: KeyBuilder
    tiers: tuple[Backend, ...]
    names: tuple[str, ...]
    ttl: float | None
    skip_sampled: bool
    enabled: bool
    hits: tuple[itertools.count[int], ...]
    # The first tier's peek() when it is in-process: lets hits reuse an immutable decoded value.
    peek: Callable[[str], MemoryItem | None] | None


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
        # A bound method keys like any method: its function's signature, self included
        # (wrapt passes the bound object as the instance).
        raw = func.__func__ if isinstance(func, (classmethod, staticmethod, MethodType)) else func
        self._raw: Callable[..., Any] = raw
        # The helpers below take the call's arguments; for a bound method its object is known.
        self._bound = func.__self__ if isinstance(func, MethodType) else None
        self.function_id = function_id(raw)
        self.name = name or self.function_id
        self._settings = dict(settings or {})
        self._clock = clock
        self._stats = StatsRecorder()
        self._codec = Codec()
        self._types_resolved = False
        self._plan: _Plan | None = None
        self._build()  # surfaces a bad setting at decoration time
        _caches.add(self)

    def __repr__(self) -> str:
        return f"<LLMCache {self.name}>"

    # -- public helpers -------------------------------------------------------------

    @property
    def policy(self) -> Policy:
        """The policy in force now (decorator settings merged with configuration)."""
        return self._current().policy

    @property
    def uncached(self) -> Callable[..., Any]:
        """The original function: call it to skip the cache (pass ``self`` for methods)."""
        return self._raw

    def stats(self) -> CacheStats:
        """Counts of hits by tier, misses, stores, bypasses and errors."""
        return self._stats.snapshot()

    def reset_stats(self) -> None:
        """Set this function's counters back to zero."""
        self._stats.reset()

    def clear(self) -> int:
        """Remove this function's entries (all argument values, all versions) from every tier."""
        plan = self._current()
        prefix = plan.keys.prefix
        return self._each(plan, lambda tier: tier.clear(prefix))

    async def aclear(self) -> int:
        """Async face of :meth:`clear`."""
        plan = self._current()
        prefix = plan.keys.prefix
        return await self._aeach(plan, lambda tier: tier.aclear(prefix))

    def invalidate(self, *args: Any, **kwargs: Any) -> None:
        """Remove the entry for one call, given the function's arguments (``self`` first for methods)."""
        plan = self._current()
        key = plan.keys.info(self._bound, args, kwargs).key
        self._each(plan, lambda tier: tier.delete(key))

    async def ainvalidate(self, *args: Any, **kwargs: Any) -> None:
        """Async face of :meth:`invalidate`."""
        plan = self._current()
        key = plan.keys.info(self._bound, args, kwargs).key
        await self._aeach(plan, lambda tier: tier.adelete(key))

    def explain_key(self, *args: Any, **kwargs: Any) -> KeyExplanation:
        """Show the canonical parts of the key for a call (``self`` first for methods)."""
        return self._current().keys.explain(self._bound, args, kwargs)

    def key_for(self, *args: Any, **kwargs: Any) -> str:
        """Return the storage key for a call (``self`` first for methods)."""
        return self._current().keys.info(self._bound, args, kwargs).key

    # -- wrapping -------------------------------------------------------------------

    def wrap(self, func: Callable[..., Any]) -> Any:
        """Return ``func`` wrapped with the wrapper that fits its kind."""
        raw = self._raw
        if inspect.isasyncgenfunction(raw):
            call = self._agen_call
        elif inspect.isgeneratorfunction(raw):
            call = self._gen_call
        elif inspect.iscoroutinefunction(raw):
            call = self._async_call
        else:
            call = self._sync_call
        return _wrapper.wrap(func, call, self)

    def _sync_call(self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        plan = self._plan
        if plan is not None and plan.peek is not None and plan.generation == _config.generation:
            # Flat path for the commonest hit: an immutable value memoised beside a memory
            # entry (see _fresh_memo). Anything unusual takes the full path.
            try:
                info = plan.keys.info(instance, args, kwargs) if mode() == NORMAL else None
            except Exception:  # noqa: BLE001 - the full path reports it
                info = None
            if info is not None and not (info.sampled and plan.skip_sampled):
                item = plan.peek(info.key)
                if item is not None:
                    memo = item.memo
                    if (
                        memo is not None
                        and memo[0] == KIND_VALUE
                        and (memo[1] is None or memo[1] > self._clock())
                    ):
                        next(plan.hits[0])
                        return memo[2]
        return self._sync_full(wrapped, instance, args, kwargs)

    def _sync_full(self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        plan, key, read = self._decide(instance, args, kwargs)
        if key is None:
            return wrapped(*args, **kwargs)
        if read:
            value = self._read(plan, key, KIND_VALUE)
            if value is not _MISS:
                return value
        result = wrapped(*args, **kwargs)
        data = self._encode(plan, result, KIND_VALUE)
        if data is not None:
            self._write(plan, key, data)
        return result

    async def _async_call(
        self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        plan, key, read = self._decide(instance, args, kwargs)
        if key is None:
            return await wrapped(*args, **kwargs)
        if read:
            value = await self._aread(plan, key, KIND_VALUE)
            if value is not _MISS:
                return value
        result = await wrapped(*args, **kwargs)
        data = self._encode(plan, result, KIND_VALUE)
        if data is not None:
            await self._awrite(plan, key, data)
        return result

    def _gen_call(self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # Decided at call time, so bypass()/refresh() around the call (not the loop) count.
        plan, key, read = self._decide(instance, args, kwargs)
        if key is None:
            return wrapped(*args, **kwargs)
        return self._stream(plan, key, read, functools.partial(wrapped, *args, **kwargs))

    def _agen_call(self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        plan, key, read = self._decide(instance, args, kwargs)
        if key is None:
            return wrapped(*args, **kwargs)
        return self._astream(plan, key, read, functools.partial(wrapped, *args, **kwargs))

    def _stream(self, plan: _Plan, key: str, read: bool, start: Callable[[], Any]) -> Iterator[Any]:
        if read:
            chunks = self._read(plan, key, KIND_STREAM)
            if chunks is not _MISS:
                yield from chunks
                return
        recorded: list[Any] = []
        stream = start()
        finished = False
        try:
            for chunk in stream:
                recorded.append(chunk)
                yield chunk
            finished = True
        finally:
            if not finished:  # an error, close() or an abandoned loop: store nothing
                stream.close()
        data = self._encode(plan, recorded, KIND_STREAM)
        if data is not None:
            self._write(plan, key, data)

    async def _astream(
        self, plan: _Plan, key: str, read: bool, start: Callable[[], Any]
    ) -> AsyncIterator[Any]:
        if read:
            chunks = await self._aread(plan, key, KIND_STREAM)
            if chunks is not _MISS:
                for chunk in chunks:
                    yield chunk
                return
        recorded: list[Any] = []
        stream = start()
        finished = False
        try:
            async for chunk in stream:
                recorded.append(chunk)
                yield chunk
            finished = True
        finally:
            if not finished:  # an error, aclose() or cancellation: store nothing
                await stream.aclose()
        data = self._encode(plan, recorded, KIND_STREAM)
        if data is not None:
            await self._awrite(plan, key, data)

    # -- the steps of a call --------------------------------------------------------

    def _current(self) -> _Plan:
        plan = self._plan
        if plan is None or plan.generation != _config.generation:
            plan = self._build()
        return plan

    def _build(self) -> _Plan:
        generation = _config.generation
        policy = config.resolve(self.name, self._settings)
        tiers = tuple(config.get_tier(t) if isinstance(t, str) else config.guard(t) for t in policy.tiers)
        names = _unique(t if isinstance(t, str) else t.name for t in policy.tiers)
        if policy.semantic is not None:
            warn_once(
                ("semantic", self.name),
                "%s: semantic=%r needs the semantic tier, which this build does not include; "
                "caching exact matches only",
                self.name,
                policy.semantic,
            )
        self._resolve_types()
        self._codec.max_bytes = policy.max_entry_bytes
        plan = _Plan(
            generation=generation,
            policy=policy,
            keys=KeyBuilder(self._raw, policy, fid=self.function_id),
            tiers=tiers,
            names=names,
            ttl=policy.ttl_seconds,
            skip_sampled=policy.sampled == "skip",
            enabled=policy.enabled,
            hits=tuple(self._stats.hit_counter(name) for name in names),
            # Exactly MemoryBackend: a subclass may override get() and must be called.
            peek=tiers[0].peek if type(tiers[0]) is MemoryBackend and policy.enabled else None,
        )
        self._plan = plan
        return plan

    def _resolve_types(self) -> bool:
        if not self._types_resolved:
            annotation = _resolve_return(self._raw)
            if isinstance(annotation, str):  # a forward reference not defined yet: try again later
                return False
            self._codec.allow(restorable_types(annotation))
            self._types_resolved = True
        return True

    def _decide(
        self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[_Plan, str | None, bool]:
        plan = self._current()
        current = mode()
        if current == BYPASS or not plan.enabled:
            self._stats.add("bypasses")
            return plan, None, False
        try:
            info = plan.keys.info(instance, args, kwargs)
        except UncacheableArgumentError as exc:
            if plan.policy.strict:
                raise
            self._stats.add("uncacheable")
            warn_once(
                ("arg", self.name, exc.path, exc.type_name),
                "%s: calling through uncached: %s",
                self.name,
                exc,
            )
            return plan, None, False
        except TypeError:  # the arguments do not fit: let the function itself say so
            return plan, None, False
        if info.sampled and plan.skip_sampled:
            self._stats.add("bypasses")
            return plan, None, False
        return plan, info.key, current != REFRESH

    def _accept(self, plan: _Plan, index: int, data: bytes, kind: int, now: float) -> list[Any] | bool:
        """Check one tier's bytes: the envelope of a live hit, False for a miss, True to delete them."""
        try:
            env = self._codec.envelope(data)
        except IncompatibleEntryError:  # a newer memollm wrote it: leave it alone
            self._stats.add("corrupt")
            return False
        except CodecError as exc:
            self._stats.add("corrupt")
            warn_once(
                ("corrupt", self.name), "%s: dropping an entry that does not decode: %s", self.name, exc
            )
            return True
        expires = env[3]
        try:
            live = expires is None or expires > now
        except TypeError:  # not a number
            live = None
        if live is None or env[1] != kind or (kind == KIND_STREAM and type(env[5]) is not list):
            self._stats.add("corrupt")
            return True
        if not live:
            return False
        next(plan.hits[index])
        return env

    def _read(self, plan: _Plan, key: str, kind: int) -> Any:
        now = self._clock()
        start = 0
        if plan.peek is not None:
            start = 1
            item = plan.peek(key)
            if item is not None:
                memo = _fresh_memo(item, kind, now)
                if memo is not None:
                    next(plan.hits[0])
                    return memo[2]
                env = self._accept(plan, 0, item.data, kind, now)
                if env is True:
                    plan.tiers[0].delete(key)
                elif env is not False:
                    item.memo = _memo_of(env)
                    return env[5]
        for index in range(start, len(plan.tiers)):
            tier = plan.tiers[index]
            try:
                data = tier.get(key)
                if data is None:
                    continue
                env = self._accept(plan, index, data, kind, now)
                if env is True:
                    tier.delete(key)
                if env is True or env is False:
                    continue
            except Exception as exc:  # noqa: BLE001 - a failing tier is skipped
                self._tier_failed(plan, plan.names[index], exc)
                continue
            if index:
                # Copy a lower tier's hit upwards with the TTL it has left, never a fresh one.
                remaining = _remaining(plan, env[3], now)
                self._each(plan, lambda up: up.set(key, data, remaining), upto=index)  # noqa: B023 - runs now
            return env[5]
        self._stats.add("misses")
        return _MISS

    async def _aread(self, plan: _Plan, key: str, kind: int) -> Any:
        now = self._clock()
        for index, tier in enumerate(plan.tiers):
            try:
                data = await tier.aget(key)
                if data is None:
                    continue
                env = self._accept(plan, index, data, kind, now)
                if env is True:
                    await tier.adelete(key)
                if env is True or env is False:
                    continue
            except Exception as exc:  # noqa: BLE001 - a failing tier is skipped
                self._tier_failed(plan, plan.names[index], exc)
                continue
            if index:
                # Copy a lower tier's hit upwards with the TTL it has left, never a fresh one.
                remaining = _remaining(plan, env[3], now)
                await self._aeach(plan, lambda up: up.aset(key, data, remaining), upto=index)  # noqa: B023 - runs now
            return env[5]
        self._stats.add("misses")
        return _MISS

    def _encode(self, plan: _Plan, value: Any, kind: int) -> bytes | None:
        policy = plan.policy
        if policy.cache_if is not None:
            try:
                keep = policy.cache_if(value)
            except Exception as exc:
                if policy.strict:
                    raise
                warn_once(
                    ("cache_if", self.name), "%s: cache_if raised %r; result not cached", self.name, exc
                )
                keep = False
            if not keep:
                self._stats.add("skipped")
                return None
        now = self._clock()
        ttl = plan.ttl
        try:
            return self._codec.encode(
                value, kind=kind, created=now, expires=None if ttl is None else now + ttl
            )
        except CodecError as exc:
            if not self._types_resolved and self._resolve_types():
                return self._encode(plan, value, kind)
            self._stats.add("errors")
            if policy.strict:
                raise
            warn_once(("encode", self.name, type(value)), "%s: result not cached: %s", self.name, exc)
            return None

    def _write(self, plan: _Plan, key: str, data: bytes) -> None:
        self._each(plan, lambda tier: tier.set(key, data, plan.ttl))
        self._stats.add("stores")

    async def _awrite(self, plan: _Plan, key: str, data: bytes) -> None:
        await self._aeach(plan, lambda tier: tier.aset(key, data, plan.ttl))
        self._stats.add("stores")

    def _each(self, plan: _Plan, op: Callable[[Backend], int | None], upto: int | None = None) -> int:
        """Run ``op`` on each tier (the first ``upto``), skipping failures; sum what it returns."""
        total = 0
        for name, tier in zip(plan.names[:upto], plan.tiers[:upto], strict=True):
            try:
                total += op(tier) or 0
            except Exception as exc:  # noqa: BLE001 - a failing tier is skipped
                self._tier_failed(plan, name, exc)
        return total

    async def _aeach(
        self, plan: _Plan, op: Callable[[Backend], Awaitable[int | None]], upto: int | None = None
    ) -> int:
        """Async face of :meth:`_each`."""
        total = 0
        for name, tier in zip(plan.names[:upto], plan.tiers[:upto], strict=True):
            try:
                total += await op(tier) or 0
            except Exception as exc:  # noqa: BLE001 - a failing tier is skipped
                self._tier_failed(plan, name, exc)
        return total

    def _tier_failed(self, plan: _Plan, name: str, exc: Exception) -> None:
        if isinstance(exc, TierUnavailableError):  # skipped by its open breaker, not a new failure
            if plan.policy.strict:
                raise exc
            return
        self._stats.add("errors")
        if plan.policy.strict:
            raise BackendError(f"cache tier {name!r} failed: {exc!r}") from exc
        # Guarded tiers log through their breaker, once per state change.
        logger.debug("cache tier %r failed: %r", name, exc)


_IMMUTABLE = frozenset({str, bytes, int, float, bool, type(None)})


def _fresh_memo(item: MemoryItem, kind: int, now: float) -> tuple[int, float | None, object] | None:
    memo = item.memo
    if memo is not None and memo[0] == kind and (memo[1] is None or memo[1] > now):
        return memo
    return None


def _memo_of(env: list[Any]) -> tuple[int, float | None, object] | None:
    """The (kind, expires, value) to keep beside a memory entry, if sharing the value is safe."""
    value = env[5]
    if type(value) in _IMMUTABLE:
        return env[1], env[3], value
    if type(value) is tuple and _IMMUTABLE.issuperset(map(type, value)):
        return env[1], env[3], value
    if env[1] == KIND_STREAM and _IMMUTABLE.issuperset(map(type, value)):
        # A stream replays its chunks, never the list itself.
        return env[1], env[3], tuple(value)
    return None


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    """Tier names for stats and logs; a repeated name gets "#2", "#3"."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return tuple(out)


def _remaining(plan: _Plan, expires: float | None, now: float) -> float | None:
    return plan.ttl if expires is None else expires - now


def global_stats() -> CacheStats:
    """Counts summed over every cached function in this process."""
    return CacheStats.combine(cache.stats() for cache in list(_caches))
