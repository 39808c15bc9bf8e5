"""The async face: every path awaits its tiers and never runs a blocking tier call on the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import memollm
from memollm import AdaptiveTTL, LLMCache, RetryPolicy
from memollm.backends.redis import RedisBackend
from memollm.backends.sqlite import SQLiteBackend
from memollm.testing import FakeClock, FakeLLM

_SYNC = ("get", "set", "delete", "clear", "lock", "renew", "unlock", "vlog_append", "vlog_since")
_ASYNC = ("aget", "aset", "adelete", "aclear", "alock", "arenew", "aunlock")


class LoopGuard:
    """A real backend whose blocking (sync) methods record any call made on a running loop's thread."""

    def __init__(self, inner: Any, offences: list[str]) -> None:
        self.inner, self.offences, self.name = inner, offences, inner.name
        self.calls: list[str] = []
        for method in _SYNC:
            if hasattr(inner, method):
                setattr(self, method, self._checked(method))
        for method in _ASYNC:
            if hasattr(inner, method):
                setattr(self, method, self._counted(method))

    def _checked(self, method: str) -> Any:
        real = getattr(self.inner, method)

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                pass  # a worker thread: blocking is fine here
            else:
                self.offences.append(f"{self.name}.{method} on thread {threading.current_thread().name}")
            return real(*args, **kwargs)

        return call

    def _counted(self, method: str) -> Any:
        real = getattr(self.inner, method)

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(method)
            return await real(*args, **kwargs)

        return call


@pytest.fixture
def offences() -> Iterator[list[str]]:
    found: list[str] = []
    yield found
    assert found == [], f"blocking tier calls on the event loop: {sorted(set(found))}"


@pytest.fixture
def guarded(redis_url: str, tmp_path: Path, offences: list[str]) -> Iterator[dict[str, LoopGuard]]:
    """Real Redis and SQLite tiers, registered as "redis" and "sqlite", that catch blocking calls."""
    redis_tier = LoopGuard(RedisBackend(redis_url), offences)
    sqlite_tier = LoopGuard(SQLiteBackend(tmp_path / "aio.db"), offences)
    memollm.register_tier("redis", redis_tier)  # type: ignore[arg-type]
    memollm.register_tier("sqlite", sqlite_tier)  # type: ignore[arg-type]
    yield {"redis": redis_tier, "sqlite": sqlite_tier}
    sqlite_tier.inner.close()


def async_llm(llm: FakeLLM) -> Any:
    async def ask(prompt: str) -> str:
        return llm(prompt)

    return ask


@pytest.mark.parametrize(
    "tiers", [["redis"], ["sqlite"], ["memory", "redis", "sqlite"], ["memory", "sqlite"]]
)
async def test_hits_and_misses_in_every_tier(guarded: dict[str, LoopGuard], tiers: list[str]) -> None:
    """A miss stores through every tier's async face; a hit (promoted when lower) reads through it."""
    llm = FakeLLM()
    ask = memollm.cached_llm(tiers=tiers)(async_llm(llm))
    first = await ask("q")
    memollm.registry.get_tier("memory").clear()  # a later hit comes from the lower tiers
    assert await ask("q") == first
    assert llm.calls == 1
    lower = [t for t in tiers if t != "memory"]
    assert all("aset" in guarded[t].calls and "aget" in guarded[t].calls for t in lower)
    assert sum(ask.cache.stats().hits.values()) == 1


async def test_semantic_hit_and_miss(guarded: dict[str, LoopGuard], embedder: Any) -> None:
    """The semantic step (embedding, its own reads, the vector log) runs off the loop."""
    llm = FakeLLM()
    ask = memollm.cached_llm(tiers=["redis", "sqlite"], semantic=0.85, embedder=embedder)(async_llm(llm))
    await ask("How do I reverse a string in Python?")  # a semantic miss, then indexed
    await ask("What's the best way to reverse a Python string?")  # a semantic hit
    assert llm.calls == 1
    assert ask.cache.stats().hits == {"semantic": 1}


async def test_adaptive_ttl_rewrites_through_the_async_faces(
    guarded: dict[str, LoopGuard], clock: FakeClock
) -> None:
    """A hot entry near expiry is rewritten in every tier, awaited."""
    llm = FakeLLM()
    fn = async_llm(llm)
    ttl = AdaptiveTTL(base=10, hot=100, hot_after=1)
    ask = LLMCache(fn, settings={"tiers": ["redis", "sqlite"], "ttl": ttl}, clock=clock).wrap(fn)
    await ask("q")
    clock.advance(8)  # near expiry
    await ask("q")  # hot: rewritten with a later expiry
    clock.advance(8)  # past the base TTL, within the new one
    await ask("q")
    assert llm.calls == 1


async def test_stale_if_error(guarded: dict[str, LoopGuard], clock: FakeClock) -> None:
    """An expired entry read through the async faces is served when the call fails."""
    fail = [False]

    async def ask(prompt: str) -> str:
        if fail[0]:
            raise TimeoutError("upstream down")
        return "answer"

    settings = {"tiers": ["redis"], "ttl": 10, "stale_ttl": 100, "retry": RetryPolicy(attempts=1)}
    fn = LLMCache(ask, settings=settings, clock=clock).wrap(ask)
    await fn("q")
    clock.advance(20)
    fail[0] = True
    with memollm.lookup() as seen:
        assert await fn("q") == "answer"
    assert seen.stale


async def test_streams_record_and_replay(guarded: dict[str, LoopGuard]) -> None:
    """An async generator's chunks are stored and replayed through the async faces, shared or not."""
    calls = [0]

    async def stream(prompt: str) -> AsyncIterator[str]:
        calls[0] += 1
        for part in ("a", "b", "c"):
            yield part

    for single_flight in (True, False):
        fn = memollm.cached_llm(tiers=["redis", "sqlite"], single_flight=single_flight)(stream)
        await fn.cache.aclear()
        assert [c async for c in fn("q")] == ["a", "b", "c"]
        assert [c async for c in fn("q")] == ["a", "b", "c"]
    assert calls[0] == 2


async def test_a_distributed_lock_is_awaited(guarded: dict[str, LoopGuard]) -> None:
    """A second holder of the same call waits for the first through the lock's async face."""
    llm = FakeLLM()
    started, release = asyncio.Event(), asyncio.Event()

    async def ask(prompt: str) -> str:
        started.set()
        await release.wait()
        return llm(prompt)

    settings = {"tiers": ["redis"], "distributed": True}
    # Two caches of one function: no in-process flight between them, only the Redis lock.
    first, second = LLMCache(ask, settings=settings), LLMCache(ask, settings=settings)
    leader = asyncio.create_task(first.wrap(ask)("q"))
    await started.wait()
    follower = asyncio.create_task(second.wrap(ask)("q"))
    while guarded["redis"].calls.count("alock") < 2:
        await asyncio.sleep(0.01)  # until the follower has tried the lock and found it held
    release.set()
    assert await leader == await follower
    assert llm.calls == 1
    assert second.stats().coalesced == 1


async def test_refresh_ahead_in_a_task(guarded: dict[str, LoopGuard], clock: FakeClock) -> None:
    """A hit near expiry is refreshed by a background task that stores through the async faces."""
    llm = FakeLLM()
    fn = async_llm(llm)
    cache = LLMCache(fn, settings={"tiers": ["redis"], "ttl": 100, "refresh_ahead": 0.2}, clock=clock)
    ask = cache.wrap(fn)
    await ask("q")
    clock.advance(90)
    await ask("q")
    await asyncio.gather(*cache.state.refreshes.tasks)
    assert cache.stats().refreshes == 1
    assert llm.calls == 2
