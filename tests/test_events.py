"""Every cached call emits one CacheEvent to the subscribed hooks."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import memollm
from memollm import CacheEvent, LLMCache, events
from memollm.backends import MemoryBackend
from memollm.testing import FakeClock

from .faces import Face
from .helpers import eventually


@pytest.fixture
def seen() -> Iterator[list[CacheEvent]]:
    got: list[CacheEvent] = []
    unsubscribe = events.subscribe(got.append)
    yield got
    unsubscribe()


def completion(text: str, model: str = "gpt-4o-mini") -> dict[str, Any]:
    return {
        "model": model,
        "choices": [{"message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 300},
    }


def test_miss_then_hit(seen: list[CacheEvent], memory: MemoryBackend) -> None:
    """A miss then a hit: each event carries the tokens, price and latencies of the call."""

    @memollm.cached_llm(name="ask")
    def ask(prompt: str) -> dict[str, Any]:
        return completion("answer to " + prompt)

    elapsed = []
    for _ in range(2):
        started = time.perf_counter()
        ask("q")
        elapsed.append(time.perf_counter() - started)
    miss, hit = seen
    assert (miss.function, miss.outcome, miss.tier) == ("ask", "miss", None)
    assert (hit.outcome, hit.tier) == ("hit", "memory")
    for event in (miss, hit):
        assert (event.input_tokens, event.output_tokens, event.estimated) == (1200, 300, False)
        assert event.model == "gpt-4o-mini"
        # gpt-4o-mini: $0.15 in, $0.60 out per MTok
        assert event.cost == pytest.approx((1200 * 0.15 + 300 * 0.60) / 1e6)
        assert event.call_latency is not None and 0 < event.call_latency <= elapsed[0]
    assert 0 < miss.latency <= elapsed[0] and 0 < hit.latency <= elapsed[1]
    assert hit.similarity is None and hit.detail is None


async def test_async_and_bypass(seen: list[CacheEvent], memory: MemoryBackend) -> None:
    """Async calls report miss and hit, and a call under bypass() reports bypass."""

    @memollm.cached_llm(name="aask")
    async def aask(prompt: str) -> str:
        return prompt.upper()

    await aask("q")
    await aask("q")
    with memollm.bypass():
        await aask("q")
    assert [e.outcome for e in seen] == ["miss", "hit", "bypass"]
    assert seen[0].estimated and seen[0].output_tokens == 1  # "Q": one token by the heuristic


def test_upstream_error_and_stale(
    seen: list[CacheEvent], memory: MemoryBackend, clock: FakeClock, face: Face
) -> None:
    """A failed call is an upstream error event; a stale answer served after one is a stale event."""
    fail = False

    def answer(prompt: str) -> str:
        if fail:
            raise ConnectionError("down")
        return "fine"

    call = face.shaped(answer)
    flaky = LLMCache(call, settings={"ttl": 10, "stale_ttl": 100}, name="flaky", clock=clock).wrap(call)

    fail = True
    with pytest.raises(ConnectionError):
        face.call(flaky, "never stored")
    fail = False
    face.call(flaky, "q")
    clock.advance(20)
    fail = True
    assert face.call(flaky, "q") == "fine"
    assert [(e.outcome, e.detail) for e in seen] == [("error", "upstream"), ("miss", None), ("stale", None)]


def test_uncacheable_is_an_error_that_still_calls(seen: list[CacheEvent], memory: MemoryBackend) -> None:
    """Uncacheable is an error that still calls."""

    @memollm.cached_llm(name="odd")
    def odd(thing: object) -> str:
        return "called"

    assert odd(threading.Lock()) == "called"
    assert [(e.outcome, e.detail) for e in seen] == [("error", "uncacheable")]


def test_coalesced_follower_is_a_hit(seen: list[CacheEvent], memory: MemoryBackend) -> None:
    """Coalesced follower is a hit."""
    entered, release = threading.Event(), threading.Event()

    @memollm.cached_llm(name="slow")
    def slow(prompt: str) -> str:
        entered.set()
        release.wait(5)
        return "done"

    leader = threading.Thread(target=slow, args=("q",))
    leader.start()
    entered.wait(5)
    follower = threading.Thread(target=slow, args=("q",))
    follower.start()
    cache: Any = slow.cache  # type: ignore[attr-defined]
    # A follower is observable only through the flight's count.
    assert eventually(lambda: cache.state.flights.waiting(cache.key_for("q")) == 1)
    release.set()
    leader.join(5)
    follower.join(5)
    outcomes = sorted((e.outcome, e.tier or "", e.detail or "") for e in seen)
    assert outcomes == [("hit", "coalesced", "coalesced"), ("miss", "", "")]
    stats = slow.cache.stats()  # type: ignore[attr-defined]
    assert (stats.misses, stats.hits, stats.coalesced) == (1, {"coalesced": 1}, 1)


def test_streams(seen: list[CacheEvent], memory: MemoryBackend) -> None:
    """Streams are cached and replayed, with an event for the miss and for the hit."""

    @memollm.cached_llm(name="gen")
    def gen(prompt: str) -> Iterator[str]:
        yield from ("a", "b", "c")

    assert list(gen("q")) == ["a", "b", "c"]
    assert list(gen("q")) == ["a", "b", "c"]
    assert [(e.outcome, e.tier) for e in seen] == [("miss", None), ("hit", "memory")]
    assert seen[0].output_tokens == 1  # "abc"


async def test_async_streams(seen: list[CacheEvent], memory: MemoryBackend) -> None:
    """Async streams are cached and replayed, with a miss and a hit event."""

    @memollm.cached_llm(name="agen")
    async def agen(prompt: str) -> AsyncIterator[str]:
        for part in ("a", "b"):
            yield part

    assert [c async for c in agen("q")] == ["a", "b"]
    assert [c async for c in agen("q")] == ["a", "b"]
    assert [e.outcome for e in seen] == ["miss", "hit"]


def test_a_raising_hook_never_breaks_the_call(
    memory: MemoryBackend, warnings_log: pytest.LogCaptureFixture
) -> None:
    """A raising hook never breaks the call."""

    def broken(event: CacheEvent) -> None:
        raise RuntimeError("hook bug")

    unsubscribe = events.subscribe(broken)
    try:

        @memollm.cached_llm
        def ask(prompt: str) -> str:
            return "ok"

        assert [ask("q") for _ in range(5)] == ["ok"] * 5
    finally:
        unsubscribe()
    said = [r for r in warnings_log.records if "hook bug" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.WARNING


def test_unsubscribe_stops_delivery(memory: MemoryBackend) -> None:
    """Unsubscribe stops delivery."""
    got: list[CacheEvent] = []
    unsubscribe = events.subscribe(got.append)

    @memollm.cached_llm
    def ask(prompt: str) -> str:
        return "ok"

    ask("q")
    unsubscribe()
    ask("q")
    assert len(got) == 1
    with pytest.raises(TypeError, match="callable"):
        events.subscribe("not a hook")  # type: ignore[arg-type]


def test_semantic_hit_event(seen: list[CacheEvent], memory: MemoryBackend) -> None:
    """Semantic hit event."""

    def embed(texts: list[str]) -> Any:
        import numpy as np

        # Word-count vectors: "list python create" and "python list create" match exactly.
        vocab = ["create", "list", "python", "dict"]
        out = np.array([[t.lower().count(w) for w in vocab] for t in texts], dtype=np.float32) + 1e-3
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    @memollm.cached_llm(name="sem", semantic=0.9, embedder=embed, verify=False)
    def ask(prompt: str) -> str:
        return "use []"

    ask("how do I create a list in python")
    ask("python: create list, how?")
    assert [e.outcome for e in seen] == ["miss", "semantic-hit"]
    assert seen[1].tier == "semantic" and seen[1].similarity is not None and seen[1].similarity > 0.9


def test_a_preloaded_entry_reports_unknown_costs_not_zero(
    seen: list[CacheEvent], memory: MemoryBackend
) -> None:
    """Nothing was paid for a stored answer: its hit says the tokens are unknown (None), not 0."""

    @memollm.cached_llm(name="preloaded")
    def ask(prompt: str) -> str:
        return "fresh"

    ask.cache.store("known", "q")
    assert [ask("q"), ask("q")] == ["known", "known"]  # the second is the memoised flat path
    assert [(e.outcome, e.input_tokens, e.cost, e.call_latency) for e in seen] == [
        ("hit", None, None, None)
    ] * 2


def test_fast_path_hit_events_have_every_field() -> None:
    """hit_event builds its tuple without _make's check: it must still fill each field once."""
    from memollm.statistics import Worth

    for worth in (None, Worth(3, 5, True, "m", 0.25, 0.01)):
        event = events.hit_event("f", "memory", 0.001, worth)
        assert len(event) == len(CacheEvent._fields)
        assert event == CacheEvent._make(event)
        assert (event.outcome, event.tier, event.similarity, event.detail) == ("hit", "memory", None, None)
        assert event.latency == 0.001
        assert abs(event.time - time.time()) < 60
    assert (event.input_tokens, event.output_tokens, event.estimated) == (3, 5, True)
    assert (event.model, event.call_latency, event.cost) == ("m", 0.25, 0.01)


def test_hit_sinks_spare_fast_hits_an_event(caplog: pytest.LogCaptureFixture) -> None:
    """A hook with a sink gets fast-path memory hits as (function, tier, latency); plain hooks get events."""
    sunk: list[tuple[str, str, float]] = []
    full: list[CacheEvent] = []
    own: list[CacheEvent] = []

    def broken(function: str, tier: str, latency: float) -> None:
        raise RuntimeError("sink bug")

    before = (events.hooks, events.hit_hooks, events.hit_sinks)
    stop_own = events.subscribe(own.append, hits=lambda *hit: sunk.append(hit))
    stop_broken = events.subscribe(lambda event: None, hits=broken)
    stop_full = events.subscribe(full.append)
    try:
        with caplog.at_level(logging.WARNING, logger="memollm"):
            events.emit_hit("f", "memory", time.perf_counter(), None)
        assert [(f, t) for f, t, _ in sunk] == [("f", "memory")] and 0 < sunk[0][2] < 1
        assert own == []  # its sink took the hit
        assert [(e.function, e.outcome, e.tier) for e in full] == [("f", "hit", "memory")]
        assert "sink bug" in caplog.text
        events.emit(full[0])  # other events still reach the hook itself
        assert own == [full[0]]
    finally:
        stop_own()
        stop_broken()
        stop_full()
    assert (events.hooks, events.hit_hooks, events.hit_sinks) == before
    with pytest.raises(TypeError, match="must be callable"):
        events.subscribe(own.append, hits="not a sink")  # type: ignore[arg-type]
