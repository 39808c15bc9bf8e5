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

from ..faces import Face


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
def tiers(
    request: pytest.FixtureRequest, memory: MemoryBackend, tmp_path: Path, face: Face
) -> Iterator[tuple[str, ...]]:
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
    for backend in opened:
        face.uses(backend)
    yield names
    for backend in opened:
        backend.close()


def cached(fn, tiers: tuple[str, ...], clock: FakeClock, **settings):  # type: ignore[no-untyped-def]
    return LLMCache(fn, settings={"tiers": tiers, **settings}, clock=clock).wrap(fn)


class TestEveryConfiguration:
    """Each test runs on every tier configuration, with sync and with async functions."""

    def test_hit_after_miss_with_typed_results(
        self, tiers: tuple[str, ...], clock: FakeClock, face: Face
    ) -> None:
        """A second call hits, with a pydantic result restored to its class, and stats name the tier."""
        llm = FakeLLM()

        def ask(prompt: str) -> Reply:
            return Reply(text=llm(prompt), tokens=len(prompt))

        fn = cached(face.shaped(ask), tiers, clock)
        first = face.call(fn, "x")
        assert face.call(fn, "x") == first
        assert type(face.call(fn, "x")) is Reply
        assert llm.calls == 1
        assert fn.cache.stats().hits == {tiers[0]: 2}

    def test_streams_replay(self, tiers: tuple[str, ...], clock: FakeClock, face: Face) -> None:
        """A finished stream is stored in the tiers and replayed chunk by chunk."""
        llm = FakeLLM()

        def stream(prompt: str):  # type: ignore[no-untyped-def]
            yield from llm.stream(prompt)

        fn = cached(face.shaped(stream), tiers, clock)
        first = face.read(fn, "q")
        assert len(first) > 1
        assert face.read(fn, "q") == first
        assert llm.calls == 1

    def test_logical_ttl(self, tiers: tuple[str, ...], clock: FakeClock, face: Face) -> None:
        """An entry past its TTL is a miss in every tier, whatever the tier's own clock says."""
        llm = FakeLLM()
        fn = cached(face.shaped(llm.complete), tiers, clock, ttl=10)
        face.call(fn, "x")
        clock.advance(9)
        face.call(fn, "x")
        assert llm.calls == 1
        clock.advance(2)
        face.call(fn, "x")
        assert llm.calls == 2

    def test_clear_and_invalidate_reach_every_tier(
        self, tiers: tuple[str, ...], clock: FakeClock, face: Face
    ) -> None:
        """invalidate() and clear() remove entries from all tiers, so the next call is a miss."""
        llm = FakeLLM()
        fn = cached(face.shaped(llm.complete), tiers, clock)
        face.call(fn, "a")
        face.call(fn, "b")
        fn.cache.invalidate("a")
        face.call(fn, "a")
        face.call(fn, "b")
        assert llm.calls == 3
        assert fn.cache.clear() == 2 * len(tiers)
        face.call(fn, "a")
        face.call(fn, "b")
        assert llm.calls == 5


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
