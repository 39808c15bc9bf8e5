"""The Prometheus text ``memollm serve`` answers ``/metrics`` with, with or without prometheus-client."""

from __future__ import annotations

from typing import Any

from ..statistics import stats as global_stats

__all__ = ["metrics_text", "own_registry"]


def metrics_text(registry: Any = None) -> str:
    """Every cached function's metrics in the Prometheus text format.

    With a prometheus-client ``registry`` (the ``prometheus`` extra): :mod:`memollm.metrics.prometheus`
    on it, histograms included. Without one, the totals over all functions, written by hand
    in the same format.
    """
    if registry is None:
        return _plain_metrics()
    from . import prometheus

    return prometheus.exposition(registry).decode()


def own_registry() -> Any:
    """A registry of its own with memollm's metrics installed, or None without the extra."""
    try:
        from prometheus_client import CollectorRegistry

        from . import prometheus
    except ImportError:
        return None
    return prometheus.install(CollectorRegistry())


def _plain_metrics() -> str:
    stats = global_stats()
    lines = [
        "# HELP memollm_hits_total Cache hits, by tier.",
        "# TYPE memollm_hits_total counter",
        *(f'memollm_hits_total{{tier="{tier}"}} {n}' for tier, n in sorted(stats.hits.items())),
    ]
    for name in ("misses", "stores", "bypasses", "errors", "corrupt", "stale", "coalesced", "retries"):
        lines += [
            f"# HELP memollm_{name}_total Cache {name}.",
            f"# TYPE memollm_{name}_total counter",
            f"memollm_{name}_total {getattr(stats, name)}",
        ]
    lines += ["# HELP memollm_hit_rate Hits over lookups.", "# TYPE memollm_hit_rate gauge",
              f"memollm_hit_rate {stats.hit_rate:.6f}"]  # fmt: skip
    return "\n".join(lines) + "\n"
