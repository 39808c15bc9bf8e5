"""What caches did: counters per cached function, their frozen snapshots, and the totals.

``memollm.stats()`` sums every live cached function of the process;
``memollm.stats_by_function()`` gives them by name. Each function's own are ``fn.cache.stats()``.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from .worth import MEMO_MODEL_CHARS, Worth, money

__all__ = ["CacheStats", "StatsRecorder", "Tally", "Worth", "money", "stats", "stats_by_function", "track"]


class Tally:
    """Hits on one memoised entry, counted without a lock and folded into the stats later."""

    __slots__ = ("__weakref__", "count", "worth")

    def __init__(self, worth: Worth | None) -> None:
        self.count = itertools.count()
        self.worth = worth  # None: the entry recorded no usage (preloaded, or an older memollm)


@dataclass(frozen=True, slots=True)
class CacheStats:
    """A snapshot of what a cache did.

    ``hits`` counts hits per tier name; ``errors`` counts tier failures and
    results that could not be encoded; ``corrupt`` counts stored entries that
    failed to decode (they are deleted); ``uncacheable`` counts calls whose
    arguments could not be keyed; ``skipped`` counts results not stored because ``cache_if``
    refused them, and ``incomplete`` those of them that were not complete answers (an error
    sent with status 200, a stream that stopped before its end: see :mod:`memollm.complete`);
    ``retries`` counts retried upstream calls; ``stale`` counts expired entries served
    because the call failed; ``coalesced`` counts calls that got another caller's answer
    (a concurrent identical call in flight, here or in another process): each is also a hit,
    in ``hits["coalesced"]``, and never a miss, so every call is exactly one outcome;
    ``refreshes`` counts background refreshes; ``shadow_hits`` counts semantic hits
    shadow mode would have served, and ``shadow_mismatches`` those whose fresh answer
    differed from the one that would have been served.

    Error-bounded semantic hits (``Semantic(max_error=...)``): ``explorations`` counts calls
    made where a similar entry existed but was not (yet) safe to serve, the price of
    learning; ``semantic_checks`` the comparisons of a fresh answer with a cached one, and
    ``semantic_wrong`` those that differed; ``eligible_checks`` / ``eligible_wrong`` the same
    for candidates that would have been served, which estimate :attr:`semantic_error`.

    Savings: each hit saves what the call that stored its entry spent. ``*_tokens_saved``
    add up those calls' tokens (``estimated_tokens_saved`` of them were estimated from
    text, not reported); ``cost_saved`` their price in US dollars; ``latency_saved`` their
    duration in seconds. Hits on entries whose model has no price count in
    ``unpriced_hits`` (and name the model in ``unpriced_models``, up to 64 names), not in ``cost_saved``.
    """

    hits: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    misses: int = 0
    stores: int = 0
    bypasses: int = 0
    errors: int = 0
    corrupt: int = 0
    uncacheable: int = 0
    skipped: int = 0
    incomplete: int = 0
    retries: int = 0
    stale: int = 0
    coalesced: int = 0
    refreshes: int = 0
    shadow_hits: int = 0
    shadow_mismatches: int = 0
    explorations: int = 0
    semantic_checks: int = 0
    semantic_wrong: int = 0
    eligible_checks: int = 0
    eligible_wrong: int = 0
    input_tokens_saved: int = 0
    output_tokens_saved: int = 0
    estimated_tokens_saved: int = 0
    cost_saved: float = 0.0
    latency_saved: float = 0.0
    unpriced_hits: int = 0
    unpriced_models: frozenset[str] = frozenset()

    @property
    def tokens_saved(self) -> int:
        """Input plus output tokens hits did not spend."""
        return self.input_tokens_saved + self.output_tokens_saved

    @property
    def hit_count(self) -> int:
        """Hits over all tiers."""
        return sum(self.hits.values())

    @property
    def lookups(self) -> int:
        """Calls that looked in the cache (hits plus misses)."""
        return self.hit_count + self.misses

    @property
    def semantic_error(self) -> float | None:
        """Error-bounded mode: the estimated share of wrong semantic hits (None before any check).

        From the checks of candidates that would have been served, a random sample of them.
        """
        return self.eligible_wrong / self.eligible_checks if self.eligible_checks else None

    @property
    def semantic_error_interval(self) -> tuple[float, float] | None:
        """A 95% (Wilson) interval around :attr:`semantic_error`."""
        if not self.eligible_checks:
            return None
        from .semantic.bounded import wilson

        return wilson(self.eligible_wrong, self.eligible_checks)

    def __str__(self) -> str:
        """A one-line summary for ``print(fn.cache.stats())``: hit rate first, zero counts left out."""
        parts = [f"hit_rate={self.hit_rate:.1%}", f"lookups={self.lookups}", f"hits={dict(self.hits)}"]
        for name in (*_COUNTERS, "input_tokens_saved", "output_tokens_saved"):
            value = getattr(self, name)
            if value:
                parts.append(f"{name}={value}")
        if self.cost_saved:
            parts.append(f"cost_saved={money(self.cost_saved)}")
        if self.latency_saved:
            parts.append(f"latency_saved={self.latency_saved:.3g}s")
        return f"CacheStats({', '.join(parts)})"

    @property
    def hit_rate(self) -> float:
        """Hits divided by lookups (0.0 before the first lookup)."""
        lookups = self.lookups
        return self.hit_count / lookups if lookups else 0.0

    @classmethod
    def combine(cls, parts: Iterable[CacheStats]) -> CacheStats:
        """Add several snapshots together."""
        hits: dict[str, int] = {}
        totals: dict[str, Any] = dict.fromkeys(_COUNTERS + _SAVINGS, 0)
        unpriced: set[str] = set()
        for part in parts:
            for tier, n in part.hits.items():
                hits[tier] = hits.get(tier, 0) + n
            for name in _COUNTERS + _SAVINGS:
                totals[name] += getattr(part, name)
            unpriced |= part.unpriced_models
        return cls(hits=MappingProxyType(hits), unpriced_models=frozenset(unpriced), **totals)


_COUNTERS = (
    "misses", "stores", "bypasses", "errors", "corrupt", "uncacheable", "skipped", "incomplete",
    "retries", "stale", "coalesced", "refreshes", "shadow_hits", "shadow_mismatches", "explorations",
    "semantic_checks", "semantic_wrong", "eligible_checks", "eligible_wrong",
)  # fmt: skip
_SAVINGS = (
    "input_tokens_saved", "output_tokens_saved", "estimated_tokens_saved", "cost_saved", "latency_saved",
    "unpriced_hits",
)  # fmt: skip


_BY_WORTH_LIMIT = 256
_UNPRICED_LIMIT = 64  # model names listed in unpriced_models


class StatsRecorder:
    """Counters behind :class:`CacheStats`.

    Each counter is an ``itertools.count``: ``next()`` on it is atomic under the
    GIL, so the hit path counts without taking a lock.
    """

    __slots__ = (
        "_base",
        "_by_worth",
        "_counts",
        "_followed",
        "_hits",
        "_live",
        "_lock",
        "_saved",
        "_unpriced",
    )

    def __init__(self) -> None:
        # Re-entrant: a Tally's weakref callback folds it in whichever thread drops it last.
        self._lock = threading.RLock()
        self._saved: dict[str, Any] = dict.fromkeys(_SAVINGS, 0)
        self._unpriced: set[str] = set()
        self._live: dict[weakref.ref[Tally], tuple[itertools.count[int], Worth | None, list[int]]] = {}
        # Tallies of hits on entries without a memo (read from a shared tier), by their worth.
        self._by_worth: dict[int, Tally] = {}
        self._hits: dict[str, itertools.count[int]] = {}
        self._counts = {name: itertools.count() for name in _COUNTERS}
        # Followers that got a leader's answer after their own lookup had counted a miss.
        self._followed = itertools.count()
        # reset() records where each counter stood; counters themselves are never replaced,
        # because the hit path holds on to them.
        self._base: dict[tuple[str, str], int] = {}

    def hit_counter(self, tier: str) -> itertools.count[int]:
        """The counter of hits in ``tier``: call ``next()`` on it to count one."""
        with self._lock:
            counter = self._hits.get(tier)
            if counter is None:
                counter = self._hits[tier] = itertools.count()
            return counter

    def hit(self, tier: str) -> None:
        """Count a hit in ``tier``."""
        next(self.hit_counter(tier))

    def add(self, counter: str) -> None:
        """Count one more of ``counter`` (one of the CacheStats counters)."""
        next(self._counts[counter])

    def coalesced(self, *, looked: bool) -> None:
        """Count a call that got another's answer: a coalesced hit (``looked``: its lookup missed)."""
        next(self._counts["coalesced"])
        if looked:
            next(self._followed)

    def saved(self, worth: Worth, hits: int = 1) -> None:
        """Add what ``hits`` hits on an entry of this ``worth`` saved."""
        if hits <= 0:
            return
        with self._lock:
            saved = self._saved
            saved["input_tokens_saved"] += hits * worth.input_tokens
            saved["output_tokens_saved"] += hits * worth.output_tokens
            if worth.estimated:
                saved["estimated_tokens_saved"] += hits * (worth.input_tokens + worth.output_tokens)
            saved["latency_saved"] += hits * worth.latency
            if worth.cost is not None:
                saved["cost_saved"] += hits * worth.cost
            elif worth.input_tokens or worth.output_tokens:
                saved["unpriced_hits"] += hits
                if len(self._unpriced) < _UNPRICED_LIMIT:  # names come from stored bytes: bounded
                    self._unpriced.add((worth.model or "unknown model")[:MEMO_MODEL_CHARS])

    def saved_once(self, worth: Worth) -> None:
        """Add what one hit on an entry of this ``worth`` saved, without taking the lock.

        Hits on equal worths share a tally (Worth.from_meta returns one object per worth);
        the tally keeps its worth alive, so its id is never reused while it is here.
        """
        if worth.model is not None and len(worth.model) > MEMO_MODEL_CHARS:
            self.saved(worth)  # a worth of its own per hit: nothing to share, nothing to keep
            return
        tally = self._by_worth.get(id(worth))
        if tally is None or tally.worth is not worth:
            tally = self.tally(worth)
            if len(self._by_worth) >= _BY_WORTH_LIMIT:
                self._by_worth = {}  # the tallies dropped are folded in as they go
            self._by_worth[id(worth)] = tally
        next(tally.count)

    def tally(self, worth: Worth | None) -> Tally:
        """A lock-free hit counter for one memoised entry: ``next(tally.count)`` per hit."""
        tally = Tally(worth)
        with self._lock:
            self._live[weakref.ref(tally, self._fold_dead)] = (tally.count, worth, [0])
        return tally

    def _fold_dead(self, ref: weakref.ref[Tally]) -> None:
        with self._lock:
            entry = self._live.pop(ref, None)
            if entry is not None:
                self._fold(entry)

    def _fold(self, entry: tuple[itertools.count[int], Worth | None, list[int]]) -> None:
        count, worth, seen = entry
        now = _value(count)
        if worth is not None:
            self.saved(worth, now - seen[0])
        seen[0] = now

    def snapshot(self) -> CacheStats:
        """Return the current counts."""
        with self._lock:
            for entry in list(self._live.values()):
                self._fold(entry)
            base = self._base
            hits = {t: _value(c) - base.get(("hit", t), 0) for t, c in self._hits.items()}
            counts = {n: _value(c) - base.get(("n", n), 0) for n, c in self._counts.items()}
            # Every semantic hit follows an exact miss, counted before the semantic lookup
            # ran; so does every coalesced call that looked first. Each is one outcome: a hit.
            followed = _value(self._followed) - base.get(("n", "_followed"), 0)
            counts["misses"] = max(0, counts["misses"] - hits.get("semantic", 0) - followed)
            if counts["coalesced"]:
                hits["coalesced"] = counts["coalesced"]
            saved = dict(self._saved)
            unpriced = frozenset(self._unpriced)
        return CacheStats(
            hits=MappingProxyType({t: n for t, n in hits.items() if n}),
            unpriced_models=unpriced,
            **counts,
            **saved,
        )

    def reset(self) -> None:
        """Set every counter back to zero."""
        with self._lock:
            for entry in list(self._live.values()):
                self._fold(entry)
            self._base = {("hit", t): _value(c) for t, c in self._hits.items()}
            self._base.update({("n", n): _value(c) for n, c in self._counts.items()})
            self._base[("n", "_followed")] = _value(self._followed)
            self._saved = dict.fromkeys(_SAVINGS, 0)
            self._unpriced = set()


def _value(counter: itertools.count[int]) -> int:
    # count objects expose their next value only through repr: "count(7)".
    return int(repr(counter)[6:-1])


class _Reporting(Protocol):
    name: str

    def stats(self) -> CacheStats: ...


_caches: weakref.WeakSet[Any] = weakref.WeakSet()


def track(cache: _Reporting) -> None:
    """Count ``cache`` in :func:`stats` and :func:`stats_by_function` while it lives."""
    _caches.add(cache)


def stats_by_function() -> dict[str, CacheStats]:
    """A snapshot of every live cached function's stats, by name (same names are combined)."""
    groups: dict[str, list[CacheStats]] = {}
    for cache in list(_caches):
        groups.setdefault(cache.name, []).append(cache.stats())
    return {name: CacheStats.combine(parts) for name, parts in sorted(groups.items())}


def stats() -> CacheStats:
    """Counts summed over every cached function in this process."""
    return CacheStats.combine(cache.stats() for cache in list(_caches))
