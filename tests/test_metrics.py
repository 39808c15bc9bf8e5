"""Prometheus metrics, parsed back with prometheus-client's own parser."""

from __future__ import annotations

from typing import Any

import pytest

import memollm
from memollm.asgi.proxy import metrics_text
from memollm.backends import MemoryBackend

prometheus_client = pytest.importorskip("prometheus_client", reason="the prometheus extra is not installed")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from memollm.metrics import prometheus  # noqa: E402


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_counters_gauge_and_histograms(memory: MemoryBackend) -> None:
    """Counters gauge and histograms."""
    registry = prometheus_client.CollectorRegistry()
    metrics = prometheus.install(registry)
    try:

        @memollm.cached_llm(name="metrics.ask")
        def ask(prompt: str) -> dict[str, Any]:
            return {
                "model": "gpt-4o",
                "choices": [],
                "usage": {"prompt_tokens": 1000, "completion_tokens": 100},
            }

        for _ in range(4):
            ask("q")
        ask("other")
        got = samples(prometheus.exposition(registry).decode())
    finally:
        metrics.uninstall()
    fn = (("function", "metrics.ask"),)
    assert got[("memollm_hits_total", (("function", "metrics.ask"), ("tier", "memory")))] == 3
    assert got[("memollm_misses_total", fn)] == 2
    assert got[("memollm_lookups_total", fn)] == 5
    assert got[("memollm_hit_rate", fn)] == pytest.approx(0.6)
    assert got[("memollm_tokens_saved_total", (("function", "metrics.ask"), ("kind", "input")))] == 3000
    assert got[("memollm_cost_saved_dollars_total", fn)] == pytest.approx(3 * (1000 * 2.5 + 100 * 10) / 1e6)
    assert got[("memollm_lookup_seconds_count", (("function", "metrics.ask"), ("outcome", "hit")))] == 3
    assert got[("memollm_lookup_seconds_count", (("function", "metrics.ask"), ("outcome", "miss")))] == 2


def test_install_is_idempotent_and_uninstall_removes(memory: MemoryBackend) -> None:
    """Install is idempotent and uninstall removes."""
    registry = prometheus_client.CollectorRegistry()
    first = prometheus.install(registry)
    assert prometheus.install(registry) is first
    first.uninstall()
    assert "memollm_" not in prometheus_client.generate_latest(registry).decode()
    again = prometheus.install(registry)
    assert again is not first
    again.uninstall()


def test_semantic_similarity_histogram(memory: MemoryBackend) -> None:
    """Semantic similarity histogram."""
    import numpy as np

    def embed(texts: list[str]) -> Any:
        vocab = ["create", "list", "python"]
        out = np.array([[t.count(w) for w in vocab] for t in texts], dtype=np.float32) + 1e-3
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    registry = prometheus_client.CollectorRegistry()
    metrics = prometheus.install(registry)
    try:

        @memollm.cached_llm(name="metrics.sem", semantic=0.9, embedder=embed, verify=False)
        def ask(prompt: str) -> str:
            return "[]"

        ask("create a list in python")
        ask("python: list, create")
        got = samples(prometheus.exposition(registry).decode())
    finally:
        metrics.uninstall()
    assert got[("memollm_semantic_similarity_count", (("function", "metrics.sem"),))] == 1
    assert got[("memollm_hits_total", (("function", "metrics.sem"), ("tier", "semantic")))] == 1


def test_plain_text_without_prometheus_client_parses_too(memory: MemoryBackend) -> None:
    """Plain text without prometheus client parses too."""

    @memollm.cached_llm
    def ask(prompt: str) -> str:
        return "a"

    ask("q")
    ask("q")
    got = samples(metrics_text(None))  # no registry: the plain totals
    assert got[("memollm_hits_total", (("tier", "memory"),))] >= 1


def test_queued_observations_are_folded_in_without_a_scrape(memory: MemoryBackend) -> None:
    """Queued observations are folded in without a scrape."""
    registry = prometheus_client.CollectorRegistry()
    metrics = prometheus.install(registry)
    try:

        @memollm.cached_llm(name="metrics.many")
        def ask(prompt: str) -> str:
            return "a"

        for _ in range(5000):
            ask("q")
        # Past 4,096 queued lookups the hook folds them in itself: memory stays bounded.
        assert metrics.pending < 1000
        counted = registry.get_sample_value(
            "memollm_lookup_seconds_count", {"function": "metrics.many", "outcome": "hit"}
        )
        assert counted == 4999
    finally:
        metrics.uninstall()


def test_histogram_buckets_are_cumulative_and_inclusive() -> None:
    """A value equal to a bound counts in that bound's bucket; every bucket counts all below it."""
    registry = prometheus_client.CollectorRegistry()
    metrics = prometheus.install(registry)
    try:
        for latency in (0.00001, 0.00002, 0.0007, 0.0007, 9.0):
            metrics.observe(memollm.CacheEvent("metrics.b", "hit", "memory", latency, 0.0))
        metrics.observe(memollm.CacheEvent("metrics.b", "semantic-hit", "semantic", 0.001, 0.0, 0.93))
        got = samples(prometheus.exposition(registry).decode())
    finally:
        metrics.uninstall()

    def bucket(le: str) -> float:
        labels = (("function", "metrics.b"), ("le", le), ("outcome", "hit"))
        return got[("memollm_lookup_seconds_bucket", labels)]

    assert bucket("1e-05") == 1
    assert bucket("5e-05") == 2
    assert bucket("0.0005") == 2
    assert bucket("0.001") == 4
    assert bucket("5.0") == 4
    assert bucket("+Inf") == 5
    key = (("function", "metrics.b"), ("outcome", "hit"))
    assert got[("memollm_lookup_seconds_count", key)] == 5
    assert got[("memollm_lookup_seconds_sum", key)] == pytest.approx(9.00143)
    similar = (("function", "metrics.b"), ("le", "0.94"))
    assert got[("memollm_semantic_similarity_bucket", similar)] == 1
    assert got[("memollm_semantic_similarity_bucket", (("function", "metrics.b"), ("le", "0.92")))] == 0


def test_a_second_registry_gets_its_own_histograms() -> None:
    """Installing on two registries does not clash on names, and uninstall frees the names."""
    one, two = prometheus_client.CollectorRegistry(), prometheus_client.CollectorRegistry()
    first, second = prometheus.install(one), prometheus.install(two)
    try:
        assert prometheus.install(one) is first
        with pytest.raises(ValueError, match="Duplicated"):
            one.register(first.latency)
    finally:
        first.uninstall()
        second.uninstall()
    prometheus.install(one).uninstall()
