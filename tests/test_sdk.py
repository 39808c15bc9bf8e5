"""What the SDK wrappers (memollm.openai, memollm.anthropic) store, under which key, and for which process.

Real SDKs against local upstreams; the cross-process tests run real Python processes on one
real redis-server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import memollm
import memollm.anthropic
import memollm.openai
from memollm.backends.redis import RedisBackend

from .upstream import Reply, Upstream, chunk, completion, sse

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

MESSAGES = [{"role": "user", "content": "What is a proxy?"}]
ROOT = Path(__file__).resolve().parent.parent


def stream_reply(raw: bytes) -> Reply:
    return Reply(raw=raw, content_type="text/event-stream", length=-1)


def oai(url: str, key: str = "sk-test", **options: Any) -> Any:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, **options)


# -- only complete answers ---------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [sse(chunk("Hal"), chunk("f an answ")), sse(chunk("Hal"), chunk("f"), "[DONE]")],
    ids=["quiet-end", "done-without-finish-reason"],
)
def test_an_openai_stream_without_its_finish_reason_is_not_stored(upstream: Upstream, raw: bytes) -> None:
    """The SDK ends such a stream quietly; the wrapper passes it on, stores nothing, and counts it."""
    upstream.play(stream_reply(raw), stream_reply(sse(chunk("Whole", "stop"), "[DONE]")))
    client = memollm.openai.wrap(oai(upstream.url))
    texts = []
    for _ in range(2):
        stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        texts.append("".join(c.choices[0].delta.content or "" for c in stream))
    assert texts[1] == "Whole"  # the repeat went to the model, not to the partial text
    assert upstream.count == 2
    stats = client.chat.completions.create.stream_cache.stats()
    assert (stats.incomplete, stats.stores) == (1, 1)


def test_an_openai_value_without_a_finish_reason_is_not_stored(upstream: Upstream) -> None:
    """A completion whose choice never finished is passed on, not stored."""
    cut = completion("Hal")
    cut["choices"][0]["finish_reason"] = None
    upstream.play(Reply(body=cut), Reply(body=completion("Whole")))
    client = memollm.openai.wrap(oai(upstream.url))
    first = client.chat.completions.create(model="m", messages=MESSAGES)
    second = client.chat.completions.create(model="m", messages=MESSAGES)
    assert (first.choices[0].message.content, second.choices[0].message.content) == ("Hal", "Whole")
    assert client.chat.completions.create.cache.stats().incomplete == 1


def _anthropic_events(stop: bool) -> list[tuple[str, dict[str, Any]]]:
    start = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 0},
    }
    events = [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hal"}},
        ),
    ]
    if stop:
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "usage": {"output_tokens": 1},
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
    return events


def test_an_anthropic_stream_without_message_stop_is_not_stored(upstream: Upstream) -> None:
    """An Anthropic stream is stored only once it reached message_stop."""
    upstream.play(
        Reply(events=_anthropic_events(stop=False)),
        Reply(events=_anthropic_events(stop=True)),
        Reply(events=_anthropic_events(stop=False)),
    )
    client = memollm.anthropic.wrap(anthropic.Anthropic(base_url=upstream.url, api_key="k", max_retries=0))
    for _ in range(3):
        list(client.messages.create(model="claude-test", max_tokens=10, messages=MESSAGES, stream=True))
    assert upstream.count == 2  # the cut one, the whole one; the third replayed the whole one
    stats = client.messages.create.stream_cache.stats()
    assert (stats.incomplete, stats.stores, stats.hits) == (1, 1, {"memory": 1})


# -- the provider is part of the key ----------------------------------------------------------


def test_two_providers_never_answer_for_each_other(redis_url: str) -> None:
    """Two base URLs serving a model of the same name, one shared Redis: each keeps its own answers."""
    memollm.register_tier("redis", RedisBackend(redis_url))
    local, cloud = Upstream().start(), Upstream().start()
    try:
        local.play(Reply(body=completion("from the local vLLM")))
        cloud.play(Reply(body=completion("from the cloud")))
        answers = []
        for url in (local.url, cloud.url, local.url, cloud.url):
            client = memollm.openai.wrap(oai(url), tiers=["redis"], semantic=None)
            answers.append(
                client.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content
            )
        assert answers == ["from the local vLLM", "from the cloud"] * 2
        assert (local.count, cloud.count) == (1, 1)
    finally:
        local.stop()
        cloud.stop()


def test_a_rotated_api_key_keeps_the_cache(upstream: Upstream) -> None:
    """The API key is not part of the key: the same provider with a new key reads the same entries."""
    memollm.openai.wrap(oai(upstream.url, "sk-old")).chat.completions.create(model="m", messages=MESSAGES)
    memollm.openai.wrap(oai(upstream.url, "sk-new")).chat.completions.create(model="m", messages=MESSAGES)
    assert upstream.count == 1


def test_what_names_the_provider_is_in_the_exact_key_and_the_partition() -> None:
    """Scheme, host, port, path, organization, project and Azure's deployment and api-version all count."""
    base = {"api_key": "k", "base_url": "http://host:8000/v1"}
    variants = [
        openai.OpenAI(**base),
        openai.OpenAI(**{**base, "base_url": "https://host:8000/v1"}),
        openai.OpenAI(**{**base, "base_url": "http://other:8000/v1"}),
        openai.OpenAI(**{**base, "base_url": "http://host:8001/v1"}),
        openai.OpenAI(**{**base, "base_url": "http://host:8000/v2"}),
        openai.OpenAI(**base, organization="org-1"),
        openai.OpenAI(**base, project="proj-1"),
        openai.AzureOpenAI(
            api_key="k",
            azure_endpoint="https://x.openai.azure.com",
            azure_deployment="a",
            api_version="2024-06-01",
        ),
        openai.AzureOpenAI(
            api_key="k",
            azure_endpoint="https://x.openai.azure.com",
            azure_deployment="b",
            api_version="2024-06-01",
        ),
        openai.AzureOpenAI(
            api_key="k",
            azure_endpoint="https://x.openai.azure.com",
            azure_deployment="a",
            api_version="2025-01-01",
        ),
    ]
    keys, partitions = set(), set()
    for made in variants:
        create = memollm.openai.wrap(made, semantic=0.9).chat.completions.create
        keys.add(create.cache.key_for(model="m", messages=MESSAGES))
        explained = create.cache.explain_key(model="m", messages=MESSAGES)
        partitions.add(json.dumps(explained.arguments["memollm_endpoint"]))
    assert len(keys) == len(partitions) == len(variants)


def test_each_method_has_its_own_keys() -> None:
    """embeddings.create and responses.create called with the same model and input never share an entry."""
    client = memollm.openai.wrap(openai.OpenAI(api_key="k", base_url="http://host/v1"))
    one = client.embeddings.create.cache.key_for(model="m", input="hi")
    two = client.responses.create.cache.key_for(model="m", input="hi")
    assert one != two


def test_credentials_in_a_base_url_never_reach_a_key_explanation() -> None:
    """A password in the base URL is left out of the endpoint that keys and explanations show."""
    create = memollm.openai.wrap(
        openai.OpenAI(api_key="k", base_url="https://u:s3cret@host/v1")
    ).chat.completions.create
    explained = create.cache.explain_key(model="m", messages=MESSAGES)
    assert "s3cret" not in repr(explained)


# -- any process reads what another stored ---------------------------------------------------

_WORKER = textwrap.dedent(
    """
    import json, os, sys
    import anthropic, openai
    import memollm, memollm.anthropic, memollm.openai
    from memollm.backends.redis import RedisBackend

    memollm.register_tier("redis", RedisBackend(os.environ["REDIS"]))
    url = os.environ["UPSTREAM"]
    chat = memollm.openai.wrap(openai.OpenAI(base_url=url + "/v1", api_key="k-chat", max_retries=0),
                               tiers=["redis"])
    claude = memollm.anthropic.wrap(anthropic.Anthropic(base_url=url, api_key="k", max_retries=0),
                                    tiers=["redis"])
    messages = [{"role": "user", "content": "What is a proxy?"}]
    message = claude.messages.create(model="claude-test", max_tokens=10, messages=messages)
    value = chat.chat.completions.create(model="m", messages=messages)
    chunks = list(chat.chat.completions.create(model="m", messages=messages, stream=True))
    stats = [chat.chat.completions.create.cache.stats(), chat.chat.completions.create.stream_cache.stats(),
             claude.messages.create.cache.stats()]
    print(json.dumps({
        "types": [type(value).__name__, type(chunks[0]).__name__, type(message).__name__],
        "texts": [value.choices[0].message.content, "".join(c.choices[0].delta.content or "" for c in chunks),
                  message.content[0].text],
        "hits": [dict(s.hits) for s in stats],
        "corrupt": sum(s.corrupt for s in stats),
    }))
    """
)


def test_a_fresh_process_reads_what_another_stored(redis_url: str, upstream: Upstream) -> None:
    """Two real processes, one Redis: the second serves the first's SDK objects; each call is paid once."""
    claude = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": [{"type": "text", "text": "a forwarder"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 3},
    }
    upstream.play(Reply(body=completion("a proxy forwards")), key="k-chat")
    upstream.play(Reply(body=claude))  # the Anthropic SDK sends x-api-key: the shared script
    env = {**os.environ, "REDIS": redis_url, "UPSTREAM": upstream.url, "PYTHONPATH": str(ROOT)}
    runs = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", _WORKER], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    first, second = runs
    assert second["types"] == first["types"] == ["ChatCompletion", "ChatCompletionChunk", "Message"]
    assert second["texts"] == first["texts"]
    assert second["hits"] == [{"redis": 1}] * 3
    assert second["corrupt"] == 0
    assert upstream.count == 3  # one chat value, one chat stream, one Anthropic message: for both processes


def test_cache_of_reaches_a_methods_cache(upstream: Upstream) -> None:
    """memollm.openai.cache_of(client) is the method's cache (stream=True its streams'); typed helpers."""
    client = memollm.openai.wrap(oai(upstream.url))
    client.chat.completions.create(model="m", messages=MESSAGES)
    client.chat.completions.create(model="m", messages=MESSAGES)
    assert memollm.openai.cache_of(client).stats().hits == {"memory": 1}
    assert memollm.openai.cache_of(client, stream=True).stats().lookups == 0
    assert memollm.openai.cache_of(client, "embeddings.create") is client.embeddings.create.cache
    with pytest.raises(ValueError, match="not cached by memollm"):
        memollm.openai.cache_of(oai(upstream.url))
    with pytest.raises(ValueError, match="not a method"):
        memollm.openai.cache_of(client, "chat.nothing.create")
    claude = memollm.anthropic.wrap(anthropic.Anthropic(base_url=upstream.url, api_key="k", max_retries=0))
    assert memollm.anthropic.cache_of(claude) is claude.messages.create.cache
