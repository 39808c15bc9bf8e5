"""A :class:`CacheEvent` for every cached call, delivered to the hooks you register.

For example, to log slow lookups::

    def watch(event: memollm.CacheEvent) -> None:
        if event.latency > 0.05:
            log.warning("slow %s lookup on %s", event.outcome, event.function)

    memollm.events.subscribe(watch)

Hooks are plain callables run synchronously on the caller's thread, after the lookup
and (on a miss) the call; keep them fast. A hook that raises is logged, rate-limited,
and never breaks the call. With no hook registered no event is built at all, so the
hit path pays nothing. Running totals (hit rate by tier, tokens, money and time saved)
need no hook: they are :func:`memollm.stats` and :func:`memollm.stats_by_function`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from ._log import warn_limited

__all__ = ["OUTCOMES", "CacheEvent", "Hook", "emit", "subscribe", "unsubscribe"]

OUTCOMES = frozenset({"hit", "semantic-hit", "miss", "stale", "bypass", "error"})


class CacheEvent(NamedTuple):
    """What one cached call did (immutable; a named tuple, cheap to build on the hit path).

    Attributes:
        function: the cached function's name (``fn.cache.name``).
        outcome: ``"hit"``, ``"semantic-hit"``, ``"miss"``, ``"stale"`` (the call failed and
            an expired entry was served), ``"bypass"`` (``bypass()``, a disabled policy, a
            sampled call) or ``"error"`` (the call raised, or its arguments could not be keyed
            and it went through uncached; see ``detail``).
        tier: the tier that answered a hit (``"memory"``, ``"redis"``, ``"sqlite"``, ``"semantic"``).
        latency: seconds from the call to the cache's answer: the whole call on a hit, the
            lookup alone on a miss.
        time: wall-clock time the call started.
        similarity: cosine similarity of a semantic hit.
        input_tokens, output_tokens: tokens of the answer's call: on a hit, what was saved;
            on a miss, what was spent. ``None`` when unknown.
        estimated: the tokens were estimated from text, not reported by the response.
        model: the model that answered, when known.
        cost: US dollars of those tokens; ``None`` when the model has no price or tokens are unknown.
        call_latency: seconds the upstream call took (on a hit: the stored call's, i.e. time saved).
        detail: more about the outcome: ``"coalesced"`` (a hit on another caller's call in
            flight: ``tier`` is ``"coalesced"`` too), ``"explored"`` (a miss that checked a
            similar entry against the model, in error-bounded mode), ``"uncacheable"``,
            ``"upstream"`` (the call raised).
    """

    function: str
    outcome: str
    tier: str | None
    latency: float
    time: float
    similarity: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    estimated: bool = False
    model: str | None = None
    cost: float | None = None
    call_latency: float | None = None
    detail: str | None = None


Hook = Callable[[CacheEvent], Any]
HitSink = Callable[[str, str, float], Any]

_lock = threading.Lock()
# Replaced, never mutated: emitters read them without the lock.
hooks: tuple[Hook, ...] = ()
# For the ASGI fast path's memory hits: hooks that need the whole event, and the sinks of
# those that only want (function, tier, latency) and so spare every hit building one.
hit_hooks: tuple[Hook, ...] = ()
hit_sinks: tuple[HitSink, ...] = ()
_sinks: dict[Hook, HitSink] = {}


def subscribe(hook: Hook, *, hits: HitSink | None = None) -> Callable[[], None]:
    """Call ``hook`` with every :class:`CacheEvent`; returns a function that unsubscribes it.

    ``hits``: for hooks that only count, a cheaper sink for the ASGI fast path's memory hits,
    called as ``hits(function, tier, latency)`` instead of building an event per hit.
    """
    if not callable(hook) or (hits is not None and not callable(hits)):
        raise TypeError(f"an event hook must be callable, got {hook!r}")
    with _lock:
        if hits is not None:
            _sinks[hook] = hits
        _publish([*hooks, hook])
    return lambda: unsubscribe(hook)


def unsubscribe(hook: Hook) -> None:
    """Stop calling ``hook`` (no error if it was not subscribed)."""
    with _lock:
        kept = list(hooks)
        if hook in kept:
            kept.remove(hook)
        if hook not in kept:
            _sinks.pop(hook, None)
        _publish(kept)


def _publish(kept: list[Hook]) -> None:
    global hooks, hit_hooks, hit_sinks  # noqa: PLW0603 - copy-on-write registry, under _lock
    hit_hooks = tuple(h for h in kept if h not in _sinks)
    hit_sinks = tuple(_sinks[h] for h in kept if h in _sinks)
    hooks = tuple(kept)


def emit_hit(function: str, tier: str, started: float, worth: Any) -> None:
    """Deliver a fast-path memory hit: to sinks as (function, tier, latency), to other hooks as an event."""
    latency = time.perf_counter() - started
    for sink in hit_sinks:
        try:
            sink(function, tier, latency)
        except Exception as exc:  # noqa: BLE001 - observers must never break the call
            _dropped(sink, exc)
    if hit_hooks:
        _deliver(hit_event(function, tier, latency, worth), hit_hooks)


def emit(event: CacheEvent) -> None:
    """Deliver ``event`` to every hook; a failing hook is logged and skipped."""
    _deliver(event, hooks)


def _deliver(event: CacheEvent, targets: tuple[Hook, ...]) -> None:
    for hook in targets:
        try:
            hook(event)
        except Exception as exc:  # noqa: BLE001 - observers must never break the call
            _dropped(hook, exc)


def _dropped(hook: Any, exc: Exception) -> None:
    warn_limited(("hook", id(hook)), "memollm event hook %r raised %r; event dropped", hook, exc)


def build(
    function: str,
    started: float,
    wall: float,
    seen: Any,
    *,
    finished: float | None = None,
    failed: bool = False,
) -> CacheEvent:
    """The event of one observed call (``seen``: its :class:`~memollm.core.observe.Observation`)."""
    end = time.perf_counter() if finished is None else finished
    outcome, detail = _outcome(seen.outcome, failed)
    if detail is None and outcome == "miss" and getattr(seen, "explored", False):
        detail = "explored"
    looked = seen.looked if seen.looked is not None else end
    latency = (end if outcome in ("hit", "semantic-hit") else looked) - started
    tier = "coalesced" if detail == "coalesced" else seen.tier if outcome in ("hit", "semantic-hit") else None
    return CacheEvent._make(
        (
            function,
            outcome,
            tier,
            max(latency, 0.0),
            wall,
            seen.similarity if outcome == "semantic-hit" else None,
            *_costs(seen.worth),
            detail,
        )
    )


def hit_event(function: str, tier: str, latency: float, worth: Any) -> CacheEvent:
    """The event of a hit served without the full call path (the ASGI fast path)."""
    # tuple.__new__ skips _make's length check (a test holds the field count).
    return _new_event(CacheEvent, (function, "hit", tier, latency, time.time(), None, *_costs(worth), None))


_new_event = tuple.__new__


_UNKNOWN_COSTS = (None, None, False, None, None, None)


def _costs(worth: Any) -> tuple[Any, ...]:
    """CacheEvent's token, model, cost and call-latency fields from a ``Worth`` (or None)."""
    if worth is None:
        return _UNKNOWN_COSTS
    return (worth.input_tokens, worth.output_tokens, worth.estimated, worth.model, worth.cost, worth.latency)


def _outcome(noted: str | None, failed: bool) -> tuple[str, str | None]:
    if failed and noted != "stale":
        return "error", "upstream"
    if noted == "coalesced":
        return "hit", "coalesced"
    if noted == "uncacheable":
        return "error", "uncacheable"
    if noted in OUTCOMES:
        return noted, None
    return "miss", None
