"""The less travelled paths of a call: failures on the side, races, empty streams, strict mode."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import memollm
from memollm import CacheEvent, CodecError, LLMCache
from memollm.backends import MemoryBackend
from memollm.backends.redis import RedisBackend
from memollm.core.aio import AsyncFace
from memollm.core.sync import SyncFace
from memollm.testing import FakeClock, FakeLLM

from ..helpers import eventually
from ..servers import RedisServer


def test_a_flat_hit_inside_lookup_is_recorded() -> None:
    """The memoised hit path still tells lookup() what happened."""

    @memollm.cached_llm
    def ask(prompt: str) -> str:
        return "a"

    ask("q")
    ask("q")  # memoised now
    with memollm.lookup() as seen:
        assert ask("q") == "a"
    assert (seen.outcome, seen.tier) == ("hit", "memory")


@pytest.mark.parametrize("face", ["sync", "async"])
async def test_a_leader_prefers_an_answer_stored_just_before_it(face: str) -> None:
    """A caller that becomes leader after another stored the answer takes it instead of calling."""
    calls: list[str] = []

    def ask(prompt: str) -> str:
        calls.append(prompt)
        return "fresh"

    cache = LLMCache(ask)
    cache.store("stored", "q")
    plan = cache.state.current()
    key = cache.key_for("q")
    if face == "sync":
        value, _ = SyncFace(cache.state).fetch(plan, key, True, (ask, ("q",), {}))
    else:
        value, _ = await AsyncFace(cache.state).fetch(plan, key, True, (ask, ("q",), {}))
    assert (value, calls) == ("stored", [])
    assert cache.stats().coalesced == 1


@pytest.mark.parametrize("face", ["sync", "async"])
async def test_a_dead_lock_tier_means_calling_alone(fresh_redis: RedisServer, face: str) -> None:
    """With distributed=True and Redis gone, calls go straight to the model, counted as tier errors."""
    memollm.register_tier("redis", RedisBackend(fresh_redis.url))
    fresh_redis.kill()
    llm = FakeLLM()

    def sync_ask(prompt: str) -> str:
        return llm(prompt)

    async def async_ask(prompt: str) -> str:
        return llm(prompt)

    fn = memollm.cached_llm(tiers=["memory", "redis"], distributed=True)(
        sync_ask if face == "sync" else async_ask
    )
    result = fn("q") if face == "sync" else await fn("q")
    assert result == llm("q")
    assert fn.cache.stats().errors >= 1


def test_empty_streams_are_cached_as_empty() -> None:
    """A generator that yields nothing is stored and replayed as nothing."""
    calls = [0]

    @memollm.cached_llm
    def nothing(prompt: str) -> Iterator[str]:
        calls[0] += 1
        yield from ()

    assert list(nothing("q")) == list(nothing("q")) == []
    assert calls[0] == 1


async def test_empty_async_streams_are_cached_as_empty() -> None:
    """An async generator that yields nothing likewise."""
    calls = [0]

    @memollm.cached_llm
    async def nothing(prompt: str) -> AsyncIterator[str]:
        calls[0] += 1
        for part in ():
            yield part

    assert [c async for c in nothing("q")] == [c async for c in nothing("q")] == []
    assert calls[0] == 1


def test_a_follower_of_an_unstored_result_gets_the_leaders_own(memory: MemoryBackend) -> None:
    """When cache_if refuses the leader's result, followers still share it (not stored, not decoded)."""
    inside, release = threading.Event(), threading.Event()
    results: list[object] = []

    @memollm.cached_llm(cache_if=lambda result: False)
    def ask(prompt: str) -> list[str]:
        inside.set()
        release.wait(5)
        return ["shared"]

    leader = threading.Thread(target=lambda: results.append(ask("q")))
    leader.start()
    inside.wait(5)
    follower = threading.Thread(target=lambda: results.append(ask("q")))
    follower.start()
    assert eventually(lambda: ask.cache.state.flights.waiting(ask.cache.key_for("q")) == 1)
    release.set()
    leader.join(5)
    follower.join(5)
    assert results == [["shared"], ["shared"]]
    assert results[0] is results[1]
    assert ask.cache.stats().coalesced == 1


@pytest.mark.parametrize("face", ["sync", "async"])
async def test_a_failed_background_refresh_keeps_serving(clock: FakeClock, face: str) -> None:
    """A refresh whose call fails is logged; the entry is still served until it expires."""
    memollm.register_tier("memory", MemoryBackend(clock=clock))
    calls = [0]

    def ask(prompt: str) -> str:
        calls[0] += 1
        if calls[0] > 1:
            raise TimeoutError("the refresh's call fails")
        return "old"

    async def aask(prompt: str) -> str:
        return ask(prompt)

    fn = ask if face == "sync" else aask
    cache = LLMCache(fn, settings={"ttl": 100, "refresh_ahead": 0.2}, clock=clock)
    call = cache.wrap(fn)

    async def once() -> str:
        return call("x") if face == "sync" else await call("x")

    assert await once() == "old"
    clock.advance(90)
    assert await once() == "old"
    if face == "async":
        await asyncio.gather(*cache.state.refreshes.tasks)
    # The failed refresh gave its key back: a later hit may try again.
    assert eventually(lambda: cache.state.refreshes.claim(cache.key_for("x")))
    assert calls[0] == 2
    assert cache.stats().refreshes == 0


@pytest.mark.parametrize("kind", ["async", "generator", "async generator"])
async def test_failing_calls_still_emit_their_event(kind: str) -> None:
    """A call that raises reaches the hooks as an error event, for every kind of function."""
    seen: list[CacheEvent] = []
    stop = memollm.events.subscribe(seen.append)

    async def afail(prompt: str) -> str:
        raise ValueError("no")

    def gfail(prompt: str) -> Iterator[str]:
        yield "part"
        raise ValueError("no")

    async def agfail(prompt: str) -> AsyncIterator[str]:
        yield "part"
        raise ValueError("no")

    async def run() -> None:
        fn = memollm.cached_llm({"async": afail, "generator": gfail, "async generator": agfail}[kind])
        if kind == "async":
            await fn("q")
        elif kind == "generator":
            list(fn("q"))
        else:
            [c async for c in fn("q")]

    try:
        with pytest.raises(ValueError, match="no"):
            await run()
    finally:
        stop()
    assert [(e.outcome, e.detail) for e in seen] == [("error", "upstream")]


def test_strict_raises_what_cannot_be_stored() -> None:
    """strict=True turns a result the codec refuses into the caller's exception."""

    @memollm.cached_llm(strict=True)
    def ask(prompt: str) -> object:
        return object()

    with pytest.raises(CodecError):
        ask("q")


def test_a_return_annotation_defined_after_decoration_is_restorable() -> None:
    """A forward reference that resolves only later still lets its class be cached."""

    @memollm.cached_llm
    def ask(prompt: str) -> Later:  # type: ignore[name-defined]
        return Later(prompt)  # type: ignore[name-defined]

    from dataclasses import dataclass

    @dataclass
    class Later:
        text: str

    globals()["Later"] = Later
    try:
        first = ask("q")
        assert ask("q") == first
        assert ask.cache.stats().hit_count == 1
    finally:
        del globals()["Later"]


def test_clear_and_invalidate_reach_every_tier_and_the_index(memory: MemoryBackend, embedder: Any) -> None:
    """clear()/aclear() and invalidate() drop entries and their prompts' vectors."""
    llm = FakeLLM()

    @memollm.cached_llm(semantic=0.85, embedder=embedder)
    def ask(question: str) -> str:
        return llm(question)

    ask("How do I reverse a string in Python?")
    assert "LLMCache" in repr(ask.cache)
    ask.cache.invalidate("How do I reverse a string in Python?")
    ask("How can I reverse a string in Python?")  # the old prompt's vector is gone: a miss
    assert llm.calls == 2
    assert asyncio.run(ask.cache.aclear()) >= 1
    ask("How can I reverse a string in Python?")
    assert llm.calls == 3


def test_side_failures_of_the_semantic_tier_are_skipped(
    fresh_redis: RedisServer, embedder: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A dead vector log, an embedder that raises, prompts that cannot be keyed: exact caching goes on."""
    caplog.set_level(logging.WARNING, logger="memollm")
    memollm.register_tier("redis", RedisBackend(fresh_redis.url))
    fresh_redis.kill()
    llm = FakeLLM()

    @memollm.cached_llm(tiers=["memory", "redis"], semantic=0.85, embedder=embedder)
    def ask(question: str) -> str:
        return llm(question)

    assert ask("How do I reverse a string in Python?") == ask("How do I reverse a string in Python?")
    assert llm.calls == 1
    assert ask.cache.store_many([("How do I sort a list?", "sorted")]) == 1  # its log append fails too
    assert ask.cache.stats().errors >= 2

    def broken(texts: list[str]) -> Any:
        raise RuntimeError("embedder down")

    @memollm.cached_llm(semantic=0.85, embedder=broken)
    def other(question: str) -> str:
        return llm(question)

    assert other.cache.store_many([("q1", "a1"), ("q2", "a2")]) == 2
    assert other("q1") == "a1"
    assert "embedding failed" in caplog.text

    @memollm.cached_llm(semantic=0.85, embedder=embedder, key=lambda question, client: question)
    def keyed(question: str, client: object) -> str:
        return llm(question)

    @memollm.cached_llm(semantic=0.85, embedder=embedder)
    def promptless(count: int) -> str:
        return llm(str(count))

    before = llm.calls
    assert keyed("How do I sort a list?", object()) == keyed("How do I sort a list?", object())
    assert llm.calls == before + 1  # keyed on the question alone: the second call is a hit
    assert promptless(3) == promptless(3)
    assert llm.calls == before + 2  # no prompt to embed, yet exact caching works
    assert keyed.cache.stats().hits and promptless.cache.stats().hits


def test_a_value_kind_mismatch_is_not_served(memory: MemoryBackend) -> None:
    """An entry of the other kind under a function's key (a stream for a value) is dropped, not served."""

    @memollm.cached_llm
    def ask(prompt: str) -> str:
        return "value"

    import msgpack

    envelope = [1, 1, 1e12, None, {}, ["a", "stream"]]
    memory.set(ask.cache.key_for("q"), msgpack.packb(envelope), None)
    assert ask("q") == "value"
    assert ask.cache.stats().corrupt == 1
