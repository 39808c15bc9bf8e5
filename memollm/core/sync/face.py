# Generated from memollm/core/aio/face.py by scripts/unasync.py: edit that file, then run the script.
"""The path of a call through the cache: look up, then one caller makes the call and stores it.

Read the tiers; on a miss try the semantic tier; then one caller (per process, and with
``distributed=True`` across processes) calls the model and stores the answer while the others
wait for it. The semantic step (embedding, its own tier reads) is CPU work and sync: an async
function runs it on a worker thread, so nothing blocks the event loop but the in-process memory
tier, which never waits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from ... import events
from ...coalesce import processes
from ...codec import KIND_STREAM, KIND_VALUE
from ...config import generation
from ...outcomes import Outcome, active_lookup
from ...switches import NORMAL, mode
from ..calls import Call, worth_of
from ..decide import Decision, decide, followed, serve_stale, shared
from ..encode import encode
from ..entry import END, MISSING
from ..keeping import due
from ..observe import decided, note
from ..semantic import lookup
from ..walk import failed, recheck
from . import lifetime, tiers, upstream
from .observed import observed, observed_stream

if TYPE_CHECKING:
    from ...semantic.tier import Pending
    from ..plan import Plan
    from ..state import State

__all__ = ["SyncFace"]


class SyncFace:
    """Calls of a sync function or generator, for one cached function's state."""

    __slots__ = ("state",)

    def __init__(self, state: State) -> None:
        self.state = state

    def call(self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The wrapper of a sync function: the flat hit path, else :meth:`full`."""
        if events.hooks:
            # No closure here: its cells would cost every call, hits included, a fifth more.
            return observed(self.state.name, self.full, wrapped, instance, args, kwargs)
        state = self.state
        plan = state.plan
        if plan is not None and plan.flat and plan.generation == generation.value:
            # Flat path for the commonest hit: an immutable value memoised beside a memory
            # entry (see walk.memo_of). Anything unusual takes the full path. The Memo is
            # read by index: (kind, expires, value, hits, tally); a little cheaper than names.
            try:
                info = plan.keys.info(instance, args, kwargs) if mode() == NORMAL else None
            except Exception:  # noqa: BLE001 - the full path reports it
                info = None
            if info is not None and not (info.sampled and plan.skip_sampled):
                item = plan.peek(info.key)  # type: ignore[misc]  # flat implies peek
                if item is not None:
                    memo = item.memo
                    if memo is not None:
                        kind, expires, value, hits, _ = memo
                        if kind == KIND_VALUE and (
                            expires is None or expires > state.clock() + plan.refresh_window
                        ):
                            next(plan.hits[0])
                            next(hits)
                            if active_lookup() is not None:
                                note(Outcome.HIT, plan.names[0])
                            return value
        return self.full(wrapped, instance, args, kwargs)

    def full(self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """One call, through every step."""
        state = self.state
        plan, key, read = decide(state, instance, args, kwargs)
        made: Call = (wrapped, args, kwargs)
        if key is None:
            return upstream.call(state, plan, made)
        stale = pending = None
        if read:
            value, expires, stale = tiers.read(state, plan, key, KIND_VALUE)
            if value is not MISSING:
                if plan.adaptive is not None:
                    lifetime.warm(state, plan, key, KIND_VALUE, expires)
                if plan.refresh_window and due(plan, expires, state.clock()):
                    lifetime.refresh(state, plan, key, made)
                return value
            if plan.semantic is not None:
                value, pending = lookup.find(state, plan, instance, made, KIND_VALUE)
                if value is not MISSING:
                    return value
        try:
            if plan.single_flight:
                (result, data), led = state.flights.run(key, lambda: self.fetch(plan, key, read, made))
            else:
                (result, data), led = self.fetch(plan, key, read, made), True
        except Exception:
            if stale is None:
                raise
            return serve_stale(state, stale)
        if pending is not None and led:
            lookup.remember(state, plan, key, pending, result=result, data=data)
        return result if led else shared(state, result, data, looked=read)

    def fetch(self, plan: Plan, key: str, read: bool, made: Call) -> tuple[Any, bytes | None]:
        """The leader's work on a miss: the result and its encoded bytes (None if not stored)."""
        state = self.state
        if read and plan.single_flight:
            stored = recheck(state, plan, key, KIND_VALUE)
            if stored is not None:  # a caller that finished just before us stored it
                return followed(state, stored.entry, stored.data, looked=True)
        lease = None
        if plan.lock is not None:
            try:
                waited = processes.lead_or_wait(
                    plan.lock,
                    key,
                    plan.policy.lock_timeout,
                    lambda: tiers.quiet(state, plan, key, KIND_VALUE),
                )
            except Exception as exc:  # noqa: BLE001 - without the lock tier, call alone
                failed(state, plan, plan.lock.name, exc)
            else:
                if waited.found is not None:
                    return followed(state, waited.found.entry, waited.found.data, looked=read)
                lease = waited.lease
        try:
            result, worth = upstream.paid(state, plan, made)
            note(Outcome.MISS, worth=worth)
            data = encode(state, plan, result, KIND_VALUE, worth)
            if data is not None:
                tiers.write(state, plan, key, data, None if lease is None else lease.fence)
            return result, data
        finally:
            if lease is not None:
                lease.release()

    def gen(self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The wrapper of a generator function (decided at call time, so bypass() counts)."""
        state, made = self.state, (wrapped, args, kwargs)
        if events.hooks:
            decision, seen, started, wall = decided(lambda: decide(state, instance, args, kwargs))
            return observed_stream(state.name, self.stream(decision, made, instance), seen, started, wall)
        return self.stream(decide(state, instance, args, kwargs), made, instance)

    def stream(self, decision: Decision, made: Call, instance: object) -> Generator[Any, None, None]:
        """A stream's chunks: replayed from the cache, or recorded as they come from the model."""
        state = self.state
        plan, key, read = decision
        chunks: Any = MISSING
        stale = pending = None
        if key is not None and read:
            chunks, expires, stale = tiers.read(state, plan, key, KIND_STREAM)
            if chunks is not MISSING:
                lifetime.warm(state, plan, key, KIND_STREAM, expires)
            elif plan.semantic is not None:
                chunks, pending = lookup.find(state, plan, instance, made, KIND_STREAM)
        if chunks is not MISSING:
            for chunk in chunks:
                yield chunk
            return
        if key is None or not plan.single_flight:
            source = self.own_stream(
                plan, made, None if key is None else self.recorder(plan, key, made, pending)
            )
        else:
            opened = lambda: upstream.call(state, plan, made, upstream.first)  # noqa: E731
            source = state.stream_flights.read(
                key, opened, self.recorder(plan, key, made, pending), lambda: state.count_coalesced(read)
            )
        sent = 0
        try:
            for chunk in source:
                sent += 1
                yield chunk
        except Exception:
            if stale is None or sent:  # once chunks reached the caller, the failure is theirs
                raise
            for chunk in serve_stale(state, stale):
                yield chunk
        finally:
            source.close()

    def recorder(
        self, plan: Plan, key: str, made: Call, pending: Pending | None
    ) -> Callable[[list[Any]], None]:
        """What stores a stream's chunks once it has ended normally."""
        state, started = self.state, time.perf_counter()

        def complete(recorded: list[Any]) -> None:
            worth = worth_of(state, plan, made, recorded, time.perf_counter() - started)
            note(Outcome.MISS, worth=worth)
            data = encode(state, plan, list(recorded), KIND_STREAM, worth)
            if data is not None:
                tiers.write(state, plan, key, data)
            if pending is not None:
                lookup.remember(state, plan, key, pending, result=list(recorded), data=data)

        return complete

    def own_stream(
        self, plan: Plan, made: Call, complete: Callable[[list[Any]], None] | None
    ) -> Generator[Any, None, None]:
        """The model's stream, recorded; ``complete`` gets the chunks if it ends normally."""
        # Retries and key failover cover opening the stream and its first chunk; once
        # chunks have reached the caller, a failure is the caller's to see.
        first, stream = upstream.call(self.state, plan, made, upstream.first)
        recorded: list[Any] = []
        finished = False
        try:
            if first is not END:
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
