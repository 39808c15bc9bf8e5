"""Scenario 2: an exact hit from Redis, one system per process.

    python exact_redis.py SYSTEM --redis URL --out F

No in-process tier in front: every hit is a round trip to the Redis server run.sh started
on loopback. Each system must prove it hit (the model behind it ran once).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from common import ANSWER, MODEL, PROMPT, TEMPERATURE, Counter, litellm_with, run_exact, version_of

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

        return (lambda: aask(PROMPT, MODEL, TEMPERATURE)), True, f"memollm {version_of('memollm')}"

    @memollm.cached_llm(ttl=600, tiers=("redis",))
    def ask(prompt: str, model: str, temperature: float) -> str:
        Counter.calls += 1
        return ANSWER

    return (lambda: ask(PROMPT, MODEL, TEMPERATURE)), False, f"memollm {version_of('memollm')}"


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
    from langchain_core.globals import set_llm_cache
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langchain_community.cache import RedisCache

    set_llm_cache(RedisCache(redis_=redis.Redis.from_url(url)))

    class Model(FakeListChatModel):
        def _call(self, *args: Any, **kwargs: Any) -> str:
            Counter.calls += 1
            return super()._call(*args, **kwargs)

    model = Model(responses=[ANSWER], temperature=TEMPERATURE)
    return (
        (lambda: str(model.invoke(PROMPT).content)),
        False,
        f"langchain-community {version_of('langchain-community')}",
    )


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
}


def main() -> None:
    run_exact(SCENARIO, __doc__, SYSTEMS, slow=("LiteLLM", "LangChain"), divisor=5)


if __name__ == "__main__":
    main()
