"""memollm.openai.wrap with the real openai package against a local OpenAI-compatible server."""

from __future__ import annotations

from typing import Any

import pytest

import memollm
from memollm.openai import wrap

from .upstream import Reply, Upstream, completion

openai = pytest.importorskip("openai")

MESSAGES = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "What is a proxy?"}]


def client_for(upstream: Upstream, **policy: Any) -> Any:
    return wrap(openai.OpenAI(base_url=upstream.url + "/v1", api_key="sk-test", max_retries=0), **policy)


def test_a_repeat_is_a_hit_and_keeps_the_sdk_type(upstream: Upstream) -> None:
    """A repeat is a hit and keeps the sdk type."""
    client = client_for(upstream)
    first = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    second = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert isinstance(second, openai.types.chat.ChatCompletion)
    assert second.choices[0].message.content == first.choices[0].message.content
    assert upstream.count == 1
    stats = client.chat.completions.create.cache.stats()
    assert stats.hits == {"memory": 1} and stats.cost_saved > 0


@pytest.mark.parametrize(
    "change",
    [
        {"model": "gpt-4o"},
        {"temperature": 0.7},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]},
        {"messages": [{"role": "system", "content": "Be verbose."}, MESSAGES[1]]},
    ],
    ids=["model", "temperature", "tools", "system"],
)
def test_anything_that_changes_the_answer_misses(upstream: Upstream, change: dict[str, Any]) -> None:
    """Anything that changes the answer misses."""
    client = client_for(upstream)
    client.chat.completions.create(**{"model": "gpt-4o-mini", "messages": MESSAGES})
    client.chat.completions.create(**{"model": "gpt-4o-mini", "messages": MESSAGES, **change})
    assert upstream.count == 2


def test_timeouts_and_headers_are_not_part_of_the_key(upstream: Upstream) -> None:
    """Timeouts and headers are not part of the key."""
    client = client_for(upstream)
    client.chat.completions.create(model="m", messages=MESSAGES, timeout=5)
    client.chat.completions.create(model="m", messages=MESSAGES, extra_headers={"x-trace": "1"})
    assert upstream.count == 1


def test_streams_replay_chunk_for_chunk(upstream: Upstream) -> None:
    """Streams replay chunk for chunk."""
    client = client_for(upstream)
    with client.chat.completions.create(model="m", messages=MESSAGES, stream=True) as stream:
        first = list(stream)
    second = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert upstream.count == 1
    assert all(isinstance(c, openai.types.chat.ChatCompletionChunk) for c in second)
    assert [c.choices[0].delta.content for c in second] == [c.choices[0].delta.content for c in first]
    assert len(first) > 2


async def test_async_client_values_and_streams(upstream: Upstream) -> None:
    """Async client values and streams."""
    client = wrap(openai.AsyncOpenAI(base_url=upstream.url + "/v1", api_key="sk-test", max_retries=0))
    one = await client.chat.completions.create(model="m", messages=MESSAGES)
    two = await client.chat.completions.create(model="m", messages=MESSAGES)
    assert isinstance(two, openai.types.chat.ChatCompletion) and two == one
    chunks = [
        c async for c in await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    ]
    async with await client.chat.completions.create(model="m", messages=MESSAGES, stream=True) as again:
        replayed = [c async for c in again]
    assert [c.model_dump() for c in replayed] == [c.model_dump() for c in chunks]
    assert upstream.count == 2


def test_tenants_isolate(upstream: Upstream) -> None:
    """Two tenants asking the same question each get their own answer."""
    client = client_for(upstream)
    with memollm.tenant("a"):
        client.chat.completions.create(model="m", messages=MESSAGES)
    with memollm.tenant("b"):
        client.chat.completions.create(model="m", messages=MESSAGES)
    assert upstream.count == 2


def test_raw_responses_and_other_resources_are_the_real_clients(upstream: Upstream) -> None:
    """Raw responses and other resources are the real clients."""
    client = client_for(upstream)
    raw = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    assert raw.headers["content-type"] == "application/json"
    assert raw.parse().choices[0].message.content.startswith("echo")
    assert client.api_key == "sk-test"


def test_embeddings_and_per_method_settings(upstream: Upstream) -> None:
    """Embeddings and per method settings."""
    vector = {"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}
    body = {
        "object": "list",
        "model": "e",
        "data": [vector],
        "usage": {"prompt_tokens": 2, "total_tokens": 2},
    }
    upstream.play(Reply(body=body))
    client = client_for(upstream, methods={"embeddings.create": {"namespace": "vectors"}})
    first = client.embeddings.create(model="e", input="hello", encoding_format="float")
    second = client.embeddings.create(model="e", input="hello", encoding_format="float")
    assert isinstance(second, openai.types.CreateEmbeddingResponse)
    assert second.data[0].embedding == first.data[0].embedding == [0.1, 0.2]
    assert upstream.count == 1
    assert client.embeddings.create.cache.policy.namespace == "vectors"
    with pytest.raises(ValueError, match="not a cached method"):
        client_for(upstream, methods={"files.create": {}})


def test_a_failing_call_is_not_cached(upstream: Upstream) -> None:
    """A failing call is not cached."""
    from .upstream import error

    upstream.play(error(500), Reply(body=completion("fine")))
    client = client_for(upstream)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m", messages=MESSAGES)
    assert client.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content == "fine"
