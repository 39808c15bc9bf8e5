"""LLMCache: the object behind every decorated function.

The decorator only picks one of four thin wrappers (sync, async, generator,
async generator); this class does the work and can be used without decorating
anything.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import threading
import time
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
)
from contextlib import contextmanager
from dataclasses import dataclass
from types import MethodType
from typing import Any

from cachetools import LRUCache

from . import _wrapper, config
from . import events as _events
from ._control import BYPASS, NORMAL, REFRESH, Observation, mode, note, observe, record
from ._control import _observe as _control_observe
from ._log import logger, warn_limited, warn_once
from ._stats import CacheStats, StatsRecorder, Tally, Worth
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
from .policy import AdaptiveTTL, Policy
from .pricing import cost_of
from .resilience import lease
from .resilience import retry as resilient
from .resilience.flight import AsyncStreamFlights, SingleFlight, StreamFlights
from .resilience.keypool import KeyPool
from .resilience.retry import RetryPolicy
from .usage import prompt_text, usage_of

__all__ = ["LLMCache", "global_stats", "stats_by_function"]

_MISS: Any = object()
_UNKNOWN: Any = -1.0  # an expiry not known to the caller of _warm
SHADOW_THRESHOLD = 0.90  # the cosine threshold shadow mode measures would-be hits at
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
    retry: RetryPolicy | None
    keys_pool: KeyPool | None
    key_param: str | None
    single_flight: bool
    lock: Any  # the guarded tier whose backend holds cross-process locks, or None
    stale: float | None  # seconds an expired entry may still be served if the call fails
    refresh_window: float  # a hit with less time left than this is refreshed (0: never)
    semantic: Any  # the SemanticTier, or None
    vector_log: Any  # the guarded tier whose backend shares prompt vectors between processes
    threshold: float  # cosine threshold of semantic hits
    shadow: bool  # semantic lookups only measured, never served
    adaptive: AdaptiveTTL | None  # hits lengthen hot entries' lifetimes
    flat: bool  # memoised memory hits may take the flat path (no per-key bookkeeping needed)

    @property
    def resilient(self) -> bool:
        return self.retry is not None or self.keys_pool is not None

    @property
    def physical_ttl(self) -> float | None:
        """How long tiers keep an entry: its TTL plus the stale window."""
        return None if self.ttl is None else self.ttl + (self.stale or 0.0)


_Call = tuple[Any, tuple[Any, ...], dict[str, Any]]  # the wrapped callable, its args and kwargs


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
        self._flights = SingleFlight()
        self._stream_flights = StreamFlights(_END)
        self._astream_flights = AsyncStreamFlights(_END)
        self._refreshing: set[str] = set()
        self._refresh_lock = threading.Lock()
        self._background: set[asyncio.Task[None]] = set()
        self._semantic: Any = None
        self._semantic_shape: tuple[object, ...] | None = None
        self._heat: LRUCache[str, int] = LRUCache(maxsize=65_536)  # hits per key, for AdaptiveTTL
        self._heat_lock = threading.Lock()
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
        if plan.semantic is not None:
            plan.semantic.index.clear(prefix)
        return self._each(plan, lambda tier: tier.clear(prefix))

    async def aclear(self) -> int:
        """Async face of :meth:`clear`."""
        plan = self._current()
        prefix = plan.keys.prefix
        if plan.semantic is not None:
            plan.semantic.index.clear(prefix)
        return await self._aeach(plan, lambda tier: tier.aclear(prefix))

    def invalidate(self, *args: Any, **kwargs: Any) -> None:
        """Remove the entry for one call, given the function's arguments (``self`` first for methods)."""
        plan = self._current()
        key = plan.keys.info(self._bound, args, kwargs).key
        self._each(plan, lambda tier: tier.delete(key))
        self._forget_vector(plan, args, kwargs, key)

    async def ainvalidate(self, *args: Any, **kwargs: Any) -> None:
        """Async face of :meth:`invalidate`."""
        plan = self._current()
        key = plan.keys.info(self._bound, args, kwargs).key
        await self._aeach(plan, lambda tier: tier.adelete(key))
        self._forget_vector(plan, args, kwargs, key)

    def store(self, result: Any, *args: Any, **kwargs: Any) -> bool:
        """Store ``result`` as the answer to a call with these arguments, without making the call.

        For preloading answers you already have (an FAQ, a warm-up from logs). The entry is
        written to every tier and, with a semantic tier, its prompt is indexed. It records no
        savings: no call was paid for. Returns whether it was stored (not when caching is
        off, the arguments cannot be keyed, or ``cache_if`` refuses the result).
        """
        plan = self._current()
        if not plan.enabled:
            return False
        try:
            key = plan.keys.info(self._bound, args, kwargs).key
        except (UncacheableArgumentError, TypeError):
            if plan.policy.strict:
                raise
            return False
        data = self._store(plan, key, result, KIND_VALUE)
        if data is None:
            return False
        if plan.semantic is not None:
            prepared = self._semantic_vector(plan, self._bound, args, kwargs)
            if prepared is not None:
                from .semantic.tier import Pending

                parts, vector = prepared
                self._semantic_store(plan, key, Pending(parts.partition, parts.text, vector), result, data)
        return True

    def store_many(self, calls: Iterable[tuple[Any, Any]]) -> int:
        """Preload many answers at once: ``calls`` yields ``(arguments, result)`` pairs.

        ``arguments`` is a tuple of positional arguments, a dict of keyword arguments, or any
        other value as the single positional argument (wrap a tuple or dict meant as the one
        argument in a tuple). With a semantic tier, the prompts are embedded in batches and
        indexed together, far faster than :meth:`store` one by one. Returns how many results
        were stored; calls whose arguments cannot be keyed are skipped (``strict`` raises).
        """
        plan = self._current()
        if not plan.enabled:
            return 0
        stored = 0
        pending: list[tuple[str, Any]] = []
        for arguments, result in calls:
            args, kwargs = _split_arguments(arguments)
            try:
                key = plan.keys.info(self._bound, args, kwargs).key
            except (UncacheableArgumentError, TypeError):
                if plan.policy.strict:
                    raise
                continue
            data = self._store(plan, key, result, KIND_VALUE)
            if data is None:
                continue
            stored += 1
            if plan.semantic is not None:
                try:
                    parts = plan.keys.semantic(self._bound, args, kwargs)
                except (UncacheableArgumentError, TypeError):
                    parts = None
                if parts is not None:
                    pending.append((key, parts))
        if pending:
            self._index_many(plan, pending)
        return stored

    def _index_many(self, plan: _Plan, pending: list[tuple[str, Any]], batch: int = 256) -> None:
        """Embed stored prompts in batches and index them, partition by partition."""
        from .semantic.embedder import EmbedderUnavailable

        sem = plan.semantic
        expires = None if plan.ttl is None else self._clock() + plan.ttl
        for start in range(0, len(pending), batch):
            chunk = pending[start : start + batch]
            try:
                vectors = sem.embedder.embed([parts.text for _, parts in chunk])
            except EmbedderUnavailable as exc:
                warn_once(("embedder", str(exc)), "%s: semantic caching is off, exact caching goes on: %s",
                          self.name, exc)  # fmt: skip
                return
            groups: dict[str, list[int]] = {}
            for i, (_, parts) in enumerate(chunk):
                groups.setdefault(parts.partition, []).append(i)
            for partition, rows in groups.items():
                keys = [chunk[i][0] for i in rows]
                texts = [chunk[i][1].text for i in rows]
                sem.index.add_many(partition, keys, vectors[rows], texts, expires)
                log = plan.vector_log
                if log is None:
                    continue
                for key, text, vector in zip(keys, texts, vectors[rows], strict=True):
                    blob = sem.pack(vector)
                    try:
                        log.call(lambda: log.backend.vlog_append(partition, key, text, blob, expires))  # noqa: B023
                    except Exception as exc:  # noqa: BLE001 - a failing tier is skipped
                        self._tier_failed(plan, log.name, exc)
                        break

    def _forget_vector(self, plan: _Plan, args: tuple[Any, ...], kwargs: dict[str, Any], key: str) -> None:
        if plan.semantic is not None:
            parts = plan.keys.semantic(self._bound, args, kwargs)
            if parts is not None:
                plan.semantic.index.remove(parts.partition, key)

    def serve_memo(self, key: str) -> tuple[Any, float | None] | None:
        """A fresh, decoded, immutable value kept beside a memory-tier entry, counted as a hit.

        (value, when it was stored) or None. For callers that computed the key themselves
        (the ASGI middleware's fast path); the full call path remains the authority.
        """
        hooks = _events.hooks
        started = time.perf_counter() if hooks else 0.0
        plan = self._current()
        if not plan.flat or mode() != NORMAL:
            return None
        item = plan.peek(key)  # type: ignore[misc]  # flat implies peek
        if item is None:
            return None
        memo = _fresh_memo(item, KIND_VALUE, self._clock() + plan.refresh_window)
        if memo is None:
            return None
        next(plan.hits[0])
        next(memo[3])
        if hooks:
            _events.emit_hit(self.name, plan.names[0], started, memo[4].worth)
        created = None if memo[1] is None or plan.ttl is None else memo[1] - plan.ttl
        return memo[2], created

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
        if _events.hooks:
            return self._observed(wrapped, instance, args, kwargs)
        plan = self._plan
        if plan is not None and plan.flat and plan.generation == _config.generation:
            # Flat path for the commonest hit: an immutable value memoised beside a memory
            # entry (see _fresh_memo). Anything unusual takes the full path.
            try:
                info = plan.keys.info(instance, args, kwargs) if mode() == NORMAL else None
            except Exception:  # noqa: BLE001 - the full path reports it
                info = None
            if info is not None and not (info.sampled and plan.skip_sampled):
                item = plan.peek(info.key)  # type: ignore[misc]  # flat implies peek
                if item is not None:
                    memo = item.memo
                    if (
                        memo is not None
                        and memo[0] == KIND_VALUE
                        and (memo[1] is None or memo[1] > self._clock() + plan.refresh_window)
                    ):
                        next(plan.hits[0])
                        next(memo[3])
                        if record() is not None:
                            note("hit", plan.names[0])
                        return memo[2]
        return self._sync_full(wrapped, instance, args, kwargs)

    def _observed(self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The full path, gathering the call's :class:`~memollm.events.CacheEvent` for the hooks."""
        wall, started = time.time(), time.perf_counter()
        with observe() as seen:
            try:
                result = self._sync_full(wrapped, instance, args, kwargs)
            except BaseException:
                _events.emit(_events.build(self.name, started, wall, seen, failed=True))
                raise
        _events.emit(_events.build(self.name, started, wall, seen))
        return result

    async def _aobserved(
        self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Async :meth:`_observed`."""
        wall, started = time.time(), time.perf_counter()
        with observe() as seen:
            try:
                result = await self._async_full(wrapped, instance, args, kwargs)
            except BaseException:
                _events.emit(_events.build(self.name, started, wall, seen, failed=True))
                raise
        _events.emit(_events.build(self.name, started, wall, seen))
        return result

    def _sync_full(self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        plan, key, read = self._decide(instance, args, kwargs)
        call = (wrapped, args, kwargs)
        if key is None:
            return self._upstream(plan, call)
        stale = pending = None
        if read:
            value, expires, stale = self._read(plan, key, KIND_VALUE)
            if value is not _MISS:
                if self._refresh_due(plan, expires):
                    self._refresh_in_thread(plan, key, call)
                return value
            if plan.semantic is not None:
                value, pending = self._semantic_lookup(
                    plan, self._semantic_vector(plan, instance, args, kwargs)
                )
                if value is not _MISS:
                    return value
        try:
            if not plan.single_flight:
                result, data = self._fetch(plan, key, read, call)
                led = True
            else:
                (result, data), led = self._flights.run(key, lambda: self._fetch(plan, key, read, call))
        except Exception:
            if stale is None:
                raise
            return self._serve_stale(stale)
        if pending is not None and led:
            self._semantic_store(plan, key, pending, result, data)
        return result if led else self._shared(result, data)

    async def _async_call(
        self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if _events.hooks:
            return await self._aobserved(wrapped, instance, args, kwargs)
        return await self._async_full(wrapped, instance, args, kwargs)

    async def _async_full(
        self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        plan, key, read = self._decide(instance, args, kwargs)
        call = (wrapped, args, kwargs)
        if key is None:
            return await self._aupstream(plan, call)
        stale = pending = None
        if read:
            value, expires, stale = await self._aread(plan, key, KIND_VALUE)
            if value is not _MISS:
                if self._refresh_due(plan, expires):
                    self._refresh_in_task(plan, key, call)
                return value
            if plan.semantic is not None:
                prepared = await asyncio.to_thread(self._semantic_vector, plan, instance, args, kwargs)
                value, pending = self._semantic_lookup(plan, prepared)
                if value is not _MISS:
                    return value
        try:
            if not plan.single_flight:
                result, data = await self._afetch(plan, key, read, call)
                led = True
            else:
                (result, data), led = await self._flights.arun(
                    key, lambda: self._afetch(plan, key, read, call)
                )
        except Exception:
            if stale is None:
                raise
            return self._serve_stale(stale)
        if pending is not None and led:
            # Logging the vector may go to Redis or SQLite: not on the event loop's thread.
            await asyncio.to_thread(self._semantic_store, plan, key, pending, result, data)
        return result if led else self._shared(result, data)

    def _gen_call(self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if _events.hooks:
            (plan, key, read), seen, started, wall = self._decide_observed(instance, args, kwargs)
            stream = self._stream(plan, key, read, (wrapped, args, kwargs), instance=instance)
            return self._observed_stream(stream, seen, started, wall)
        # Decided at call time, so bypass()/refresh() around the call (not the loop) count.
        plan, key, read = self._decide(instance, args, kwargs)
        return self._stream(plan, key, read, (wrapped, args, kwargs), instance=instance)

    def _agen_call(self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if _events.hooks:
            (plan, key, read), seen, started, wall = self._decide_observed(instance, args, kwargs)
            stream = self._astream(plan, key, read, (wrapped, args, kwargs), instance=instance)
            return self._aobserved_stream(stream, seen, started, wall)
        plan, key, read = self._decide(instance, args, kwargs)
        return self._astream(plan, key, read, (wrapped, args, kwargs), instance=instance)

    def _decide_observed(
        self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[_Plan, str | None, bool], Observation, float, float]:
        """:meth:`_decide` for a stream whose event is wanted: (decision, observation, start times)."""
        wall, started = time.time(), time.perf_counter()
        with observe() as seen:
            decision = self._decide(instance, args, kwargs)
        return decision, seen, started, wall

    def _observed_stream(
        self, stream: Generator[Any, None, None], seen: Observation, started: float, wall: float
    ) -> Iterator[Any]:
        """``stream`` with its event emitted when it ends; each step runs with ``seen`` current.

        The context variable is set around each step, not across yields: a generator's
        caller owns the context between steps.
        """
        failed = False
        try:
            while True:
                with _observing(seen):
                    try:
                        chunk = next(stream)
                    except StopIteration:
                        return
                    except BaseException:
                        failed = True
                        raise
                yield chunk
        finally:
            stream.close()
            _events.emit(_events.build(self.name, started, wall, seen, failed=failed))

    async def _aobserved_stream(
        self, stream: AsyncGenerator[Any, None], seen: Observation, started: float, wall: float
    ) -> AsyncIterator[Any]:
        """Async :meth:`_observed_stream`."""
        failed = False
        try:
            while True:
                with _observing(seen):
                    try:
                        chunk = await stream.__anext__()
                    except StopAsyncIteration:
                        return
                    except BaseException:
                        failed = True
                        raise
                yield chunk
        finally:
            await stream.aclose()
            _events.emit(_events.build(self.name, started, wall, seen, failed=failed))

    def _stream(
        self, plan: _Plan, key: str | None, read: bool, call: _Call, *, instance: object = None
    ) -> Generator[Any, None, None]:
        chunks, stale, pending = _MISS, None, None
        if key is not None and read:
            chunks, _, stale = self._read(plan, key, KIND_STREAM)
            if chunks is _MISS and plan.semantic is not None:
                prepared = self._semantic_vector(plan, instance, call[1], call[2])
                chunks, pending = self._semantic_lookup(plan, prepared, KIND_STREAM)
        if chunks is not _MISS:
            yield from chunks
            return
        started = time.perf_counter()

        def complete(chunks: list[Any]) -> None:
            assert key is not None
            worth = self._worth(plan, call, chunks, time.perf_counter() - started)
            note("miss", worth=worth)
            data = self._store(plan, key, list(chunks), KIND_STREAM, worth)
            if pending is not None:
                self._semantic_store(plan, key, pending, list(chunks), data)

        if key is None or not plan.single_flight:
            source = self._own_stream(plan, call, None if key is None else complete)
        else:
            source = self._stream_flights.read(
                key, lambda: self._upstream(plan, call, first_chunk=_first), complete, self._count_coalesced
            )
        sent = 0
        try:
            for chunk in source:
                sent += 1
                yield chunk
        except Exception:
            if stale is None or sent:  # once chunks reached the caller, the failure is theirs
                raise
            yield from self._serve_stale(stale)
        finally:
            source.close()

    def _own_stream(
        self, plan: _Plan, call: _Call, complete: Callable[[list[Any]], None] | None
    ) -> Generator[Any, None, None]:
        # Retries and key failover cover opening the stream and its first chunk; once
        # chunks have reached the caller, a failure is the caller's to see.
        first, stream = self._upstream(plan, call, first_chunk=_first)
        recorded: list[Any] = []
        finished = False
        try:
            if first is not _END:
                recorded.append(first)
                yield first
                for chunk in stream:
                    recorded.append(chunk)
                    yield chunk
            finished = True
        finally:
            if not finished:  # an error, close() or an abandoned loop: store nothing
                stream.close()
        if complete is not None:
            complete(recorded)

    async def _astream(
        self, plan: _Plan, key: str | None, read: bool, call: _Call, *, instance: object = None
    ) -> AsyncGenerator[Any, None]:
        chunks, stale, pending = await self._alookup_stream(plan, key, read, call, instance)
        if chunks is not _MISS:
            for chunk in chunks:
                yield chunk
            return
        started = time.perf_counter()

        async def complete(chunks: list[Any]) -> None:
            assert key is not None
            worth = self._worth(plan, call, chunks, time.perf_counter() - started)
            note("miss", worth=worth)
            data = self._encode(plan, list(chunks), KIND_STREAM, worth)
            if data is not None:
                await self._awrite(plan, key, data)
            if pending is not None:
                await asyncio.to_thread(self._semantic_store, plan, key, pending, list(chunks), data)

        if key is None or not plan.single_flight:
            source = self._own_astream(plan, call, None if key is None else complete)
        else:
            source = self._astream_flights.read(
                key, lambda: self._aupstream(plan, call, first_chunk=_afirst), complete, self._count_coalesced
            )
        sent = 0
        try:
            async for chunk in source:
                sent += 1
                yield chunk
        except Exception:
            if stale is None or sent:
                raise
            for chunk in self._serve_stale(stale):
                yield chunk
        finally:
            await source.aclose()

    async def _alookup_stream(
        self, plan: _Plan, key: str | None, read: bool, call: _Call, instance: object
    ) -> tuple[Any, list[Any] | None, Any]:
        """A stream's chunks from the cache, exact or semantic: (chunks or _MISS, stale, pending)."""
        if key is None or not read:
            return _MISS, None, None
        chunks, _, stale = await self._aread(plan, key, KIND_STREAM)
        pending = None
        if chunks is _MISS and plan.semantic is not None:
            prepared = await asyncio.to_thread(self._semantic_vector, plan, instance, call[1], call[2])
            chunks, pending = self._semantic_lookup(plan, prepared, KIND_STREAM)
        return chunks, stale, pending

    async def _own_astream(
        self, plan: _Plan, call: _Call, complete: Callable[[list[Any]], Awaitable[None]] | None
    ) -> AsyncGenerator[Any, None]:
        first, stream = await self._aupstream(plan, call, first_chunk=_afirst)
        recorded: list[Any] = []
        finished = False
        try:
            if first is not _END:
                recorded.append(first)
                yield first
                async for chunk in stream:
                    recorded.append(chunk)
                    yield chunk
            finished = True
        finally:
            if not finished:  # an error, aclose() or cancellation: store nothing
                await stream.aclose()
        if complete is not None:
            await complete(recorded)

    def _count_coalesced(self) -> None:
        self._stats.add("coalesced")

    # -- the upstream call: retries, key failover, single-flight, locks, refreshes ----

    def _upstream(self, plan: _Plan, call: _Call, first_chunk: Callable[[Any], Any] | None = None) -> Any:
        wrapped, args, kwargs = call
        param = plan.key_param

        def once(key: str | None) -> Any:
            out = wrapped(*args, **({**kwargs, param: key} if param and key is not None else kwargs))
            return first_chunk(out) if first_chunk is not None else out

        if not plan.resilient:
            return once(None)
        return resilient.call(once, retry=plan.retry, keys=plan.keys_pool, on_retry=self._count_retry)

    async def _aupstream(
        self, plan: _Plan, call: _Call, first_chunk: Callable[[Any], Awaitable[Any]] | None = None
    ) -> Any:
        wrapped, args, kwargs = call
        param = plan.key_param

        async def once(key: str | None) -> Any:
            out = wrapped(*args, **({**kwargs, param: key} if param and key is not None else kwargs))
            return await (first_chunk(out) if first_chunk is not None else out)

        if not plan.resilient:
            return await once(None)
        return await resilient.acall(once, retry=plan.retry, keys=plan.keys_pool, on_retry=self._count_retry)

    # -- the semantic tier ----------------------------------------------------------

    def _semantic_vector(
        self, plan: _Plan, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, Any] | None:
        """(the call's semantic parts, its prompt vector), or None if it has no usable prompt."""
        try:
            parts = plan.keys.semantic(instance, args, kwargs)
        except Exception:  # noqa: BLE001 - the exact path has already reported it
            return None
        if parts is None:
            return None
        vector = plan.semantic.vector(self.name, parts.text)
        if vector is None:
            return None
        self._semantic_sync(plan, parts.partition, len(vector))
        return parts, vector

    def _semantic_sync(self, plan: _Plan, partition: str, dim: int) -> None:
        """Pull the vectors other processes (or an earlier run) logged for this partition."""
        log, sem = plan.vector_log, plan.semantic
        if log is None or not sem.sync_due(partition):
            return
        cursor = sem.cursor(partition)
        try:
            rows, cursor = log.call(lambda: log.backend.vlog_since(partition, cursor))
        except Exception as exc:  # noqa: BLE001 - a failing tier is skipped
            self._tier_failed(plan, log.name, exc)
            return
        sem.absorb(partition, rows, cursor, dim)

    def _semantic_lookup(
        self, plan: _Plan, prepared: tuple[Any, Any] | None, kind: int = KIND_VALUE
    ) -> tuple[Any, Any]:
        """Serve a verified similar entry: (value or _MISS, what to index after the call)."""
        if prepared is None:
            return _MISS, None
        from .semantic.tier import Pending

        parts, vector = prepared
        pending = Pending(parts.partition, parts.text, vector)
        tier = plan.semantic
        for candidate in tier.candidates(parts.partition, vector, parts.text, plan.threshold):
            found = self._quiet_read(plan, candidate.key, kind)
            if found is None:  # its entry expired or was evicted: the vector is dangling
                tier.index.remove(parts.partition, candidate.key)
                continue
            if plan.shadow:
                pending.shadow, pending.shadow_value = candidate, found[0]
                self._stats.add("shadow_hits")
                return _MISS, pending
            env = self._codec.envelope(found[1])
            worth = Worth.from_meta(env[4])
            self._stats.hit("semantic")
            if worth is not None:
                self._stats.saved(worth)
            if plan.adaptive is not None:
                self._warm(plan, candidate.key, kind)
            note("semantic-hit", "semantic", candidate.similarity, env[2], worth)
            return found[0], None
        return _MISS, pending

    def _semantic_store(self, plan: _Plan, key: str, pending: Any, result: Any, data: bytes | None) -> None:
        """Index the new entry's prompt; in shadow mode, compare the answer with the would-be hit."""
        if data is not None:
            ttl = plan.ttl
            expires = None if ttl is None else self._clock() + ttl
            plan.semantic.index.add(pending.partition, key, pending.vector, pending.text, expires)
            log = plan.vector_log
            if log is not None:
                blob = plan.semantic.pack(pending.vector)
                try:
                    log.call(
                        lambda: log.backend.vlog_append(pending.partition, key, pending.text, blob, expires)
                    )
                except Exception as exc:  # noqa: BLE001 - a failing tier is skipped
                    self._tier_failed(plan, log.name, exc)
        if pending.shadow is not None:
            same = pending.shadow_value == result
            if not same:
                self._stats.add("shadow_mismatches")
            logger.info(
                "%s: shadow semantic hit at similarity %.3f on entry %s; answers %s",
                self.name,
                pending.shadow.similarity,
                pending.shadow.key,
                "agree" if same else "differ",
            )

    def _count_retry(self) -> None:
        self._stats.add("retries")

    def _fetch(self, plan: _Plan, key: str, read: bool, call: _Call) -> tuple[Any, bytes | None]:
        """The leader's work on a miss: the result and its encoded bytes (None if not stored)."""
        found = self._recheck(plan, key, read)
        if found is not None:
            return found
        held = None
        if plan.lock is not None:
            held = self._lead_or_wait(plan, key)
            if type(held) is tuple:
                return held
        try:
            result, worth = self._paid_call(plan, call)
            note("miss", worth=worth)
            return result, self._store(plan, key, result, KIND_VALUE, worth)
        finally:
            if held is not None:
                held.release()

    async def _afetch(self, plan: _Plan, key: str, read: bool, call: _Call) -> tuple[Any, bytes | None]:
        """Async :meth:`_fetch`."""
        found = self._recheck(plan, key, read)
        if found is not None:
            return found
        held = None
        if plan.lock is not None:
            held = await self._alead_or_wait(plan, key)
            if type(held) is tuple:
                return held
        try:
            result, worth = await self._apaid_call(plan, call)
            note("miss", worth=worth)
            data = self._encode(plan, result, KIND_VALUE, worth)
            if data is not None:
                await self._awrite(plan, key, data)
            return result, data
        finally:
            if held is not None:
                await held.release()

    def _recheck(self, plan: _Plan, key: str, read: bool) -> tuple[Any, bytes | None] | None:
        """Prefer the value a caller that finished just before us stored in the memory tier."""
        if not (read and plan.single_flight and plan.peek is not None):
            return None
        item = plan.peek(key)
        if item is None:
            return None
        env = self._accept(item.data, KIND_VALUE, quiet=True)
        if env is True or env is False or not _live(env, self._clock()):
            return None
        self._stats.add("coalesced")
        return env[5], item.data

    def _shared(self, result: Any, data: bytes | None) -> Any:
        """A follower's copy of the leader's result (decoded afresh when it was stored)."""
        self._stats.add("coalesced")
        note("coalesced")
        if data is None:
            return result
        try:
            return self._codec.envelope(data)[5]
        except CodecError:
            return result

    def _serve_stale(self, env: list[Any]) -> Any:
        self._stats.add("stale")
        note("stale")
        return env[5]

    def _lead_or_wait(self, plan: _Plan, key: str) -> Any:
        """Across processes: a held lease (lead the call), another's result, or None (call alone).

        While another process holds the lease, poll for its result; if its lease lapses (it
        died), take the lock over: exactly one waiter wins it. Waits at most ``lock_timeout``.
        """
        tier, seconds = plan.lock, lease.lease_of(plan.policy.lock_timeout)
        deadline = time.monotonic() + plan.policy.lock_timeout
        while True:
            try:
                held = lease.take(tier, key, seconds)
            except Exception as exc:  # noqa: BLE001 - without the lock tier, call alone
                self._tier_failed(plan, tier.name, exc)
                return None
            if held is not None:
                # The lock was free: its last holder may have stored the result just before.
                found = self._quiet_read(plan, key, KIND_VALUE)
                if found is None:
                    return held
                held.release()
                self._stats.add("coalesced")
                return found
            found = self._quiet_read(plan, key, KIND_VALUE)
            if found is not None:
                self._stats.add("coalesced")
                return found
            if time.monotonic() >= deadline or not tier.breaker.allow():
                return None
            time.sleep(_LOCK_POLL)

    async def _alead_or_wait(self, plan: _Plan, key: str) -> Any:
        """Async :meth:`_lead_or_wait`."""
        tier, seconds = plan.lock, lease.lease_of(plan.policy.lock_timeout)
        deadline = time.monotonic() + plan.policy.lock_timeout
        while True:
            try:
                held = await lease.atake(tier, key, seconds)
            except Exception as exc:  # noqa: BLE001 - without the lock tier, call alone
                self._tier_failed(plan, tier.name, exc)
                return None
            if held is not None:
                found = await self._aquiet_read(plan, key, KIND_VALUE)
                if found is None:
                    return held
                await held.release()
                self._stats.add("coalesced")
                return found
            found = await self._aquiet_read(plan, key, KIND_VALUE)
            if found is not None:
                self._stats.add("coalesced")
                return found
            if time.monotonic() >= deadline or not tier.breaker.allow():
                return None
            await asyncio.sleep(_LOCK_POLL)

    def _refresh_due(self, plan: _Plan, expires: float | None) -> bool:
        return (
            bool(plan.refresh_window)
            and expires is not None
            and expires - self._clock() < plan.refresh_window
        )

    def _claim_refresh(self, key: str) -> bool:
        with self._refresh_lock:
            if key in self._refreshing:
                return False
            self._refreshing.add(key)
            return True

    def _refresh_in_thread(self, plan: _Plan, key: str, call: _Call) -> None:
        """Refresh an entry close to expiry on a background thread, once per key at a time."""
        if not self._claim_refresh(key):
            return

        def job() -> None:
            try:
                result, worth = self._paid_call(plan, call)
                self._store(plan, key, result, KIND_VALUE, worth)
                self._stats.add("refreshes")
            except Exception as exc:  # noqa: BLE001 - the entry is still served until it expires
                logger.debug("%s: background refresh failed: %r", self.name, exc)
            finally:
                self._refreshing.discard(key)

        threading.Thread(target=job, name="memollm-refresh", daemon=True).start()

    def _refresh_in_task(self, plan: _Plan, key: str, call: _Call) -> None:
        """Async :meth:`_refresh_in_thread`, as a task on the running loop."""
        if not self._claim_refresh(key):
            return

        async def job() -> None:
            try:
                result, worth = await self._apaid_call(plan, call)
                data = self._encode(plan, result, KIND_VALUE, worth)
                if data is not None:
                    await self._awrite(plan, key, data)
                self._stats.add("refreshes")
            except Exception as exc:  # noqa: BLE001 - the entry is still served until it expires
                logger.debug("%s: background refresh failed: %r", self.name, exc)
            finally:
                self._refreshing.discard(key)

        task = asyncio.get_running_loop().create_task(job())
        self._background.add(task)  # keep a reference until it is done
        task.add_done_callback(self._background.discard)

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
        self._resolve_types()
        self._codec.max_bytes = policy.max_entry_bytes
        key_policy = policy
        if policy.key_param is not None:  # an API key never belongs in a cache key
            key_policy = policy.replace(ignore=policy.ignore | {policy.key_param})
        lock = None
        if policy.distributed:
            lock = next(
                (t for t in tiers if callable(getattr(getattr(t, "backend", None), "lock", None))), None
            )
            if lock is None:
                warn_once(
                    ("lock", self.name),
                    "%s: distributed=True needs a Redis tier in tiers; single-flight stays in-process",
                    self.name,
                )
        ttl = policy.ttl_seconds
        semantic = self._semantic_tier(policy)
        plan = _Plan(
            generation=generation,
            policy=policy,
            keys=KeyBuilder(self._raw, key_policy, fid=self.function_id),
            tiers=tiers,
            names=names,
            ttl=policy.ttl_seconds,
            skip_sampled=policy.sampled == "skip",
            enabled=policy.enabled,
            hits=tuple(self._stats.hit_counter(name) for name in names),
            # Exactly MemoryBackend: a subclass may override get() and must be called.
            peek=tiers[0].peek if type(tiers[0]) is MemoryBackend and policy.enabled else None,
            retry=policy.retry,  # type: ignore[arg-type]  # normalised by Policy
            keys_pool=policy.keys,
            key_param=policy.key_param,
            single_flight=policy.single_flight,
            lock=lock,
            stale=policy.stale_ttl,
            refresh_window=(ttl or 0.0) * (policy.refresh_ahead or 0.0),
            semantic=semantic,
            vector_log=next(
                (t for t in tiers if callable(getattr(getattr(t, "backend", None), "vlog_append", None))),
                None,
            )
            if semantic is not None
            else None,
            threshold=policy.semantic if isinstance(policy.semantic, float) else SHADOW_THRESHOLD,
            shadow=policy.semantic == "shadow",
            adaptive=policy.adaptive,
            flat=type(tiers[0]) is MemoryBackend and policy.enabled and policy.adaptive is None,
        )
        self._plan = plan
        return plan

    def _semantic_tier(self, policy: Policy) -> Any:
        """This function's semantic tier (kept across configuration changes while it fits)."""
        if policy.semantic is None:
            return None
        try:
            from .semantic.tier import SemanticTier
        except ImportError as exc:
            warn_once(
                ("semantic-extra",),
                "semantic caching needs the 'semantic' extra (pip install 'memollm[semantic]'): %s; "
                "caching exact matches only",
                exc,
            )
            return None
        shape = (id(policy.embedder), id(policy.verify), policy.semantic_top_k, policy.semantic_max_entries)
        if self._semantic is None or self._semantic_shape != shape:
            self._semantic = SemanticTier(
                embedder=policy.embedder,
                verify=policy.verify,
                top_k=policy.semantic_top_k,
                max_entries=policy.semantic_max_entries,
                clock=self._clock,
            )
            self._semantic_shape = shape
        return self._semantic

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
            note("bypass")
            return plan, None, False
        try:
            info = plan.keys.info(instance, args, kwargs)
        except UncacheableArgumentError as exc:
            if plan.policy.strict:
                raise
            self._stats.add("uncacheable")
            note("uncacheable")
            warn_once(
                ("arg", self.name, exc.path, exc.type_name),
                "%s: calling through uncached: %s",
                self.name,
                exc,
            )
            return plan, None, False
        except TypeError:  # the arguments do not fit: let the function itself say so
            return plan, None, False
        except Exception as exc:
            if plan.policy.strict:
                raise
            self._stats.add("uncacheable")
            note("uncacheable")
            warn_once(("key", self.name, type(exc)), "%s: calling through uncached: the key could "
                      "not be built: %r", self.name, exc)  # fmt: skip
            return plan, None, False
        if info.sampled and plan.skip_sampled:
            self._stats.add("bypasses")
            note("bypass")
            return plan, None, False
        return plan, info.key, current != REFRESH

    def _accept(self, data: bytes, kind: int, *, quiet: bool = False) -> list[Any] | bool:
        """Check one tier's bytes: their envelope, False for a miss, True to delete them.

        ``quiet`` (for re-checks of entries already counted) leaves the stats alone.
        """
        try:
            env = self._codec.envelope(data)
        except IncompatibleEntryError:  # a newer memollm wrote it: leave it alone
            if not quiet:
                self._stats.add("corrupt")
            return False
        except CodecError as exc:
            if not quiet:
                self._stats.add("corrupt")
                warn_once(
                    ("corrupt", self.name), "%s: dropping an entry that does not decode: %s", self.name, exc
                )
            return True
        if env[1] != kind:
            if not quiet:
                self._stats.add("corrupt")
            return True
        return env

    def _read(self, plan: _Plan, key: str, kind: int) -> tuple[Any, float | None, list[Any] | None]:
        """Look the key up tier by tier: (value or _MISS, its expiry, a stale envelope or None)."""
        now = self._clock()
        stale = None
        start = 0
        if plan.peek is not None:
            start = 1
            found, stale = self._read_memory(plan, plan.peek, key, kind, now)
            if found is not None:
                return found
        for index in range(start, len(plan.tiers)):
            tier = plan.tiers[index]
            try:
                data = tier.get(key)
                if data is None:
                    continue
                env = self._accept(data, kind)
                if env is True:
                    tier.delete(key)
                if env is True or env is False:
                    continue
            except Exception as exc:  # noqa: BLE001 - a failing tier is skipped
                self._tier_failed(plan, plan.names[index], exc)
                continue
            if not _live(env, now):
                stale = stale or _stale(plan, env, now)
                continue
            if index:
                # Copy a lower tier's hit upwards with the TTL it has left, never a fresh one.
                remaining = _remaining(plan, env[3], now)
                self._each(plan, lambda up: up.set(key, data, remaining), upto=index)  # noqa: B023 - runs now
            if plan.adaptive is not None:
                self._warm(plan, key, kind, env[3])
            return self._hit(plan, index, env[5], env[2], Worth.from_meta(env[4])), env[3], None
        self._stats.add("misses")
        note("miss")
        return _MISS, None, stale

    async def _aread(self, plan: _Plan, key: str, kind: int) -> tuple[Any, float | None, list[Any] | None]:
        """Async :meth:`_read`."""
        now = self._clock()
        stale = None
        start = 0
        if plan.peek is not None:  # in-process: no need to await it, and it keeps the memo
            start = 1
            found, stale = self._read_memory(plan, plan.peek, key, kind, now)
            if found is not None:
                return found
        for index in range(start, len(plan.tiers)):
            tier = plan.tiers[index]
            try:
                data = await tier.aget(key)
                if data is None:
                    continue
                env = self._accept(data, kind)
                if env is True:
                    await tier.adelete(key)
                if env is True or env is False:
                    continue
            except Exception as exc:  # noqa: BLE001 - a failing tier is skipped
                self._tier_failed(plan, plan.names[index], exc)
                continue
            if not _live(env, now):
                stale = stale or _stale(plan, env, now)
                continue
            if index:
                remaining = _remaining(plan, env[3], now)
                await self._aeach(plan, lambda up: up.aset(key, data, remaining), upto=index)  # noqa: B023 - runs now
            if plan.adaptive is not None:
                await asyncio.to_thread(self._warm, plan, key, kind, env[3])
            return self._hit(plan, index, env[5], env[2], Worth.from_meta(env[4])), env[3], None
        self._stats.add("misses")
        note("miss")
        return _MISS, None, stale

    def _read_memory(
        self, plan: _Plan, peek: Callable[[str], MemoryItem | None], key: str, kind: int, now: float
    ) -> tuple[tuple[Any, float | None, None] | None, list[Any] | None]:
        """The first tier when it is in-process: (a hit or None, a stale envelope or None)."""
        item = peek(key)
        if item is None:
            return None, None
        memo = _fresh_memo(item, kind, now)
        if memo is not None:
            if plan.adaptive is not None:
                self._warm(plan, key, kind, memo[1])
            return (self._hit(plan, 0, memo[2], None, memo[4]), memo[1], None), None
        env = self._accept(item.data, kind)
        if env is True:
            plan.tiers[0].delete(key)
        elif env is not False:
            if _live(env, now):
                memo = item.memo = self._memo_of(env)
                if plan.adaptive is not None:
                    self._warm(plan, key, kind, env[3])
                if memo is not None:
                    return (self._hit(plan, 0, env[5], env[2], memo[4]), env[3], None), None
                return (self._hit(plan, 0, env[5], env[2], Worth.from_meta(env[4])), env[3], None), None
            return None, _stale(plan, env, now)
        return None, None

    def _hit(
        self, plan: _Plan, index: int, value: Any, created: float | None, worth: Worth | Tally | None
    ) -> Any:
        """Count a hit in tier ``index`` and what it saved; return ``value``."""
        next(plan.hits[index])
        if type(worth) is Tally:
            next(worth.count)
            worth = worth.worth
        elif worth is not None:
            self._stats.saved(worth)  # type: ignore[arg-type]  # a Worth here
        note("hit", plan.names[index], created=created, worth=worth)
        return value

    def _memo_of(self, env: list[Any]) -> tuple[Any, ...] | None:
        """(kind, expires, value, hit count, tally) to keep beside a memory entry, if sharing is safe."""
        value = _shareable(env)
        if value is _MISS:
            return None
        tally = self._stats.tally(Worth.from_meta(env[4]))
        return env[1], env[3], value, tally.count, tally

    # -- adaptive TTL -------------------------------------------------------------------

    def _warm(self, plan: _Plan, key: str, kind: int, expires: float | None = _UNKNOWN) -> None:
        """Count a hit on ``key``; once it is hot and near expiry, move its expiry out (within the cap).

        Each process counts the hits it serves. A hot entry is rewritten when less than half
        of ``hot`` is left, so at most about twice per ``hot`` seconds, never on every hit.
        """
        adaptive = plan.adaptive
        assert adaptive is not None
        with self._heat_lock:
            hits = self._heat.get(key, 0) + 1
            self._heat[key] = hits
        if hits < adaptive.hot_after:
            return
        now = self._clock()
        if expires is not _UNKNOWN and (expires is None or expires - now >= adaptive.hot / 2):
            return
        found = self._quiet_read(plan, key, kind)
        if found is None:
            return
        _, created, expires, meta, value = self._codec.envelope(found[1])[1:]
        target = min(now + adaptive.hot, created + adaptive.cap)
        if expires is None or expires - now >= adaptive.hot / 2 or target <= expires:
            return
        try:
            data = self._codec.encode(value, kind=kind, created=created, expires=target, meta=meta)
        except CodecError:
            return
        ttl = target - now + (plan.stale or 0.0)
        self._each(plan, lambda tier: tier.set(key, data, ttl))

    # -- savings ------------------------------------------------------------------------

    def _paid_call(self, plan: _Plan, call: _Call) -> tuple[Any, Worth | None]:
        """The upstream call, and what a later hit on its result will save."""
        started = time.perf_counter()
        result = self._upstream(plan, call)
        return result, self._worth(plan, call, result, time.perf_counter() - started)

    async def _apaid_call(self, plan: _Plan, call: _Call) -> tuple[Any, Worth | None]:
        """Async :meth:`_paid_call`."""
        started = time.perf_counter()
        result = await self._aupstream(plan, call)
        return result, self._worth(plan, call, result, time.perf_counter() - started)

    def _worth(self, plan: _Plan, call: _Call, result: Any, latency: float) -> Worth | None:
        """What a hit on this fresh result will save: its call's tokens, cost and duration."""
        try:
            _, args, kwargs = call
            model = kwargs.get("model")
            if model is None:
                model = next((a.get("model") for a in args if isinstance(a, Mapping)), None)
            model = model if isinstance(model, str) else None
            prompt = prompt_text((*args, *kwargs.values()))
            usage = (plan.policy.usage or usage_of)(result, prompt, model)
            return Worth(
                usage.input_tokens, usage.output_tokens, usage.estimated, usage.model, latency, cost_of(usage)
            )
        except Exception as exc:  # noqa: BLE001 - savings are reporting; the call must go on
            warn_limited(("usage", self.name), "%s: could not count a result's tokens: %r", self.name, exc)
            return None

    def _quiet_read(self, plan: _Plan, key: str, kind: int) -> tuple[Any, bytes] | None:
        """A live entry's value and bytes, without counting a lookup (for re-checks and waits)."""
        now = self._clock()
        for index, tier in enumerate(plan.tiers):
            try:
                data = tier.get(key)
            except Exception as exc:  # noqa: BLE001 - a failing tier is skipped
                self._tier_failed(plan, plan.names[index], exc)
                continue
            if data is not None:
                env = self._accept(data, kind, quiet=True)
                if env is not True and env is not False and _live(env, now):
                    return env[5], data
        return None

    async def _aquiet_read(self, plan: _Plan, key: str, kind: int) -> tuple[Any, bytes] | None:
        """Async :meth:`_quiet_read`."""
        now = self._clock()
        for index, tier in enumerate(plan.tiers):
            try:
                data = await tier.aget(key)
            except Exception as exc:  # noqa: BLE001 - a failing tier is skipped
                self._tier_failed(plan, plan.names[index], exc)
                continue
            if data is not None:
                env = self._accept(data, kind, quiet=True)
                if env is not True and env is not False and _live(env, now):
                    return env[5], data
        return None

    def _store(
        self, plan: _Plan, key: str, value: Any, kind: int, worth: Worth | None = None
    ) -> bytes | None:
        """Encode and write a result; its bytes, or None if it was not stored."""
        data = self._encode(plan, value, kind, worth)
        if data is not None:
            self._write(plan, key, data)
        return data

    def _encode(self, plan: _Plan, value: Any, kind: int, worth: Worth | None = None) -> bytes | None:
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
                value,
                kind=kind,
                created=now,
                expires=None if ttl is None else now + ttl,
                meta={"f": self.name} if worth is None else {"f": self.name, "u": worth.meta()},
            )
        except CodecError as exc:
            if not self._types_resolved and self._resolve_types():
                return self._encode(plan, value, kind, worth)
            self._stats.add("errors")
            if policy.strict:
                raise
            warn_once(("encode", self.name, type(value)), "%s: result not cached: %s", self.name, exc)
            return None

    def _write(self, plan: _Plan, key: str, data: bytes) -> None:
        ttl = plan.physical_ttl
        self._each(plan, lambda tier: tier.set(key, data, ttl))
        self._stats.add("stores")

    async def _awrite(self, plan: _Plan, key: str, data: bytes) -> None:
        ttl = plan.physical_ttl
        await self._aeach(plan, lambda tier: tier.aset(key, data, ttl))
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


def _fresh_memo(item: MemoryItem, kind: int, now: float) -> tuple[Any, ...] | None:
    memo = item.memo
    if memo is not None and memo[0] == kind and (memo[1] is None or memo[1] > now):
        return memo
    return None


def _split_arguments(arguments: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if type(arguments) is tuple:
        return arguments, {}
    if isinstance(arguments, Mapping):
        return (), dict(arguments)
    return (arguments,), {}


def _shareable(env: list[Any]) -> Any:
    """The entry's value if every caller may share one decoded copy of it, else _MISS."""
    value = env[5]
    if type(value) in _IMMUTABLE:
        return value
    if type(value) is tuple and _IMMUTABLE.issuperset(map(type, value)):
        return value
    if env[1] == KIND_STREAM and _IMMUTABLE.issuperset(map(type, value)):
        # A stream replays its chunks, never the list itself.
        return tuple(value)
    return _MISS


@contextmanager
def _observing(seen: Observation) -> Iterator[None]:
    token = _control_observe.set(seen)
    try:
        yield
    finally:
        _control_observe.reset(token)


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    """Tier names for stats and logs; a repeated name gets "#2", "#3"."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return tuple(out)


def _remaining(plan: _Plan, expires: float | None, now: float) -> float | None:
    return plan.ttl if expires is None else expires - now + (plan.stale or 0.0)


def _live(env: list[Any], now: float) -> bool:
    return env[3] is None or bool(env[3] > now)


def _stale(plan: _Plan, env: list[Any], now: float) -> list[Any] | None:
    """The envelope, if it expired recently enough to be served when the call fails."""
    return env if plan.stale is not None and env[3] + plan.stale > now else None


_END: Any = object()
_LOCK_POLL = 0.05


def _first(stream: Any) -> tuple[Any, Any]:
    """Open a stream far enough to see its first chunk (or its end)."""
    try:
        return next(stream), stream
    except StopIteration:
        return _END, stream


async def _afirst(stream: Any) -> tuple[Any, Any]:
    """Async :func:`_first`."""
    try:
        return await stream.__anext__(), stream
    except StopAsyncIteration:
        return _END, stream


def stats_by_function() -> dict[str, CacheStats]:
    """A snapshot of every live cached function's stats, by name (same names are combined)."""
    groups: dict[str, list[CacheStats]] = {}
    for cache in list(_caches):
        groups.setdefault(cache.name, []).append(cache.stats())
    return {name: CacheStats.combine(parts) for name, parts in sorted(groups.items())}


def global_stats() -> CacheStats:
    """Counts summed over every cached function in this process."""
    return CacheStats.combine(cache.stats() for cache in list(_caches))
