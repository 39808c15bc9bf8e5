"""Fuzzing the middleware and `memollm serve`: whatever a client sends, no 500 comes from memollm."""

from __future__ import annotations

import json
import random
import socket
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memollm.asgi import CacheMiddleware

from ..servers import Served
from ..upstream import Upstream

PATHS = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses", "/other"]
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant", 3]), "content": JSONISH}
)
REQUEST = st.fixed_dictionaries(
    {
        "model": st.one_of(st.text(max_size=10), JSONISH),
        "messages": st.one_of(st.lists(MESSAGE, max_size=3), JSONISH),
    },
    optional={"stream": JSONISH, "temperature": JSONISH, "tools": JSONISH},
)
BODIES = st.one_of(
    REQUEST.map(lambda r: json.dumps(r).encode()),
    st.binary(max_size=200),
    JSONISH.map(lambda v: json.dumps(v).encode()),
    st.text(max_size=50).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),
)
HEADER_NAMES = st.sampled_from(
    [b"authorization", b"api-key", b"x-api-key", b"cache-control", b"x-memollm-namespace", b"content-type",
     b"x-tenant", b"accept"]
)  # fmt: skip
HEADERS = st.lists(st.tuples(HEADER_NAMES, st.binary(max_size=40)), max_size=6)


class App:
    """An upstream that answers every request with 200 or 400, never 500."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        self.calls += 1
        status = 200 if self.calls % 5 else 400
        body = json.dumps({"choices": [{"message": {"content": "ok"}}], "n": self.calls}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})


async def drive(app: Any, path: str, headers: list[tuple[bytes, bytes]], body: bytes, cut: int | None) -> int:
    """One request through an ASGI app; ``cut`` splits the body and drops the rest (a client gone)."""
    messages: list[dict[str, Any]]
    if cut is None:
        messages = [{"type": "http.request", "body": body, "more_body": False}]
    else:
        messages = [
            {"type": "http.request", "body": body[:cut], "more_body": True},
            {"type": "http.disconnect"},
        ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(), "headers": headers,
             "query_string": b""}  # fmt: skip
    await app(scope, receive, send)
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1, sent
    return int(starts[0]["status"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from(PATHS),
    headers=HEADERS,
    body=BODIES,
    cut=st.one_of(st.none(), st.integers(0, 50)),
    json_type=st.booleans(),
)
async def test_the_middleware_never_answers_500(
    path: str, headers: list[tuple[bytes, bytes]], body: bytes, cut: int | None, json_type: bool
) -> None:
    """Random paths, headers (repeated, binary, odd cache-control), bodies (cut short too): no 500."""
    app = App()
    middleware = CacheMiddleware(app, tenant_header="x-tenant" if cut == 7 else None)
    if json_type:
        headers = [(b"content-type", b"application/json"), *headers]
    for _ in range(2):  # the second time through, hits and the fast path
        status = await drive(middleware, path, list(headers), body, cut)
        assert status in (200, 400)


def send_raw(port: int, request: bytes, *, half_close: bool) -> int | None:
    """One raw request; the status line's code, or None when the server closed without answering."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        if half_close:
            sock.shutdown(socket.SHUT_WR)  # the body is cut short: the client gives up
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    if not data.startswith(b"HTTP/1.1 "):
        return None
    return int(data.split(b" ", 2)[1])


def test_serve_never_answers_500(proxy: Served, upstream: Upstream) -> None:
    """A seeded stream of hostile requests over real HTTP: every answer is the upstream's or a 4xx."""
    rng = random.Random(13)
    targets = [b"/v1/chat/completions", b"/v1/chat/completions%00", b"/v1/%0d%0a", b"/v1/embeddings?x=%7f",
               b"/v1/responses", b"/v1/x%20y"]  # fmt: skip
    statuses = []
    for i in range(150):
        kind = rng.randrange(6)
        if kind == 0:
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(80)))
        elif kind == 1:
            body = b"[" * rng.randrange(1, 2000) + b"]"
        elif kind == 2:
            body = json.dumps({"model": "m", "messages": [{"role": "user", "content": f"q{i % 7}"}]}).encode()
        elif kind == 3:
            body = b'{"model": "m", "messages": [{"role": "user", "content": "\\ud800"}], "stream": true}'
        elif kind == 4:
            body = json.dumps(
                {"model": rng.choice([1, None, [], "m"]), "messages": rng.choice([{}, "x", 3])}
            ).encode()
        else:
            body = json.dumps(
                {"model": "m", "messages": [{"role": "user", "content": "x" * rng.randrange(3000)}]}
            ).encode()
        headers = [b"content-type: application/json"]
        if rng.random() < 0.5:
            headers.append(b"authorization: Bearer sk-" + str(rng.randrange(3)).encode())
        if rng.random() < 0.2:
            odd = [b"cache-control: max-age=inf", b"cache-control: no-cache, max-age=1e400",
                   b"x-memollm-namespace: \xff\xfe", b"cache-control: max-age=" + b"9" * 300]  # fmt: skip
            headers.append(rng.choice(odd))
        declared = len(body)
        cut = rng.random() < 0.1
        if cut:
            declared += 10  # promises more than it sends, then half-closes
        head = [b"POST " + rng.choice(targets) + b" HTTP/1.1", b"host: x", b"connection: close",
                b"content-length: " + str(declared).encode(), *headers]  # fmt: skip
        status = send_raw(proxy.port, b"\r\n".join(head) + b"\r\n\r\n" + body, half_close=cut)
        if status is not None:
            statuses.append(status)
        if not cut:
            assert status is not None
    assert statuses
    assert all(s < 500 for s in statuses), sorted(set(statuses))
