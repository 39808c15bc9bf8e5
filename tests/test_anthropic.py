"""memollm.anthropic.wrap with the real anthropic package against a local server."""

from __future__ import annotations

from typing import Any

import pytest

import memollm
from memollm.anthropic import wrap

from .upstream import Reply, Upstream

anthropic = pytest.importorskip("anthropic")

MESSAGES = [{"role": "user", "content": "What is a proxy?"}]


def message(text: str, model: str = "claude-test") -> dict[str, Any]:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 3}}  # fmt: skip


def events(text: str) -> list[tuple[str, dict[str, Any]]]:
    start = {**message(""), "content": []}
    words = text.split(" ")
    return [
        ("message_start", {"type": "message_start", "message": start}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        *[("content_block_delta", {"type": "content_block_delta", "index": 0,
                                   "delta": {"type": "text_delta", "text": w + " "}}) for w in words],
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "usage": {"output_tokens": len(words)},
                           "delta": {"stop_reason": "end_turn", "stop_sequence": None}}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip


def client_for(upstream: Upstream, cls: Any = None, **policy: Any) -> Any:
    return wrap(
        (cls or anthropic.Anthropic)(base_url=upstream.url, api_key="sk-ant-test", max_retries=0), **policy
    )


def test_a_repeat_is_a_hit_with_the_sdk_type(upstream: Upstream) -> None:
    """A repeat is a hit with the sdk type."""
    upstream.play(Reply(body=message("a proxy forwards")), Reply(body=message("other")))
    client = client_for(upstream)
    first = client.messages.create(model="claude-test", max_tokens=100, messages=MESSAGES)
    second = client.messages.create(model="claude-test", max_tokens=100, messages=MESSAGES)
    assert isinstance(second, anthropic.types.Message)
    assert second.content[0].text == first.content[0].text == "a proxy forwards"
    assert upstream.count == 1
    assert client.messages.create.cache.stats().hits == {"memory": 1}


@pytest.mark.parametrize(
    "change", [{"model": "claude-other"}, {"max_tokens": 50}, {"system": "Be verbose."}], ids=str
)
def test_changes_miss(upstream: Upstream, change: dict[str, Any]) -> None:
    """A change to anything that changes the answer misses."""
    upstream.play(Reply(body=message("one")), Reply(body=message("two")))
    client = client_for(upstream)
    client.messages.create(model="claude-test", max_tokens=100, messages=MESSAGES)
    second = client.messages.create(
        **{"model": "claude-test", "max_tokens": 100, "messages": MESSAGES, **change}
    )
    assert second.content[0].text == "two"


def test_streams_replay_event_for_event(upstream: Upstream) -> None:
    """Streams replay event for event."""
    upstream.play(Reply(events=events("a proxy forwards requests")))
    client = client_for(upstream)
    with client.messages.create(
        model="claude-test", max_tokens=100, messages=MESSAGES, stream=True
    ) as stream:
        first = list(stream)
    second = list(client.messages.create(model="claude-test", max_tokens=100, messages=MESSAGES, stream=True))
    assert upstream.count == 1
    assert [e.model_dump() for e in second] == [e.model_dump() for e in first]
    assert (
        "".join(e.delta.text for e in second if e.type == "content_block_delta")
        == "a proxy forwards requests "
    )


async def test_async_client_and_tenants(upstream: Upstream) -> None:
    """Async client and tenants."""
    upstream.play(Reply(body=message("a")), Reply(body=message("b")))
    client = client_for(upstream, anthropic.AsyncAnthropic)
    with memollm.tenant("a"):
        one = await client.messages.create(model="claude-test", max_tokens=10, messages=MESSAGES)
        again = await client.messages.create(model="claude-test", max_tokens=10, messages=MESSAGES)
    with memollm.tenant("b"):
        other = await client.messages.create(model="claude-test", max_tokens=10, messages=MESSAGES)
    assert isinstance(again, anthropic.types.Message)
    assert (one.content[0].text, again.content[0].text, other.content[0].text) == ("a", "a", "b")
