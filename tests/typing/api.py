"""The public API used as a user would, checked by mypy --strict (not run by pytest)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import memollm
from memollm import CacheStats, KeyExplanation, Policy, cached_llm
from memollm.backends import MemoryBackend


@cached_llm
def bare(prompt: str, temperature: float = 0.0) -> str:
    return prompt


@cached_llm(ttl=timedelta(minutes=10), namespace="app", ignore=["client"], cache_if=bool)
def configured(prompt: str, client: object = None) -> str:
    return prompt


@cached_llm(policy=Policy(ttl=60), tiers=["memory", MemoryBackend()])
async def asynchronous(prompt: str) -> str:
    return prompt


@cached_llm
def streaming(prompt: str) -> Iterator[str]:
    yield prompt


@cached_llm
async def astreaming(prompt: str) -> AsyncIterator[str]:
    yield prompt


class Bot:
    def __memollm_key__(self) -> str:
        return "bot"

    @cached_llm
    def ask(self, prompt: str) -> str:
        return prompt


async def use() -> None:
    text: str = bare("hi", temperature=0.5)
    other: str = configured("hi")
    awaited: str = await asynchronous("hi")
    chunks: list[str] = list(streaming("hi"))
    achunks: list[str] = [c async for c in astreaming("hi")]
    method: str = Bot().ask("hi")
    stats: CacheStats = bare.cache.stats()
    rate: float = stats.hit_rate
    explained: KeyExplanation = bare.cache.explain_key("hi")
    removed: int = bare.cache.clear()
    bare.cache.invalidate("hi")
    total: CacheStats = memollm.stats()
    with memollm.bypass(), memollm.refresh():
        pass
    memollm.configure("app.*", ttl=30)
    print(text, other, awaited, chunks, achunks, method, rate, explained, removed, total)


pool = memollm.KeyPool(["sk-1", "sk-2"])


@cached_llm(retry=memollm.RetryPolicy(attempts=3), keys=pool, key_param="api_key", stale_ttl=60)
def resilient(prompt: str, api_key: str | None = None) -> str:
    return prompt


def use_resilience() -> None:
    with memollm.lookup() as seen:
        text: str = resilient("hi")
    stale: bool = seen.stale
    key: str | None = memollm.current_key()
    print(text, stale, key, pool.status()[0].fingerprint)


def use_wrapped_clients() -> None:
    import anthropic
    import openai

    import memollm.anthropic
    import memollm.openai

    chat = memollm.openai.wrap(openai.OpenAI(api_key="sk-test"), ttl=600)
    stats: CacheStats = memollm.openai.cache_of(chat).stats()
    streams: CacheStats = memollm.openai.cache_of(chat, "chat.completions.create", stream=True).stats()
    embeddings: int = memollm.openai.cache_of(chat, "embeddings.create").clear()
    claude = memollm.anthropic.wrap(anthropic.Anthropic(api_key="sk-test"))
    messages: CacheStats = memollm.anthropic.cache_of(claude).stats()
    with memollm.lookup() as seen:
        pass
    why: str | None = seen.reason
    print(stats, streams, embeddings, messages, why)
