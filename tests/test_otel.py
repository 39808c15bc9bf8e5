"""OpenTelemetry spans for cached calls, read back from the SDK's in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import memollm
from memollm.backends import MemoryBackend

pytest.importorskip("opentelemetry.sdk", reason="the otel extra (and the SDK) is not installed")

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from memollm.metrics import otel


@pytest.fixture
def spans() -> Iterator[tuple[InMemorySpanExporter, TracerProvider]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    recorder = otel.install(provider)
    yield exporter, provider
    recorder.uninstall()


def completion(text: str) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "choices": [{"message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 300},
    }


def test_a_miss_then_a_hit_are_two_spans_with_what_each_spent_and_saved(
    spans: tuple[InMemorySpanExporter, TracerProvider], memory: MemoryBackend
) -> None:
    """The miss carries the tokens spent (GenAI conventions), the hit what it saved and from where."""
    exporter, _ = spans

    @memollm.cached_llm(name="ask")
    def ask(prompt: str) -> dict[str, Any]:
        return completion("answer to " + prompt)

    ask("q")
    ask("q")
    miss, hit = exporter.get_finished_spans()
    assert miss.name == hit.name == "memollm.cache ask"
    assert miss.attributes["memollm.cache.outcome"] == "miss"
    assert miss.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert (miss.attributes["gen_ai.usage.input_tokens"], miss.attributes["gen_ai.usage.output_tokens"]) == (
        1200,
        300,
    )
    assert "memollm.cache.cost_saved_usd" not in miss.attributes
    assert hit.attributes["memollm.cache.outcome"] == "hit"
    assert hit.attributes["memollm.cache.tier"] == "memory"
    assert hit.attributes["memollm.cache.input_tokens_saved"] == 1200
    assert hit.attributes["memollm.cache.output_tokens_saved"] == 300
    assert hit.attributes["memollm.cache.cost_saved_usd"] == pytest.approx((1200 * 0.15 + 300 * 0.60) / 1e6)
    assert "gen_ai.usage.input_tokens" not in hit.attributes  # a hit spent nothing
    for span in (miss, hit):
        assert span.end_time >= span.start_time
        assert not any("answer to" in str(value) for value in span.attributes.values())  # no content


def test_spans_are_children_of_the_callers_span(spans: tuple[InMemorySpanExporter, TracerProvider]) -> None:
    """A cached call inside the application's span is traced within it, beside its model calls."""
    exporter, provider = spans

    @memollm.cached_llm(name="inner")
    def ask(prompt: str) -> str:
        return prompt

    with provider.get_tracer("app").start_as_current_span("request") as outer:
        ask("q")
        ask("q")
    cached = [s for s in exporter.get_finished_spans() if s.name == "memollm.cache inner"]
    assert len(cached) == 2
    assert all(s.parent is not None and s.parent.span_id == outer.get_span_context().span_id for s in cached)
    assert all(s.context.trace_id == outer.get_span_context().trace_id for s in cached)


async def test_async_calls_and_failures(spans: tuple[InMemorySpanExporter, TracerProvider]) -> None:
    """Async calls are spans too; a call that raised has an error status."""
    exporter, _ = spans

    @memollm.cached_llm(name="flaky")
    async def ask(prompt: str) -> str:
        if prompt == "boom":
            raise ConnectionError("down")
        return prompt

    await ask("q")
    with pytest.raises(ConnectionError):
        await ask("boom")
    ok, failed = exporter.get_finished_spans()
    assert ok.attributes["memollm.cache.outcome"] == "miss"
    assert ok.status.status_code != StatusCode.ERROR
    assert failed.attributes["memollm.cache.outcome"] == "error"
    assert failed.status.status_code == StatusCode.ERROR


def test_uninstall_stops_the_spans(memory: MemoryBackend) -> None:
    """After uninstall() no span is recorded, and cached calls go on as before."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    recorder = otel.install(provider)

    @memollm.cached_llm(name="ask")
    def ask(prompt: str) -> str:
        return prompt

    ask("q")
    recorder.uninstall()
    assert ask("q") == "q"
    assert len(exporter.get_finished_spans()) == 1
