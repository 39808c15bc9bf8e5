"""Counters for one cached function, and their frozen snapshots."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["CacheStats", "StatsRecorder"]


@dataclass(frozen=True, slots=True)
class CacheStats:
    """A snapshot of what a cache did.

    ``hits`` counts hits per tier name; ``errors`` counts tier failures and
    results that could not be encoded; ``corrupt`` counts stored entries that
    failed to decode (they are deleted); ``uncacheable`` counts calls whose
    arguments could not be keyed; ``skipped`` counts results ``cache_if`` refused;
    ``retries`` counts retried upstream calls; ``stale`` counts expired entries served
    because the call failed; ``coalesced`` counts calls that shared another's upstream
    call; ``refreshes`` counts background refreshes; ``shadow_hits`` counts semantic hits
    shadow mode would have served, and ``shadow_mismatches`` those whose fresh answer
    differed from the one that would have been served.
    """

    hits: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    misses: int = 0
    stores: int = 0
    bypasses: int = 0
    errors: int = 0
    corrupt: int = 0
    uncacheable: int = 0
    skipped: int = 0
    retries: int = 0
    stale: int = 0
    coalesced: int = 0
    refreshes: int = 0
    shadow_hits: int = 0
    shadow_mismatches: int = 0

    @property
    def hit_count(self) -> int:
        """Hits over all tiers."""
        return sum(self.hits.values())

    @property
    def lookups(self) -> int:
        """Calls that looked in the cache (hits plus misses)."""
        return self.hit_count + self.misses

    @property
    def hit_rate(self) -> float:
        """Hits divided by lookups (0.0 before the first lookup)."""
        lookups = self.lookups
        return self.hit_count / lookups if lookups else 0.0

    @classmethod
    def combine(cls, parts: Iterable[CacheStats]) -> CacheStats:
        """Add several snapshots together."""
        hits: dict[str, int] = {}
        totals = dict.fromkeys(_COUNTERS, 0)
        for part in parts:
            for tier, n in part.hits.items():
                hits[tier] = hits.get(tier, 0) + n
            for name in _COUNTERS:
                totals[name] += getattr(part, name)
        return cls(hits=MappingProxyType(hits), **totals)


_COUNTERS = (
    "misses", "stores", "bypasses", "errors", "corrupt", "uncacheable", "skipped",
    "retries", "stale", "coalesced", "refreshes", "shadow_hits", "shadow_mismatches",
)  # fmt: skip


class StatsRecorder:
    """Counters behind :class:`CacheStats`.

    Each counter is an ``itertools.count``: ``next()`` on it is atomic under the
    GIL, so the hit path counts without taking a lock.
    """

    __slots__ = ("_base", "_counts", "_hits", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hits: dict[str, itertools.count[int]] = {}
        self._counts = {name: itertools.count() for name in _COUNTERS}
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

    def snapshot(self) -> CacheStats:
        """Return the current counts."""
        with self._lock:
            base = self._base
            hits = {t: _value(c) - base.get(("hit", t), 0) for t, c in self._hits.items()}
            counts = {n: _value(c) - base.get(("n", n), 0) for n, c in self._counts.items()}
        return CacheStats(hits=MappingProxyType({t: n for t, n in hits.items() if n}), **counts)

    def reset(self) -> None:
        """Set every counter back to zero."""
        with self._lock:
            self._base = {("hit", t): _value(c) for t, c in self._hits.items()}
            self._base.update({("n", n): _value(c) for n, c in self._counts.items()})


def _value(counter: itertools.count[int]) -> int:
    # count objects expose their next value only through repr: "count(7)".
    return int(repr(counter)[6:-1])
