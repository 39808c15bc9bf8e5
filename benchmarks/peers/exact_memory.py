"""Scenario 1: an exact hit in process. One system per process: python exact_memory.py SYSTEM --out F.

Every system is asked the same question (a ~200-character prompt, a model name, a
temperature) for a ~1 KB answer, once to store it, then many times. Each must prove it
hit: the model behind it is called exactly once.
"""

from __future__ import annotations

import tempfile
from typing import Any

from common import (
    ANSWER,
    MESSAGES,
    MODEL,
    PROMPT,
    TEMPERATURE,
    Counter,
    langchain_with,
    litellm_with,
    memollm_litellm,
    openai_client,
    run_exact,
    version_of,
)  # fmt: skip

SCENARIO = "memory"


def floor() -> tuple[Any, bool, str]:
    import cachetools

    @cachetools.cached(cachetools.TTLCache(maxsize=10_000, ttl=600))
    def ask(prompt: str, model: str, temperature: float) -> str:
        Counter.calls += 1
        return ANSWER

    return (lambda: ask(PROMPT, MODEL, TEMPERATURE)), False, f"cachetools {version_of('cachetools')}"


def memollm_sync() -> tuple[Any, bool, str]:
    import memollm

    @memollm.cached_llm(ttl=600)
    def ask(prompt: str, model: str, temperature: float) -> str:
        Counter.calls += 1
        return ANSWER

    return (lambda: ask(PROMPT, MODEL, TEMPERATURE)), False, f"memollm {version_of('memollm-cache')}"


def memollm_async() -> tuple[Any, bool, str]:
    import memollm

    @memollm.cached_llm(ttl=600)
    async def ask(prompt: str, model: str, temperature: float) -> str:
        Counter.calls += 1
        return ANSWER

    return (lambda: ask(PROMPT, MODEL, TEMPERATURE)), True, f"memollm {version_of('memollm-cache')}"


def gptcache_exact() -> tuple[Any, bool, str]:
    from gptcache import Cache
    from gptcache.adapter.api import get, put
    from gptcache.manager import get_data_manager
    from gptcache.processor.pre import get_prompt

    cache = Cache()
    # The map data manager, in a fresh folder: it saves itself to data_map.txt at exit.
    folder = tempfile.mkdtemp(prefix="gptcache-")
    cache.init(
        pre_embedding_func=get_prompt, data_manager=get_data_manager(data_path=f"{folder}/data_map.txt")
    )

    def ask() -> str:
        found = get(PROMPT, cache_obj=cache)
        if found is None:
            Counter.calls += 1
            put(PROMPT, ANSWER, cache_obj=cache)
            return ANSWER
        return str(found)

    # GPTCache's exact mode keys on the prompt alone: model and temperature are not part of it.
    return ask, False, f"gptcache {version_of('gptcache')}"


def aiocache_memory() -> tuple[Any, bool, str]:
    from aiocache import Cache, cached

    @cached(ttl=600, cache=Cache.MEMORY)
    async def ask(prompt: str, model: str, temperature: float) -> str:
        Counter.calls += 1
        return ANSWER

    return (lambda: ask(PROMPT, MODEL, TEMPERATURE)), True, f"aiocache {version_of('aiocache')}"


def cashews_memory() -> tuple[Any, bool, str]:
    from cashews import cache

    cache.setup("mem://")

    @cache(ttl="10m")
    async def ask(prompt: str, model: str, temperature: float) -> str:
        Counter.calls += 1
        return ANSWER

    return (lambda: ask(PROMPT, MODEL, TEMPERATURE)), True, f"cashews {version_of('cashews')}"


def langchain_memory() -> tuple[Any, bool, str]:
    from langchain_core.caches import InMemoryCache

    return langchain_with(InMemoryCache(), f"langchain-core {version_of('langchain-core')}")


def langchain_memollm() -> tuple[Any, bool, str]:
    from memollm.langchain import MemoLLMCache

    return langchain_with(MemoLLMCache(ttl=600), f"memollm {version_of('memollm-cache')}")


def litellm_memollm() -> tuple[Any, bool, str]:
    call, is_async, _ = litellm_with(memollm_litellm(ttl=600))
    return call, is_async, f"memollm {version_of('memollm-cache')}"


def openai_wrapped() -> tuple[Any, bool, str]:
    import memollm.openai

    client = memollm.openai.wrap(openai_client(), ttl=600)
    return (
        lambda: client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=TEMPERATURE),
        False,
        f"memollm {version_of('memollm-cache')}",
    )


def openai_memoised() -> tuple[Any, bool, str]:
    import memollm

    client = openai_client()

    @memollm.cached_llm(ttl=600, ignore=["client"])
    def ask(prompt: str, model: str, temperature: float, client: Any = client) -> Any:
        return client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}],
                                              temperature=temperature)  # fmt: skip

    return (lambda: ask(PROMPT, MODEL, TEMPERATURE)), False, f"memollm {version_of('memollm-cache')}"


def litellm_local() -> tuple[Any, bool, str]:
    from litellm.caching.caching import Cache

    return litellm_with(Cache(type="local"))


SYSTEMS = {
    "cachetools.cached [floor]": floor,
    "memollm": memollm_sync,
    "memollm (async)": memollm_async,
    "GPTCache exact (map; key: prompt only)": gptcache_exact,
    "aiocache memory (async)": aiocache_memory,
    "cashews mem:// (async)": cashews_memory,
    "LangChain InMemoryCache (chat model)": langchain_memory,
    "LiteLLM local cache (completion)": litellm_local,
    "LangChain + memollm MemoLLMCache (chat model)": langchain_memollm,
    "LiteLLM + memollm cache (completion)": litellm_memollm,
    "memollm.openai.wrap (client.chat.completions.create)": openai_wrapped,
    "memollm on a function calling openai": openai_memoised,
}


def main() -> None:
    run_exact(SCENARIO, __doc__, SYSTEMS, slow=("LiteLLM", "LangChain", "GPTCache"), divisor=10)


if __name__ == "__main__":
    main()
