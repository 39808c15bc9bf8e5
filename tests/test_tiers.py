"""The decorator over every tier configuration: the same behaviour whatever the tiers are."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pydantic
import pytest

import memollm
from memollm import LLMCache
from memollm.backends import MemoryBackend
from memollm.backends.redis import RedisBackend
from memollm.backends.sqlite import SQLiteBackend
from memollm.testing import FakeClock, FakeLLM


class Reply(pydantic.BaseModel):
    text: str
    tokens: int


CONFIGS = {
    "memory": ("memory",),
    "sqlite": ("sqlite",),
    "redis": ("redis",),
    "cluster": ("cluster",),
    "memory-redis-sqlite": ("memory", "redis", "sqlite"),
}


@pytest.fixture(params=list(CONFIGS))
def tiers(request: pytest.FixtureRequest, memory: MemoryBackend, tmp_path: Path) -> Iterator[tuple[str, ...]]:
    names = CONFIGS[request.param]
    opened: list[RedisBackend | SQLiteBackend] = []
    if "sqlite" in names:
        opened.append(SQLiteBackend(tmp_path / "cache.db"))
        memollm.register_tier("sqlite", opened[-1])
    if "redis" in names:
        opened.append(RedisBackend(request.getfixturevalue("redis_url")))
        memollm.register_tier("redis", opened[-1])
    if "cluster" in names:
        opened.append(RedisBackend(request.getfixturevalue("cluster_url"), cluster=True))
        memollm.register_tier("cluster", opened[-1])
    yield names
    for backend in opened:
        backend.close()


def cached(fn, tiers: tuple[str, ...], clock: FakeClock, **settings):  # type: ignore[no-untyped-def]
    return LLMCache(fn, settings={"tiers": tiers, **settings}, clock=clock).wrap(fn)


class TestEveryConfiguration:
    def test_hit_after_miss_with_typed_results(self, tiers: tuple[str, ...], clock: FakeClock) -> None:
        """A second call hits, with a pydantic result restored to its class, and stats name the tier."""
        llm = FakeLLM()

        def ask(prompt: str) -> Reply:
            return Reply(text=llm(prompt), tokens=len(prompt))

        fn = cached(ask, tiers, clock)
        assert fn("x") == fn("x")
        assert type(fn("x")) is Reply
        assert llm.calls == 1
        assert fn.cache.stats().hits == {tiers[0]: 2}

    def test_streams_replay(self, tiers: tuple[str, ...], clock: FakeClock) -> None:
        """A finished stream is stored in the tiers and replayed chunk by chunk."""
        llm = FakeLLM()

        def stream(prompt: str):  # type: ignore[no-untyped-def]
            yield from llm.stream(prompt)

        fn = cached(stream, tiers, clock)
        assert list(fn("q")) == list(fn("q"))
        assert llm.calls == 1

    def test_logical_ttl(self, tiers: tuple[str, ...], clock: FakeClock) -> None:
        """An entry past its TTL is a miss in every tier, whatever the tier's own clock says."""
        llm = FakeLLM()
        fn = cached(llm.complete, tiers, clock, ttl=10)
        fn("x")
        clock.advance(9)
        fn("x")
        clock.advance(2)
        fn("x")
        assert llm.calls == 2

    def test_clear_and_invalidate_reach_every_tier(self, tiers: tuple[str, ...], clock: FakeClock) -> None:
        """invalidate() and clear() remove entries from all tiers, so the next call is a miss."""
        llm = FakeLLM()
        fn = cached(llm.complete, tiers, clock)
        fn("a")
        fn("b")
        fn.cache.invalidate("a")
        fn("a")
        fn("b")
        assert llm.calls == 3
        assert fn.cache.clear() == 2 * len(tiers)
        fn("a")
        fn("b")
        assert llm.calls == 5

    async def test_async_functions(self, tiers: tuple[str, ...], clock: FakeClock) -> None:
        """Async functions read and write every tier through the async faces."""
        llm = FakeLLM()
        fn = cached(llm.acomplete, tiers, clock)
        assert await fn("x") == await fn("x")
        assert llm.calls == 1
        for name in tiers:
            close = getattr(memollm.registry.get_tier(name), "backend", None)
            if isinstance(close, RedisBackend):
                await close.aclose()


def test_promotion_keeps_the_remaining_ttl(
    memory: MemoryBackend, clock: FakeClock, redis_url: str, tmp_path: Path
) -> None:
    """A hit found only in SQLite is copied into memory and Redis with the TTL it has left."""
    redis_tier, sqlite_tier = RedisBackend(redis_url), SQLiteBackend(tmp_path / "c.db")
    memollm.register_tier("redis", redis_tier)
    memollm.register_tier("sqlite", sqlite_tier)
    llm = FakeLLM()
    fn = cached(llm.complete, ("memory", "redis", "sqlite"), clock, ttl=100)
    fn("x")
    key = fn.cache.key_for("x")
    memory.clear()
    redis_tier.delete(key)
    clock.advance(60)
    fn("x")
    assert llm.calls == 1
    assert fn.cache.stats().hits == {"sqlite": 1}
    pttl = redis_tier.client.pttl(redis_tier.full_key(key))
    assert 35_000 < pttl <= 40_000
    fn("x")
    assert fn.cache.stats().hits == {"sqlite": 1, "memory": 1}
    clock.advance(41)
    fn("x")
    assert llm.calls == 2
    redis_tier.close()
    sqlite_tier.close()
