"""AdaptiveTTL: hot entries earn longer lifetimes, never past max_ttl from their creation."""

from __future__ import annotations

from typing import Any

import pytest

import memollm
from memollm import AdaptiveTTL, LLMCache, Policy
from memollm.backends import MemoryBackend
from memollm.errors import ConfigError
from memollm.testing import FakeClock, FakeLLM


def cached(llm: FakeLLM, clock: FakeClock, ttl: AdaptiveTTL, **settings: Any) -> Any:
    return LLMCache(llm.complete, settings={"ttl": ttl, **settings}, clock=clock).wrap(llm.complete)


def test_cold_entries_keep_the_base_ttl(memory: MemoryBackend, clock: FakeClock) -> None:
    """Cold entries keep the base ttl."""
    llm = FakeLLM()
    ask = cached(llm, clock, AdaptiveTTL(base=10, hot=100, hot_after=3))
    ask("q")
    clock.advance(5)
    ask("q")  # one hit: not hot
    clock.advance(6)
    ask("q")
    assert llm.calls == 2


def test_hot_entries_live_longer_up_to_the_cap(memory: MemoryBackend, clock: FakeClock) -> None:
    """Hot entries live longer up to the cap."""
    llm = FakeLLM()
    ask = cached(llm, clock, AdaptiveTTL(base=10, hot=100, hot_after=2))
    ask("q")  # created at t=0
    clock.advance(1)
    ask("q")
    clock.advance(1)
    ask("q")  # second hit: hot, expiry moves to min(2 + 100, 0 + 100) = 100
    clock.advance(48)
    ask("q")  # t=50: long past the base TTL
    assert llm.calls == 1
    clock.advance(49)
    ask("q")  # t=99
    assert llm.calls == 1
    clock.advance(2)
    ask("q")  # t=101: past max_ttl (= hot) from creation, however popular
    assert llm.calls == 2


def test_sliding_within_max_ttl(memory: MemoryBackend, clock: FakeClock) -> None:
    """Sliding within max ttl."""
    llm = FakeLLM()
    ask = cached(llm, clock, AdaptiveTTL(base=10, hot=100, hot_after=1, max_ttl=150))
    ask("q")
    clock.advance(1)
    ask("q")  # hot at t=1: expires at 101
    clock.advance(59)
    ask("q")  # t=60, 41 s left (< hot/2): expiry moves to min(160, 150) = 150
    clock.advance(89)
    ask("q")  # t=149
    assert llm.calls == 1
    clock.advance(2)
    ask("q")  # t=151: past the cap
    assert llm.calls == 2


def test_extension_reaches_every_tier(clock: FakeClock) -> None:
    """Extension reaches every tier."""
    upper, lower = MemoryBackend(clock=clock), MemoryBackend(clock=clock)
    llm = FakeLLM()
    ask = cached(llm, clock, AdaptiveTTL(base=10, hot=100, hot_after=1), tiers=[upper, lower])
    ask("q")
    clock.advance(1)
    ask("q")
    upper.clear()  # another process's empty memory tier
    clock.advance(50)
    ask("q")
    assert llm.calls == 1


async def test_async_functions(memory: MemoryBackend, clock: FakeClock) -> None:
    """Async functions get the adaptive TTL too."""
    calls = 0

    async def answer(prompt: str) -> str:
        nonlocal calls
        calls += 1
        return prompt

    ttl = AdaptiveTTL(base=10, hot=100, hot_after=1)
    ask = LLMCache(answer, settings={"ttl": ttl}, clock=clock).wrap(answer)
    await ask("q")
    clock.advance(1)
    await ask("q")
    clock.advance(50)
    await ask("q")
    assert calls == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"base": 0}, "base"),
        ({"base": 100, "hot": 10}, "hot"),
        ({"hot_after": 0}, "hot_after"),
        ({"hot_after": True}, "hot_after"),
        ({"base": 100, "hot": 1000, "max_ttl": 50}, "max_ttl"),
    ],
)
def test_bad_settings(options: dict[str, Any], message: str) -> None:
    """An AdaptiveTTL with impossible settings is refused, naming the setting."""
    with pytest.raises(ConfigError, match=message):
        AdaptiveTTL(**options)


def test_from_a_config_table_and_policy() -> None:
    """From a config table and policy."""
    policy = Policy(ttl={"base": 60, "hot": 3600, "hot_after": 5})  # type: ignore[arg-type]
    assert policy.adaptive == AdaptiveTTL(base=60, hot=3600, hot_after=5, max_ttl=3600)
    assert policy.ttl_seconds == 60
    with pytest.raises(ConfigError, match="ttl table"):
        Policy(ttl={"base": 60, "warm": 1})  # type: ignore[arg-type]
    assert Policy(ttl=30).adaptive is None
    memollm.configure(ttl=AdaptiveTTL())

    @memollm.cached_llm
    def ask(prompt: str) -> str:
        return prompt

    assert ask.cache.policy.adaptive == AdaptiveTTL()


@pytest.mark.redis
def test_a_hot_entry_gets_a_longer_ttl_in_redis(redis_url: str, clock: FakeClock) -> None:
    """The extension is written to Redis itself: other processes see the longer lifetime."""
    from memollm.backends.redis import RedisBackend

    redis = RedisBackend(redis_url)
    llm = FakeLLM()
    ask = cached(llm, clock, AdaptiveTTL(base=10, hot=1000, hot_after=1), tiers=[redis])
    ask("q")
    key = ask.cache.key_for("q")
    assert redis.client.pttl(redis.full_key(key)) <= 10_000
    clock.advance(1)
    ask("q")  # hot: expiry moves to 1 + 1000
    assert redis.client.pttl(redis.full_key(key)) > 900_000
