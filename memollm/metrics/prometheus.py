"""Prometheus metrics for every cached function (prometheus-client).

``install()`` registers two things with a registry (the global one by default):

* a collector that reads :func:`memollm.stats_by_function` at scrape time: counters of
  hits by tier, misses, errors, bypasses, stale answers, coalesced calls, lookups, tokens
  and money and time saved, and a hit-rate gauge, all labeled by ``function``. It costs
  nothing between scrapes.
* an event hook feeding two histograms: lookup latency by function and outcome, and the
  similarity of semantic hits.

For example, with the default registry (served by ``prometheus_client.start_http_server``
or your framework's exporter)::

    from memollm.metrics import prometheus
    prometheus.install()

``memollm serve`` installs them on its own registry and serves it at ``/metrics``.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterator
from itertools import accumulate
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .. import events
from ..events import CacheEvent
from ..statistics import stats_by_function

__all__ = ["CONTENT_TYPE", "Metrics", "StatsCollector", "exposition", "install"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_FLUSH_AFTER = 256
_LATENCY_BUCKETS = (0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)
_SIMILARITY_BUCKETS = (0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.96, 0.98, 0.99, 1.0)

_COUNTERS = (
    ("misses", "Lookups that found nothing."),
    ("errors", "Tier failures and results that could not be stored."),
    ("bypasses", "Calls that skipped the cache (bypass(), disabled, sampled)."),
    ("stale", "Expired entries served because the call failed."),
    ("coalesced", "Calls that shared another caller's upstream call."),
    ("uncacheable", "Calls whose arguments could not be keyed (called through uncached)."),
    ("retries", "Retried upstream calls."),
    ("stores", "Entries written."),
    ("skipped", "Results not stored: refused by cache_if, or not complete answers."),
    ("incomplete", "Results not stored because they were not complete answers (an error, a cut stream)."),
    (
        "explorations",
        "Model calls made where a similar entry was not yet safe to serve (error-bounded mode).",
    ),
    ("semantic_checks", "Fresh answers compared with cached ones (error-bounded mode)."),
    ("semantic_wrong", "Comparisons that found the cached answer different (error-bounded mode)."),
)


class StatsCollector(Collector):
    """Reads every cached function's stats when Prometheus scrapes.

    ``before`` runs first on every scrape (the histograms' pending observations are
    folded in then: this collector is registered ahead of them).
    """

    def __init__(self, before: Callable[[], None] | None = None) -> None:
        self.before = before

    def collect(self) -> Iterator[Any]:
        """Yield the metric families (called by the registry)."""
        if self.before is not None:
            self.before()
        by_function = stats_by_function()
        hits = CounterMetricFamily("memollm_hits", "Cache hits, by tier.", labels=["function", "tier"])
        lookups = CounterMetricFamily(
            "memollm_lookups", "Calls that looked in the cache.", labels=["function"]
        )
        counters = {
            name: CounterMetricFamily(f"memollm_{name}", text, labels=["function"])
            for name, text in _COUNTERS
        }
        tokens = CounterMetricFamily(
            "memollm_tokens_saved", "Tokens hits did not spend, by kind.", labels=["function", "kind"]
        )
        money = CounterMetricFamily(
            "memollm_cost_saved_dollars",
            "US dollars hits did not spend (priced models only).",
            labels=["function"],
        )
        seconds = CounterMetricFamily(
            "memollm_latency_saved_seconds", "Seconds of upstream calls hits replaced.", labels=["function"]
        )
        rate = GaugeMetricFamily("memollm_hit_rate", "Hits over lookups since start.", labels=["function"])
        error = GaugeMetricFamily(
            "memollm_semantic_error",
            "Estimated share of wrong semantic hits, with its 95% interval (error-bounded mode).",
            labels=["function", "bound"],
        )
        for function, stats in by_function.items():
            for tier, n in sorted(stats.hits.items()):
                hits.add_metric([function, tier], n)
            lookups.add_metric([function], stats.lookups)
            for name, family in counters.items():
                family.add_metric([function], getattr(stats, name))
            tokens.add_metric([function, "input"], stats.input_tokens_saved)
            tokens.add_metric([function, "output"], stats.output_tokens_saved)
            money.add_metric([function], stats.cost_saved)
            seconds.add_metric([function], stats.latency_saved)
            rate.add_metric([function], stats.hit_rate)
            interval = stats.semantic_error_interval
            if stats.semantic_error is not None and interval is not None:
                error.add_metric([function, "estimate"], stats.semantic_error)
                error.add_metric([function, "low"], interval[0])
                error.add_metric([function, "high"], interval[1])
        yield from (hits, lookups, *counters.values(), tokens, money, seconds, rate, error)


class _Histograms(Collector):
    """Histograms kept as plain bucket counts, filled from queued events in batches.

    prometheus-client's own ``Histogram.observe`` takes a lock and walks the buckets in
    Python; folding a batch with ``bisect`` under one lock costs a fraction of that.
    """

    def __init__(
        self, name: str, text: str, labels: list[str], bounds: tuple[float, ...], lock: threading.Lock
    ) -> None:
        self.name, self.text, self.labels, self.bounds, self.lock = name, text, labels, bounds, lock
        self._les = [*(str(floatToGoString(b)) for b in bounds), "+Inf"]  # type: ignore[no-untyped-call]
        self.slots: dict[tuple[str, ...], list[float]] = {}  # per label values: counts..., sum

    def add(self, slot: tuple[str, ...], value: float) -> None:
        """Count one observation (the caller holds the flushing lock)."""
        counts = self.slots.get(slot)
        if counts is None:
            counts = self.slots[slot] = [0] * (len(self.bounds) + 2)
        counts[bisect_left(self.bounds, value)] += 1
        counts[-1] += value

    def collect(self) -> Iterator[Any]:
        """Yield the histogram family (called by the registry)."""
        family = HistogramMetricFamily(self.name, self.text, labels=self.labels)
        with self.lock:  # a consistent copy: a flush may be folding on another thread
            slots = [(slot, list(counts)) for slot, counts in self.slots.items()]
        for slot, counts in slots:
            cumulative = list(accumulate(counts[:-1]))
            family.add_metric(list(slot), list(zip(self._les, cumulative, strict=True)), counts[-1])
        yield family

    def describe(self) -> Iterator[Any]:
        """The family without samples (the registry checks names with it at registration)."""
        yield HistogramMetricFamily(self.name, self.text, labels=self.labels)


class Metrics:
    """The metrics installed on one registry; :meth:`uninstall` removes them."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        # Events wait here (deque.append is atomic and cheap) and reach the histograms when
        # Prometheus scrapes, or every _FLUSH_AFTER events: a hit does not take a lock.
        # The stats collector runs the flush before anything is read.
        self._pending: deque[CacheEvent] = deque()
        self._hits: deque[tuple[str, float]] = deque()  # the ASGI fast path's memory hits
        self._flushing = threading.Lock()
        self.collector = StatsCollector(before=self.flush)
        self.latency = _Histograms(
            "memollm_lookup_seconds",
            "Seconds from a call to the cache's answer (the lookup alone on a miss).",
            ["function", "outcome"],
            _LATENCY_BUCKETS,
            self._flushing,
        )
        self.similarity = _Histograms(
            "memollm_semantic_similarity",
            "Cosine similarity of served semantic hits.",
            ["function"],
            _SIMILARITY_BUCKETS,
            self._flushing,
        )
        for collector in (self.collector, self.latency, self.similarity):
            registry.register(collector)
        self._unsubscribe = events.subscribe(self.observe, hits=self.observe_hit)

    @property
    def pending(self) -> int:
        """Lookups queued for the histograms (folded in at the next scrape, or past a bound)."""
        return len(self._pending) + len(self._hits)

    def observe(self, event: CacheEvent) -> None:
        """The event hook: queue one lookup for the histograms."""
        self._pending.append(event)
        if len(self._pending) > _FLUSH_AFTER:
            self.flush()

    def observe_hit(self, function: str, tier: str, latency: float) -> None:
        """The fast path's hook: queue one memory hit, without an event built for it."""
        self._hits.append((function, latency))
        if len(self._hits) > _FLUSH_AFTER:
            self.flush()

    def flush(self) -> None:
        """Move queued lookups into the histograms."""
        with self._flushing:
            latency, similarity = self.latency.add, self.similarity.add
            take = self._pending.popleft
            while self._pending:
                event = take()
                latency((event.function, event.outcome), event.latency)
                if event.similarity is not None:
                    similarity((event.function,), event.similarity)
            take_hit = self._hits.popleft
            while self._hits:
                function, seconds = take_hit()
                latency((function, "hit"), seconds)

    def uninstall(self) -> None:
        """Unregister the collectors and stop observing events."""
        self._unsubscribe()
        for collector in (self.collector, self.latency, self.similarity):
            self.registry.unregister(collector)
        with _lock:
            _installed.pop(id(self.registry), None)


_lock = threading.Lock()
_installed: dict[int, Metrics] = {}


def install(registry: CollectorRegistry | None = None) -> Metrics:
    """Register memollm's metrics with ``registry`` (default: prometheus-client's global one).

    Idempotent: installing twice on one registry returns the first installation.
    """
    target = REGISTRY if registry is None else registry
    with _lock:
        found = _installed.get(id(target))
        if found is None:
            found = _installed[id(target)] = Metrics(target)
        return found


def exposition(registry: CollectorRegistry | None = None) -> bytes:
    """The registry's metrics in the Prometheus text format (installing memollm's first)."""
    target = REGISTRY if registry is None else registry
    install(target)
    return bytes(generate_latest(target))
