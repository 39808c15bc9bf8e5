"""Scenario 2: an exact hit from Redis, one system per process.

    python exact_redis.py SYSTEM --redis URL --out F

No in-process tier in front: every hit is a round trip to the Redis server run.sh started
on loopback. Each system must prove it hit (the model behind it ran once).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from common import (
    ANSWER,
    MODEL,
    PROMPT,
    TEMPERATURE,
    Counter,
    langchain_with,
    litellm_with,
    memollm_litellm,
    run_exact,
    version_of,
)

SCENARIO = "redis"


def floor(url: str) -> tuple[Any, bool, str]:
    import msgpack
    import redis

    client = redis.Redis.from_url(url)
    client.set("floor:key", msgpack.packb(ANSWER))
    Counter.calls = 1

    def ask() -> str:
        return str(msgpack.unpackb(client.get("floor:key")))

    return ask, False, f"redis-py {version_of('redis')}"


def floor_async(url: str) -> tuple[Any, bool, str]:
    import msgpack
    import redis
    import redis.asyncio as aredis

    redis.Redis.from_url(url).set("floor:key", msgpack.packb(ANSWER))
    Counter.calls = 1
    clients: dict[int, Any] = {}

    async def ask() -> str:
        import asyncio

        loop = id(asyncio.get_running_loop())
        client = clients.get(loop) or clients.setdefault(loop, aredis.Redis.from_url(url))
        return str(msgpack.unpackb(await client.get("floor:key")))

    return ask, True, f"redis-py {version_of('redis')}"


def _memollm(url: str, is_async: bool) -> tuple[Any, bool, str]:
    import memollm
    from memollm.backends.redis import RedisBackend

    memollm.register_tier("redis", RedisBackend(url))
    if is_async:

        @memollm.cached_llm(ttl=600, tiers=("redis",))
        async def aask(prompt: str, model: str, temperature: float) -> str:
            Counter.calls += 1
            return ANSWER

        return (lambda: aask(PROMPT, MODEL, TEMPERATURE)), True, f"memollm {version_of('memollm-cache')}"

    @memollm.cached_llm(ttl=600, tiers=("redis",))
    def ask(prompt: str, model: str, temperature: float) -> str:
        Counter.calls += 1
        return ANSWER

    return (lambda: ask(PROMPT, MODEL, TEMPERATURE)), False, f"memollm {version_of('memollm-cache')}"


def cashews_redis(url: str) -> tuple[Any, bool, str]:
    from cashews import cache

    cache.setup(url, client_side=False)

    @cache(ttl="10m")
    async def ask(prompt: str, model: str, temperature: float) -> str:
        Counter.calls += 1
        return ANSWER

    return (lambda: ask(PROMPT, MODEL, TEMPERATURE)), True, f"cashews {version_of('cashews')}"


def aiocache_redis(url: str) -> tuple[Any, bool, str]:
    from aiocache import Cache, cached

    parts = urlsplit(url)

    @cached(ttl=600, cache=Cache.REDIS, endpoint=parts.hostname, port=parts.port)
    async def ask(prompt: str, model: str, temperature: float) -> str:
        Counter.calls += 1
        return ANSWER

    return (lambda: ask(PROMPT, MODEL, TEMPERATURE)), True, f"aiocache {version_of('aiocache')}"


def langchain_redis(url: str) -> tuple[Any, bool, str]:
    import warnings

    import redis

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langchain_community.cache import RedisCache

    version = f"langchain-community {version_of('langchain-community')}"
    return langchain_with(RedisCache(redis_=redis.Redis.from_url(url)), version)


def langchain_memollm(url: str) -> tuple[Any, bool, str]:
    import memollm
    from memollm.backends.redis import RedisBackend
    from memollm.langchain import MemoLLMCache

    memollm.register_tier("redis", RedisBackend(url))
    return langchain_with(MemoLLMCache(ttl=600, tiers=("redis",)), f"memollm {version_of('memollm-cache')}")


def litellm_memollm(url: str) -> tuple[Any, bool, str]:
    import memollm
    from memollm.backends.redis import RedisBackend

    memollm.register_tier("redis", RedisBackend(url))
    call, is_async, _ = litellm_with(memollm_litellm(ttl=600, tiers=("redis",)))
    return call, is_async, f"memollm {version_of('memollm-cache')}"


def litellm_redis(url: str) -> tuple[Any, bool, str]:
    from litellm.caching.caching import Cache

    parts = urlsplit(url)
    return litellm_with(Cache(type="redis", host=parts.hostname, port=str(parts.port)))


SYSTEMS = {
    "redis-py GET + msgpack [floor]": floor,
    "redis-py async GET + msgpack [floor]": floor_async,
    "memollm": lambda url: _memollm(url, False),
    "memollm (async)": lambda url: _memollm(url, True),
    "cashews redis:// (async)": cashews_redis,
    "aiocache redis (async)": aiocache_redis,
    "LangChain RedisCache": langchain_redis,
    "LiteLLM redis cache": litellm_redis,
    "LangChain + memollm MemoLLMCache (Redis tier)": langchain_memollm,
    "LiteLLM + memollm cache (Redis tier)": litellm_memollm,
}


def main() -> None:
    run_exact(SCENARIO, __doc__, SYSTEMS, slow=("LiteLLM", "LangChain"), divisor=5)


if __name__ == "__main__":
    main()
