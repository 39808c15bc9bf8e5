"""OpenTelemetry spans for cached calls: a hit shows up in a trace next to the model calls.

    from memollm.metrics import otel
    otel.install()                     # the global tracer provider, or install(provider)

Each cached call becomes a span named ``memollm.cache <function>`` (kind INTERNAL), a child
of whatever span is current where the call was made, timed from the call to the cache's
answer. Attributes follow the GenAI semantic conventions where they fit: ``gen_ai.request.model``
and, on a miss (tokens spent), ``gen_ai.usage.input_tokens``/``output_tokens``. What the cache
did is under ``memollm.cache.*``: ``outcome``, ``tier``, ``similarity``, ``detail``, and on a hit
what it saved: ``input_tokens_saved``, ``output_tokens_saved``, ``cost_saved_usd``,
``latency_saved_s``. A call that raised has an ERROR status. Prompts and answers are never
put on spans. Needs the ``otel`` extra (``opentelemetry-api``).
"""

from __future__ import annotations

from typing import Any

from .. import events
from ..events import CacheEvent

__all__ = ["SpanRecorder", "install"]

_HITS = frozenset({"hit", "semantic-hit", "stale"})
_SCOPE = "memollm"


class SpanRecorder:
    """The event hook that turns each :class:`~memollm.CacheEvent` into a finished span."""

    def __init__(self, tracer: Any) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self.tracer = tracer
        self._kind = SpanKind.INTERNAL
        self._error = Status(StatusCode.ERROR)
        self._unsubscribe = events.subscribe(self)

    def __call__(self, event: CacheEvent) -> None:
        """Record one cached call as a span (called by memollm for every event)."""
        start = int(event.time * 1e9)
        span = self.tracer.start_span(
            f"memollm.cache {event.function}", kind=self._kind, start_time=start, attributes=attributes(event)
        )
        if event.outcome == "error" and event.detail == "upstream":
            span.set_status(self._error)
        span.end(end_time=start + int(event.latency * 1e9))

    def uninstall(self) -> None:
        """Stop recording spans."""
        self._unsubscribe()


def attributes(event: CacheEvent) -> dict[str, Any]:
    """A span's attributes for one event (only the values that are known)."""
    pairs: list[tuple[str, Any]] = [
        ("memollm.cache.function", event.function),
        ("memollm.cache.outcome", event.outcome),
        ("memollm.cache.tier", event.tier),
        ("memollm.cache.similarity", event.similarity),
        ("memollm.cache.detail", event.detail),
        ("gen_ai.request.model", event.model),
    ]
    # A hit spent no tokens: what it saved has names of its own. A miss spent them. For
    # bypasses and errors the tokens are not the cache's story.
    if event.outcome in _HITS:
        pairs += [
            ("memollm.cache.input_tokens_saved", event.input_tokens),
            ("memollm.cache.output_tokens_saved", event.output_tokens),
            ("memollm.cache.cost_saved_usd", event.cost),
            ("memollm.cache.latency_saved_s", event.call_latency),
        ]
    elif event.outcome == "miss":
        pairs += [
            ("gen_ai.usage.input_tokens", event.input_tokens),
            ("gen_ai.usage.output_tokens", event.output_tokens),
        ]
    if (
        event.estimated
        and event.input_tokens is not None
        and (event.outcome in _HITS or event.outcome == "miss")
    ):
        pairs.append(("memollm.cache.tokens_estimated", True))
    return {name: value for name, value in pairs if value is not None}


def install(tracer_provider: Any = None) -> SpanRecorder:
    """Record a span for every cached call; ``uninstall()`` on the result stops it.

    ``tracer_provider``: where spans go (default: OpenTelemetry's global provider).
    """
    try:
        from opentelemetry import trace
    except ImportError as exc:
        raise ImportError(
            "memollm.metrics.otel needs the otel extra: pip install -e '.[otel]' in a checkout of "
            "memollm (pip install 'memollm-cache[otel]' once released)"
        ) from exc
    from .. import __version__

    tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider=tracer_provider)
    return SpanRecorder(tracer)
