"""`memollm serve` over real HTTP against whatever clients send: never a 500 of its own, never a leak."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest

from memollm import KeyPool
from memollm.asgi.proxy import build_app

from ..servers import Served, ServeProcess
from ..upstream import Upstream, error
from .test_proxy import MESSAGES

PATH = "/v1/chat/completions"
BODY = json.dumps({"model": "m", "messages": MESSAGES}).encode()


def raw(
    port: int, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes = BODY
) -> tuple[int, bytes]:
    """Send one HTTP/1.1 request byte for byte (no client library normalising it); (status, body)."""
    lines = [b"POST " + target + b" HTTP/1.1", b"host: proxy", b"content-length: " + str(len(body)).encode(),
             b"connection: close", *(k + b": " + v for k, v in headers)]  # fmt: skip
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), rest


JSON = [(b"content-type", b"application/json")]


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "m", "messages": [{"role": "user", "content": "\\ud800"}]}',
        b'{"model": "m", "messages": [{"role": "user", "content": "\\udc00 and \\ud83d"}]}',
        b"[" * 1000 + b"]" * 1000,
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
        b'{"model": "m", "messages": ' + b"[" * 200 + b"]" * 200 + b"}",
        b"\xff\xfe not utf-8",
    ],
    ids=["lone-surrogate", "surrogates", "deep-array", "deep-object", "deep-messages", "invalid-utf8"],
)
def test_hostile_bodies_never_get_a_500(proxy: Served, upstream: Upstream, body: bytes) -> None:
    """Bodies the cache cannot key are passed to the upstream, which judges them; a repeat is the same."""
    first = httpx.post(proxy.url + PATH, content=body, headers={"content-type": "application/json"})
    second = httpx.post(proxy.url + PATH, content=body, headers={"content-type": "application/json"})
    assert first.status_code == second.status_code == 200  # the upstream's answer
    assert upstream.count >= 1


@pytest.mark.parametrize(
    "target", [b"/v1/chat/completions%00", b"/v1/%09x", b"/v1/%0a", b"/v1/%0d", b"/v1/%7f", b"/v1/chat%20x",
               b"/v1/chat/completions?x=%00"],
)  # fmt: skip
def test_odd_paths_are_forwarded_as_sent(proxy: Served, upstream: Upstream, target: bytes) -> None:
    """Percent-encoded control characters reach the upstream still encoded, never a crash."""
    status, _ = raw(proxy.port, target, JSON)
    assert status == 200
    assert upstream.requests[-1]["path"] == target.decode()


def test_asterisk_target_is_refused(proxy: Served, upstream: Upstream) -> None:
    """The request target ``*`` names no resource: 400 in the OpenAI error shape."""
    status, body = raw(proxy.port, b"*", JSON)
    assert status == 400
    assert json.loads(body)["error"]["type"] == "invalid_request_error"
    assert upstream.count == 0


@pytest.mark.parametrize("max_age", ["inf", "Infinity", "1e400", "9" * 400, "-5", "nan", "1.5", "0x10", ""])
def test_unusable_max_age_is_ignored(proxy: Served, upstream: Upstream, max_age: str) -> None:
    """max-age takes delta-seconds only; anything else is ignored (the default TTL applies)."""
    headers = {"cache-control": f"max-age={max_age}"}
    first = httpx.post(proxy.url + PATH, json={"model": "m", "messages": MESSAGES}, headers=headers)
    second = httpx.post(proxy.url + PATH, json={"model": "m", "messages": MESSAGES}, headers=headers)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.headers["x-cache"] == "HIT"


@pytest.mark.parametrize("name", [b"authorization", b"api-key", b"x-api-key"])
def test_two_credentials_are_refused(proxy: Served, upstream: Upstream, name: bytes) -> None:
    """Two copies of a credential header: 400 (the tenant could come from one, the upstream use the other)."""
    status, body = raw(proxy.port, PATH.encode(), [*JSON, (name, b"Bearer sk-a"), (name, b"Bearer sk-b")])
    assert status == 400
    assert "at most one" in json.loads(body)["error"]["message"]
    assert upstream.count == 0


def test_spellings_of_one_key_are_one_tenant(proxy: Served, upstream: Upstream) -> None:
    """Scheme case and spaces do not make a new tenant; another key does."""
    for value in (b"Bearer sk-same", b"bearer sk-same", b"BEARER   sk-same", b"Bearer sk-same  "):
        status, _ = raw(proxy.port, PATH.encode(), [*JSON, (b"authorization", value)])
        assert status == 200
    raw(proxy.port, PATH.encode(), [*JSON, (b"authorization", b"Bearer sk-other")])
    assert upstream.count == 2


def test_api_key_header_scopes_tenants_too(proxy: Served, upstream: Upstream) -> None:
    """Azure-style api-key clients are tenants like Authorization ones: never shared."""
    raw(proxy.port, PATH.encode(), [*JSON, (b"api-key", b"key-a")])
    raw(proxy.port, PATH.encode(), [*JSON, (b"api-key", b"key-b")])
    raw(proxy.port, PATH.encode(), [*JSON, (b"api-key", b"key-a")])
    assert upstream.count == 2


def test_header_whitespace_is_trimmed_before_forwarding(proxy: Served, upstream: Upstream) -> None:
    """A key with a trailing space is sent without it (the HTTP client would refuse it, and log it)."""
    status, _ = raw(proxy.port, PATH.encode(), [*JSON, (b"authorization", b"Bearer sk-trailing \t")])
    assert status == 200
    assert upstream.keys_used() == ["sk-trailing"]


def test_a_header_that_cannot_be_sent_is_refused(proxy: Served, upstream: Upstream) -> None:
    """A header value holding a control character is refused with 400, not forwarded and not logged."""
    status, body = raw(proxy.port, PATH.encode(), [*JSON, (b"x-note", b"a\x01b")])
    assert status == 400
    assert b"\x01" not in body
    assert upstream.count == 0


def test_a_rate_limited_pool_key_moves_the_request_to_the_next(upstream: Upstream) -> None:
    """In key-pool mode a 429 on one key sends the same request with the next key; the client sees 200."""
    upstream.play(error(429), key="pool-a")
    app = build_app(upstream.url, keys=KeyPool(["pool-a", "pool-b"]))
    with Served(app) as served:
        response = httpx.post(served.url + PATH, json={"model": "m", "messages": MESSAGES})
    assert response.status_code == 200
    assert upstream.keys_used() == ["pool-a", "pool-b"]


def test_a_spent_pool_key_moves_on_and_the_last_refusal_is_returned(upstream: Upstream) -> None:
    """Quota and auth refusals also move on; when every key is refused the client gets the last refusal."""
    upstream.play(error(429, "insufficient_quota"), key="pool-a")
    upstream.play(error(401), key="pool-b")
    app = build_app(upstream.url, keys=KeyPool(["pool-a", "pool-b"]))
    with Served(app) as served:
        response = httpx.post(served.url + PATH, json={"model": "m", "messages": MESSAGES})
        again = httpx.post(
            served.url + PATH, json={"model": "m", "messages": [{"role": "user", "content": "2"}]}
        )
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert again.status_code == 429  # no usable key left: the proxy says so itself
    assert upstream.keys_used() == ["pool-a", "pool-b"]


def test_a_client_error_is_not_retried_on_another_key(upstream: Upstream) -> None:
    """A 400 is about the request, not the key: returned at once."""
    upstream.play(error(400), key="pool-a")
    app = build_app(upstream.url, keys=KeyPool(["pool-a", "pool-b"]))
    with Served(app) as served:
        response = httpx.post(served.url + PATH, json={"model": "m", "messages": MESSAGES})
    assert response.status_code == 400
    assert upstream.keys_used() == ["pool-a"]


CLIENT_KEYS = ["sk-client-secret-one", "sk-client-secret-two"]
POOL_KEYS = ["sk-pool-secret-a", "sk-pool-secret-b"]


@pytest.mark.parametrize("pool", [False, True], ids=["client-keys", "key-pool"])
def test_no_raw_key_reaches_a_log_a_file_or_redis(
    upstream: Upstream, redis_url: str, tmp_path: Path, pool: bool
) -> None:
    """`memollm serve --log-level debug` with Redis and SQLite: every key used appears nowhere.

    Requests carry keys plainly, with a trailing space, in lower case, twice, in a stream, and
    (with a pool) draw a 429; afterwards stdout, stderr, the SQLite files and every Redis value
    are searched for the raw keys.
    """
    import os

    import redis

    env = {**os.environ, "MEMOLLM_API_KEYS": ",".join(POOL_KEYS)} if pool else dict(os.environ)
    if pool:
        upstream.play(error(429), key=POOL_KEYS[0])
    db = tmp_path / "serve.db"
    serve = ServeProcess(
        upstream.url, "--sqlite", str(db), "--redis", redis_url, "--log-level", "debug", env=env
    )
    with serve:
        one, two = CLIENT_KEYS
        sends = [
            [(b"authorization", f"Bearer {one}".encode())],
            [(b"authorization", f"Bearer {one} ".encode())],
            [(b"authorization", f"bearer {two}".encode())],
            [(b"authorization", f"Bearer {one}".encode()), (b"authorization", f"Bearer {two}".encode())],
            [(b"api-key", two.encode())],
            [(b"authorization", f"Bearer {two}\x01".encode())],
        ]
        for i, extra in enumerate(sends):
            body = json.dumps({"model": "m", "messages": [{"role": "user", "content": f"q{i % 2}"}],
                               "stream": i == 2}).encode()  # fmt: skip
            status, _ = raw(serve.port, PATH.encode(), [*JSON, *extra], body)
            assert status in (200, 400)
        httpx.get(serve.url + "/metrics")
    out, err = serve.output
    assert "DEBUG" in err  # the logs were on
    haystacks = {"stdout": out.encode(), "stderr": err.encode()}
    for path in tmp_path.glob("serve.db*"):
        haystacks[path.name] = path.read_bytes()
    admin = redis.Redis.from_url(redis_url)
    for key in admin.scan_iter():
        haystacks[f"redis {key!r}"] = key + (admin.dump(key) or b"")
    assert len(haystacks) > 4  # Redis held entries
    for secret in CLIENT_KEYS + POOL_KEYS:
        found = [where for where, data in haystacks.items() if secret.encode() in data]
        assert found == [], f"{secret} found in {found}"
    if pool:
        assert upstream.keys_used()[:2] == POOL_KEYS  # the 429 moved the request to the next key
