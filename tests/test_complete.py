"""What counts as a complete answer (memollm.complete) and how a recorded stream is read (memollm.sse)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memollm import complete, sse

JSON_OBJECTS = st.dictionaries(
    st.text(max_size=8),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=12), lambda c: st.lists(c, max_size=3)
    ),
    max_size=4,
)


@given(st.binary(max_size=400))
def test_reading_any_bytes_never_raises(data: bytes) -> None:
    """Whatever an upstream sends, judging and reading it gives a verdict, never an exception."""
    for verdict in (complete.body(data), complete.stream(data)):
        assert verdict is True or isinstance(verdict, complete.Incomplete)
    sse.objects(data)


@given(st.lists(JSON_OBJECTS, max_size=6), st.sampled_from(["\n", "\r\n"]))
def test_events_read_back_as_written(objects: list[dict[str, Any]], newline: str) -> None:
    """Events written as data lines (LF or CRLF) are read back as the same objects, in order."""
    raw = "".join(f"data: {json.dumps(o)}{newline}{newline}" for o in objects).encode()
    assert sse.objects(raw) == objects
    parsed = sse.parse(raw)
    assert parsed is not None
    assert not parsed.cut


def test_multi_line_data_comments_and_names() -> None:
    """Data lines of one event join with newlines; comments are skipped; event: names it."""
    parsed = sse.parse(b': keep-alive\n\nevent: delta\ndata: {"a":\ndata: 1}\n\n')
    assert parsed == sse.Recorded([sse.Event("delta", '{"a":\n1}')], cut=False)


def _chat(**choice: Any) -> dict[str, Any]:
    return {"object": "chat.completion", "choices": [{"index": 0, "message": {"content": "x"}, **choice}]}


ANSWERS = [
    (_chat(finish_reason="stop"), True),
    (_chat(finish_reason="length"), True),  # the model's whole answer to that max_tokens
    (_chat(finish_reason=None), False),
    ({"object": "chat.completion", "choices": []}, False),
    ({"object": "text_completion", "choices": [{"text": "x", "finish_reason": "stop"}]}, True),
    ({"error": {"message": "overloaded"}}, False),
    ({"error": None, **_chat(finish_reason="stop")}, True),
    ({"object": "response", "status": "completed", "output": []}, True),
    ({"object": "response", "status": "in_progress", "output": []}, False),
    ({"object": "response", "status": "failed", "output": []}, False),
    ({"type": "message", "stop_reason": "end_turn", "content": []}, True),
    ({"type": "message", "stop_reason": "pause_turn", "content": []}, False),
    ({"type": "message", "stop_reason": None, "content": []}, False),
    ({"object": "list", "data": [{"object": "embedding", "embedding": [0.1]}]}, True),
    ({"object": "list", "data": []}, False),
    ({"object": "list", "data": [{"object": "embedding"}]}, False),
    ({"anything": "else"}, True),  # an endpoint of the app's own: JSON without an error
]


@pytest.mark.parametrize(("result", "whole"), ANSWERS, ids=[str(i) for i in range(len(ANSWERS))])
def test_answers_by_endpoint(result: dict[str, Any], whole: bool) -> None:
    """Each endpoint's own notion of complete, for parsed bodies."""
    assert bool(complete.body(json.dumps(result).encode())) is whole


def _events(*objects: dict[str, Any]) -> list[dict[str, Any]]:
    return list(objects)


STREAM_EVENTS = [
    (
        _events(
            {"type": "response.created"},
            {"type": "response.output_text.delta", "delta": "x"},
            {"type": "response.completed"},
        ),
        True,
    ),
    (_events({"type": "response.created"}, {"type": "response.output_text.delta", "delta": "x"}), False),
    (_events({"type": "response.created"}, {"type": "response.failed"}), False),
    (_events({"type": "error", "message": "boom"}), False),
    (
        _events(
            {"type": "message_start"},
            {"type": "content_block_delta", "delta": {"text": "x"}},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}},
            {"type": "message_stop"},
        ),
        True,
    ),
    (_events({"type": "message_start"}, {"type": "content_block_delta", "delta": {"text": "x"}}), False),
    (
        _events(
            {"type": "message_start"},
            {"type": "message_delta", "delta": {"stop_reason": "pause_turn"}},
            {"type": "message_stop"},
        ),
        False,
    ),
    (_events({"something": "unknown"}), False),  # a stream memollm cannot judge is not stored
    (_events(), False),
]


@pytest.mark.parametrize(("items", "whole"), STREAM_EVENTS, ids=[str(i) for i in range(len(STREAM_EVENTS))])
def test_streams_of_other_apis(items: list[dict[str, Any]], whole: bool) -> None:
    """Responses API streams end with response.completed, Anthropic's with message_stop."""
    raw = b"".join(f"data: {json.dumps(i)}\n\n".encode() for i in items)
    assert bool(complete.stream(raw)) is whole
    assert bool(complete.events(items)) is whole


def test_sdk_chunks_are_judged_without_the_done_marker() -> None:
    """An SDK consumes [DONE]: its chunks are whole when every choice has a finish reason."""
    from openai.types.chat import ChatCompletionChunk

    def chunk(finish: str | None) -> ChatCompletionChunk:
        return ChatCompletionChunk.model_validate(
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "m",
                "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": finish}],
            }
        )

    assert complete.events([chunk(None), chunk("stop")]) is True
    assert not complete.events([chunk(None), chunk(None)])


def test_an_incomplete_verdict_is_falsy_and_says_why() -> None:
    """The verdict works as a cache_if result and carries its reason."""
    verdict = complete.body(b"<html>502</html>")
    assert not verdict
    assert isinstance(verdict, complete.Incomplete)
    assert "JSON" in verdict.reason
