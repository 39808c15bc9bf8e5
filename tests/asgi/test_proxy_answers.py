"""`memollm serve` stores only complete answers, and answers 502 of its own when the upstream fails mid-read.

Every case goes through real HTTP: a local upstream sending the bytes given, the proxy app
under uvicorn, the httpx or openai client in front.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

import memollm
from memollm import Policy

from ..servers import Served, ServeProcess
from ..upstream import Reply, Upstream, chunk, sse

pytest.importorskip("uvicorn", reason="the server extra is not installed")

CHAT = "/v1/chat/completions"
BODY = {"model": "m", "messages": [{"role": "user", "content": "What is a proxy?"}], "temperature": 0}


@pytest.fixture
def served(upstream: Upstream, tmp_path: Path) -> Iterator[Served]:
    """`memollm serve`'s app (memory + SQLite) with a short upstream timeout."""
    from memollm.asgi.proxy import build_app
    from memollm.backends.sqlite import SQLiteBackend

    memollm.register_tier("sqlite", SQLiteBackend(tmp_path / "proxy.db"))
    app = build_app(upstream.url, policy=Policy(tiers=("memory", "sqlite")), timeout=2.0)
    with Served(app) as server:
        yield server


def incomplete(served: Served) -> int:
    return served.app.stats().incomplete


NOT_ANSWERS = [
    Reply(raw=b'{"id": "x", "choices": [ {"mess'),
    Reply(raw=b"<html>502 Bad Gateway (nginx)</html>", content_type="text/html"),
    Reply(body={"error": {"message": "The server is overloaded", "type": "server_error", "code": None}}),
    Reply(body={"id": "x", "object": "chat.completion", "choices": []}),
    Reply(
        body={
            "id": "x",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hal"}}],
        }
    ),
    Reply(raw=b'"just a string"'),
]


@pytest.mark.parametrize(
    "reply",
    NOT_ANSWERS,
    ids=["cut-json", "html-page", "error-object", "no-choices", "no-finish-reason", "not-an-object"],
)
def test_a_200_that_is_not_an_answer_is_never_replayed(
    served: Served, upstream: Upstream, reply: Reply
) -> None:
    """A 200 whose body is not a complete answer reaches the client as sent, and is not stored."""
    upstream.play(reply, reply)
    before = incomplete(served)
    first = httpx.post(served.url + CHAT, json=BODY)
    second = httpx.post(served.url + CHAT, json=BODY)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    if reply.raw is not None:
        assert first.content == reply.raw
    assert second.headers["x-cache"] == "MISS"
    assert upstream.count == 2
    assert incomplete(served) - before == 2


STREAMS = [
    sse(chunk("Hel"), chunk("lo")),  # ends cleanly: no [DONE], no finish_reason
    sse(chunk("Hel"), chunk("lo", "stop")),  # a finish reason, but no [DONE]
    sse(chunk("Hel"), chunk(None), "[DONE]"),  # [DONE], but no finish reason
    sse(
        chunk("Hel"),
        {"error": {"message": "overloaded", "type": "server_error"}},
        chunk("lo", "stop"),
        "[DONE]",
    ),
    sse(chunk("Hel"), "{not json", chunk("lo", "stop"), "[DONE]"),
    sse(chunk("Hel"), chunk("lo", "stop")) + b'data: {"choices": [',  # stops inside an event
    sse(chunk("a", "stop", 0), chunk("b", None, 1), "[DONE]"),  # the second choice never finished
]


@pytest.mark.parametrize(
    "raw",
    STREAMS,
    ids=["no-end", "no-done", "no-finish", "error-event", "malformed-line", "cut-event", "one-choice-open"],
)
def test_a_stream_that_is_not_whole_is_never_replayed(served: Served, upstream: Upstream, raw: bytes) -> None:
    """A stream without its end, or with an error or a malformed event, is relayed but not stored."""
    reply = Reply(raw=raw, content_type="text/event-stream", length=-1)
    upstream.play(reply, reply)
    before = incomplete(served)
    bodies = []
    for _ in range(2):
        with httpx.stream("POST", served.url + CHAT, json={**BODY, "stream": True}) as response:
            bodies.append((response.headers["x-cache"], response.read()))
    assert bodies[1][0] == "MISS"
    assert bodies[0][1] == bodies[1][1] == raw
    assert upstream.count == 2
    assert incomplete(served) - before == 2


def test_a_whole_stream_is_stored(served: Served, upstream: Upstream) -> None:
    """The control: the same stream with a finish reason and [DONE] is replayed from cache."""
    raw = sse(chunk("Hel"), chunk("lo", "stop"), "[DONE]")
    upstream.play(Reply(raw=raw, content_type="text/event-stream", length=-1))
    client = openai.OpenAI(base_url=served.url + "/v1", api_key="k", max_retries=0)
    texts = []
    for _ in range(2):
        stream = client.chat.completions.create(model="m", messages=BODY["messages"], stream=True)
        texts.append("".join(c.choices[0].delta.content or "" for c in stream))
    assert texts == ["Hello", "Hello"]
    assert upstream.count == 1


def test_the_sdk_raises_on_a_stream_the_upstream_cut(served: Served, upstream: Upstream) -> None:
    """A stream the upstream breaks off mid-body ends in an error event: the SDK raises, nothing is stored."""
    partial = sse(chunk("Hel"))
    reply = Reply(raw=partial, content_type="text/event-stream", length=len(partial) + 500)
    upstream.play(reply, reply)
    client = openai.OpenAI(base_url=served.url + "/v1", api_key="k", max_retries=0)
    for _ in range(2):
        stream = client.chat.completions.create(model="m", messages=BODY["messages"], stream=True)
        with pytest.raises(openai.APIError, match="stream failed"):
            list(stream)
    assert upstream.count == 2


def test_a_body_cut_short_is_a_502_in_the_openai_shape(served: Served, upstream: Upstream) -> None:
    """Content-Length 1000, 20 bytes, then close: 502 with an OpenAI error body, never a bare 500."""
    reply = Reply(raw=b'{"id": "x", "choices', length=1000)
    upstream.play(reply, reply)
    client = openai.OpenAI(base_url=served.url + "/v1", api_key="k", max_retries=0)
    for _ in range(2):
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="m", messages=BODY["messages"])
        assert caught.value.status_code == 502
        assert caught.value.response.json()["error"]["type"] == "api_error"
    assert upstream.count == 2


def test_an_upstream_stalled_mid_body_is_a_502(served: Served, upstream: Upstream) -> None:
    """An upstream that goes silent mid-body past the timeout gets the client a 502."""
    release = threading.Event()
    upstream.play(Reply(raw=b'{"id": "x", "choices', length=1000, stall=release))
    try:
        response = httpx.post(served.url + CHAT, json=BODY, timeout=30)
    finally:
        release.set()
    assert response.status_code == 502
    assert "ReadTimeout" in response.json()["error"]["message"]


def test_a_compressed_answer_reaches_the_client_readable(served: Served, upstream: Upstream) -> None:
    """An upstream that gzips its answer (OpenAI does) is decoded for the client, and on hits."""
    payload = {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    }
    upstream.play(
        Reply(raw=gzip.compress(json.dumps(payload).encode()), headers={"content-encoding": "gzip"})
    )
    client = openai.OpenAI(base_url=served.url + "/v1", api_key="k", max_retries=0)
    answers = [client.chat.completions.create(model="m", messages=BODY["messages"]) for _ in range(2)]
    assert [a.choices[0].message.content for a in answers] == ["hi", "hi"]
    assert upstream.count == 1


def test_serve_takes_an_upstream_timeout(tmp_path: Path, upstream: Upstream) -> None:
    """`memollm serve --upstream-timeout` bounds how long a silent upstream holds a request."""
    release = threading.Event()
    upstream.play(Reply(raw=b'{"id": "x", "choices', length=1000, stall=release))
    with ServeProcess(upstream.url, "--sqlite", str(tmp_path / "p.db"), "--upstream-timeout", "0.5") as serve:
        try:
            response = httpx.post(serve.url + CHAT, json=BODY, timeout=30)
        finally:
            release.set()
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "api_error"


# -- error-bounded semantic hits compare the answers, not the envelopes -------------------------

# Re-phrasings, none of them the same question spelled otherwise (those share one entry: exact hits).
OPENERS = ["", "Explain ", "Describe ", "Define ", "Can you explain ", "I need to understand "]
CLOSERS = ["", " in simple terms", " briefly", " for a beginner", " with an example", " in networking"]
PARAPHRASES = [f"{o}what is a proxy server?{c}" for o in OPENERS for c in CLOSERS]


def _bounded_proxy(upstream: Upstream, embedder: object) -> Served:
    from memollm.asgi.proxy import build_app

    semantic = memollm.Semantic(max_error=0.2, seed=7)
    return Served(build_app(upstream.url, policy=Policy(semantic=semantic, embedder=embedder)))


def _ask_all(served: Served) -> list[tuple[str, str]]:
    marks = []
    for text in PARAPHRASES:
        body = {"model": "m", "messages": [{"role": "user", "content": text}], "temperature": 0}
        response = httpx.post(served.url + CHAT, json=body, headers={"authorization": "Bearer sk-a"})
        marks.append((response.headers["x-cache"], response.json()["choices"][0]["message"]["content"]))
    return marks


def test_bounded_semantic_hits_never_serve_answers_that_differ(upstream: Upstream, embedder: object) -> None:
    """An upstream that answers each re-phrasing differently: every check finds it wrong, none is served."""
    upstream.play(*[Reply(body=completion_body(f"Answer number {i}.")) for i in range(len(PARAPHRASES))])
    with _bounded_proxy(upstream, embedder) as served:
        marks = _ask_all(served)
        stats = served.app.stats()
    assert [mark for mark, _ in marks].count("SEMANTIC-HIT") == 0
    assert stats.semantic_checks > 0
    assert stats.semantic_wrong == stats.semantic_checks
    assert upstream.count == len(PARAPHRASES)


def test_bounded_semantic_hits_serve_once_answers_agree(upstream: Upstream, embedder: object) -> None:
    """An upstream whose answer is the same for every re-phrasing: after enough checks, hits are served."""
    same = completion_body("A proxy forwards your requests to another server.")
    upstream.play(*[Reply(body=same) for _ in PARAPHRASES])
    with _bounded_proxy(upstream, embedder) as served:
        marks = _ask_all(served)
        stats = served.app.stats()
    hits = [text for mark, text in marks if mark == "SEMANTIC-HIT"]
    assert hits
    assert set(hits) == {"A proxy forwards your requests to another server."}
    assert stats.semantic_wrong == 0
    assert upstream.count == len(PARAPHRASES) - len(hits)


def completion_body(text: str) -> dict[str, Any]:
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    }
