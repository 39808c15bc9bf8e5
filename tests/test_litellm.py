"""memollm as LiteLLM's cache, with LiteLLM's own mock_response (no network)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

import memollm

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch of the price list
litellm = pytest.importorskip("litellm")

from memollm.errors import ConfigError  # noqa: E402
from memollm.litellm import MemoLLMCache, enable  # noqa: E402

MESSAGES = [{"role": "user", "content": "What is a proxy?"}]
# LiteLLM's own models warn at import under newer pydantic; not memollm's to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Items? .*ReadOnly:UserWarning")


@pytest.fixture
def backend() -> Iterator[MemoLLMCache]:
    made = enable(ttl=600)
    yield made
    litellm.cache = None


def ask(mock: str, **more: Any) -> Any:
    return litellm.completion(**{"model": "gpt-4o-mini", "messages": MESSAGES, "mock_response": mock,
                                 "caching": True, **more})  # fmt: skip


def test_a_repeat_is_a_hit(backend: MemoLLMCache) -> None:
    """The mock answer is not in LiteLLM's key: a second mock answer showing means a miss."""
    assert ask("first").choices[0].message.content == "first"
    second = ask("second")
    assert isinstance(second, litellm.ModelResponse)
    assert second.choices[0].message.content == "first"
    assert backend.stats().hits == {"memory": 1}


@pytest.mark.parametrize("change", [{"model": "gpt-4o"}, {"temperature": 0.9}], ids=["model", "temperature"])
def test_changes_miss(backend: MemoLLMCache, change: dict[str, Any]) -> None:
    """A change to anything that changes the answer misses."""
    ask("first")
    assert ask("second", **change).choices[0].message.content == "second"


def test_streams(backend: MemoLLMCache) -> None:
    """A streamed completion is cached: the repeat replays the first text, not a new answer."""
    first = "".join(c.choices[0].delta.content or "" for c in ask("one two three", stream=True))
    again = "".join(c.choices[0].delta.content or "" for c in ask("four", stream=True))
    assert first == again == "one two three"


async def test_async(backend: MemoLLMCache) -> None:
    """The async API is cached the same way."""
    import asyncio

    one = await litellm.acompletion(model="gpt-4o-mini", messages=MESSAGES, mock_response="a", caching=True)
    for _ in range(500):  # LiteLLM writes the cache from a background task after answering
        if backend.stats().stores:
            break
        await asyncio.sleep(0.01)
    two = await litellm.acompletion(model="gpt-4o-mini", messages=MESSAGES, mock_response="b", caching=True)
    assert one.choices[0].message.content == two.choices[0].message.content == "a"


def test_tenants_isolate(backend: MemoLLMCache) -> None:
    """Two tenants asking the same question each get their own answer."""
    with memollm.tenant("a"):
        ask("for a")
    with memollm.tenant("b"):
        assert ask("for b").choices[0].message.content == "for b"


def test_semantic_is_refused_with_a_reason() -> None:
    """Semantic is refused with a reason."""
    with pytest.raises(ConfigError, match="keys only"):
        MemoLLMCache(semantic=True)


@pytest.mark.parametrize(
    ("ttl", "seconds"),
    [(timedelta(minutes=5), 300), (600, 600), (memollm.AdaptiveTTL(base=60, hot=3600), 60), (None, None)],
    ids=["timedelta", "seconds", "adaptive", "never"],
)
def test_ttl_takes_what_cached_llm_takes(ttl: Any, seconds: int | None) -> None:
    """ttl= accepts seconds, a timedelta, an AdaptiveTTL or None, as cached_llm does; entries get it."""
    backend = enable(ttl=ttl)
    try:
        assert ask("first").choices[0].message.content == "first"
        assert ask("second").choices[0].message.content == "first"
        if seconds is not None:
            assert backend.default_ttl == seconds
            assert backend.stats().hits == {"memory": 1}
    finally:
        litellm.cache = None
