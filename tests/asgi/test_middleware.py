"""CacheMiddleware in front of a small ASGI app, driven in-process through httpx."""

from __future__ import annotations

import gc
import json
import time
from typing import Any

import httpx
import pytest

from memollm import Policy
from memollm.asgi import CacheMiddleware

PATH = "/v1/chat/completions"


class App:
    """An OpenAI-ish ASGI app: counts calls, echoes requests, streams SSE events when asked."""

    def __init__(self) -> None:
        self.calls = 0
        self.bodies: list[bytes] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.calls += 1
        self.bodies.append(body)
        try:
            request = json.loads(body)
        except ValueError:
            request = {}
        status = request.get("status", 200) if isinstance(request, dict) else 200
        if isinstance(request, dict) and request.get("stream"):
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"text/event-stream"), *self.exchange()]})  # fmt: skip
            for i in range(3):
                done = "stop" if i == 2 else None
                choice = {
                    "index": 0,
                    "delta": {"content": f"part{i} of call {self.calls}"},
                    "finish_reason": done,
                }
                event = json.dumps({"choices": [choice]})
                await send(
                    {"type": "http.response.body", "body": f"data: {event}\n\n".encode(), "more_body": True}
                )
            await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})
            return
        payload = json.dumps({"call": self.calls, "echo": request}).encode()
        headers = [(b"content-type", b"application/json"), (b"x-upstream", b"yes"), *self.exchange()]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def exchange(self) -> list[tuple[bytes, bytes]]:
        """Headers that describe one exchange, as OpenAI's API sends them."""
        return [
            (b"x-request-id", f"req-{self.calls}".encode()),
            (b"x-ratelimit-remaining-requests", str(100 - self.calls).encode()),
            (b"set-cookie", f"__cf_bm=visitor{self.calls}; path=/".encode()),
            (b"openai-processing-ms", b"812"),
            (b"age", b"77"),  # a CDN in front of the upstream: a hit sets its own
        ]


@pytest.fixture
def app() -> App:
    return App()


def client(app: App, **options: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=CacheMiddleware(app, **options))
    return httpx.AsyncClient(transport=transport, base_url="http://proxy")


BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}


async def test_identical_request_is_a_hit(app: App) -> None:
    """A repeated request is served from cache with the same content; key order and spacing do not matter."""
    async with client(app) as c:
        first = await c.post(PATH, json=BODY)
        reordered = json.dumps(dict(reversed(list(BODY.items()))), indent=4)
        second = await c.post(PATH, content=reordered, headers={"content-type": "application/json"})
    assert first.headers["x-cache"] == "MISS"
    assert second.headers["x-cache"] == "HIT"
    assert second.json() == first.json()
    assert second.headers["x-upstream"] == "yes"
    assert "age" in second.headers
    assert app.calls == 1


PER_EXCHANGE = ("x-request-id", "x-ratelimit-remaining-requests", "set-cookie", "openai-processing-ms")


@pytest.mark.parametrize("stream", [False, True])
async def test_hits_never_replay_another_exchanges_headers(app: App, stream: bool) -> None:
    """A miss passes the upstream's request id, rate limits and cookies on; a hit has none of them."""
    body = {**BODY, "stream": True} if stream else BODY
    async with client(app) as c:
        first = await c.post(PATH, json=body)
        hits = [await c.post(PATH, json=body) for _ in range(3)]  # full path, then the fast path
    assert first.headers["x-cache"] == "MISS"
    assert first.headers["x-request-id"] == "req-1"
    assert first.headers["set-cookie"].startswith("__cf_bm=visitor1")
    assert all(first.headers[name] for name in PER_EXCHANGE)
    for hit in hits:
        assert hit.headers["x-cache"] == "HIT"
        assert hit.content == first.content
        assert hit.headers["content-type"] == first.headers["content-type"]
        assert not [name for name in PER_EXCHANGE if name in hit.headers]
        assert hit.headers.get_list("age") in (["0"], ["1"])  # one Age, the cache's
    assert app.calls == 1


async def test_only_200_is_stored(app: App) -> None:
    """An upstream error is returned as sent and never cached."""
    async with client(app) as c:
        bad = {**BODY, "status": 500}
        first, second = await c.post(PATH, json=bad), await c.post(PATH, json=bad)
    assert (first.status_code, second.status_code) == (500, 500)
    assert second.headers["x-cache"] == "MISS"
    assert app.calls == 2


async def test_cache_control(app: App) -> None:
    """no-store neither reads nor writes; no-cache skips the read and stores the fresh answer."""
    async with client(app) as c:
        await c.post(PATH, json=BODY)
        skipped = await c.post(PATH, json=BODY, headers={"cache-control": "no-store"})
        assert skipped.headers["x-cache"] == "BYPASS"
        fresh = await c.post(PATH, json=BODY, headers={"cache-control": "no-cache"})
        assert fresh.headers["x-cache"] == "MISS"
        after = await c.post(PATH, json=BODY)
        short = await c.post(PATH, json={**BODY, "n": 2}, headers={"cache-control": "max-age=5"})
    assert after.headers["x-cache"] == "HIT"
    assert after.json() == fresh.json() != skipped.json()
    assert short.headers["x-cache"] == "MISS"
    assert app.calls == 4


async def test_tenants_never_share(app: App) -> None:
    """Requests with different Authorization headers never share entries; the same one does."""
    async with client(app) as c:
        await c.post(PATH, json=BODY, headers={"authorization": "Bearer sk-tenant-a"})
        other = await c.post(PATH, json=BODY, headers={"authorization": "Bearer sk-tenant-b"})
        same = await c.post(PATH, json=BODY, headers={"authorization": "Bearer sk-tenant-a"})
    assert other.headers["x-cache"] == "MISS"
    assert same.headers["x-cache"] == "HIT"
    assert app.calls == 2


async def test_tenant_header(app: App) -> None:
    """A configured tenant header scopes entries instead of Authorization."""
    async with client(app, tenant_header="X-Tenant-Id") as c:
        await c.post(PATH, json=BODY, headers={"x-tenant-id": "acme", "authorization": "Bearer 1"})
        shared = await c.post(PATH, json=BODY, headers={"x-tenant-id": "acme", "authorization": "Bearer 2"})
        other = await c.post(PATH, json=BODY, headers={"x-tenant-id": "globex"})
    assert (shared.headers["x-cache"], other.headers["x-cache"]) == ("HIT", "MISS")


async def test_namespace_header(app: App) -> None:
    """X-MemoLLM-Namespace keeps separate entries."""
    async with client(app) as c:
        await c.post(PATH, json=BODY)
        other = await c.post(PATH, json=BODY, headers={"x-memollm-namespace": "team-b"})
    assert other.headers["x-cache"] == "MISS"


async def test_streams_replay_event_by_event(app: App) -> None:
    """A streamed answer is stored event by event and replayed as the same event stream."""
    body = {**BODY, "stream": True}
    async with client(app) as c:
        first = await c.post(PATH, json=body)
        second = await c.post(PATH, json=body)
    assert first.headers["content-type"] == "text/event-stream"
    assert second.headers["x-cache"] == "HIT"
    assert second.content == first.content
    assert first.content.count(b"data: ") == 4
    assert first.content.endswith(b"data: [DONE]\n\n")
    assert app.calls == 1


async def test_a_stream_is_stored_before_the_client_reads_its_end(app: App) -> None:
    """A client that asks again the moment it reads ``[DONE]`` finds the answer (no race)."""
    middleware = CacheMiddleware(app)
    stored_when_done: list[int] = []
    request = json.dumps({**BODY, "stream": True}).encode()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": request, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and b"[DONE]" in message.get("body", b""):
            stored_when_done.append(middleware.stats().stores)

    scope = {
        "type": "http", "method": "POST", "path": PATH, "query_string": b"", "http_version": "1.1",
        "headers": [(b"content-type", b"application/json")], "scheme": "http", "server": ("proxy", 80),
    }  # fmt: skip
    await middleware(scope, receive, send)
    assert stored_when_done == [1]


@pytest.mark.parametrize(
    ("method", "path", "content", "ctype"),
    [
        ("GET", PATH, b"", "application/json"),
        ("POST", "/v1/models", b'{"a": 1}', "application/json"),
        ("POST", PATH, b"not json at all", "application/json"),
        ("POST", PATH, b'["a list"]', "application/json"),
        ("POST", PATH, b'{"a": 1}', "text/plain"),
    ],
    ids=["get", "other-path", "malformed-json", "not-an-object", "wrong-content-type"],
)
async def test_everything_else_passes_through(
    app: App, method: str, path: str, content: bytes, ctype: str
) -> None:
    """Requests the middleware does not cache reach the app unchanged, every time."""
    async with client(app) as c:
        for _ in range(2):
            response = await c.request(method, path, content=content, headers={"content-type": ctype})
            assert "x-cache" not in response.headers
    assert app.calls == 2
    assert app.bodies == [content, content]


async def test_oversized_bodies_pass_through(app: App) -> None:
    """A body above max_body is not cached, and the app still receives all of it."""
    big = json.dumps({**BODY, "padding": "x" * 5000}).encode()
    async with client(app, max_body=1000) as c:
        for _ in range(2):
            await c.post(PATH, content=big, headers={"content-type": "application/json"})
    assert app.bodies == [big, big]


@pytest.mark.parametrize("messages", [1, 3])
async def test_max_body_holds_however_the_body_arrives(app: App, messages: int) -> None:
    """A body handed over in one message (as uvicorn does when it arrived at once) obeys max_body."""
    big = json.dumps({**BODY, "padding": "x" * 5000}).encode()
    cut = len(big) // messages + 1
    parts = [big[i * cut : (i + 1) * cut] for i in range(messages)]
    middleware = CacheMiddleware(app, max_body=1000)
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    for _ in range(2):
        queue = [
            {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
            for i, part in enumerate(parts)
        ]

        async def receive(queue: list[dict[str, Any]] = queue) -> dict[str, Any]:
            return queue.pop(0)

        scope = {"type": "http", "method": "POST", "path": PATH,
                 "headers": [(b"content-type", b"application/json")]}  # fmt: skip
        await middleware(scope, receive, send)
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert [dict(m["headers"]).get(b"x-cache") for m in starts] == [None, None]  # passed through
    assert app.bodies == [big, big]


async def test_no_header_carries_a_key(app: App) -> None:
    """Responses carry outcome headers only: no cache key a tenant could probe with."""
    policy = Policy(namespace="probe")
    async with client(app, policy=policy) as c:
        await c.post(PATH, json=BODY)
        hit = await c.post(PATH, json=BODY)
    added = {k for k in hit.headers if k.startswith("x-cache") or k == "age"}
    assert added == {"x-cache", "age"}
    assert all("probe:" not in v for v in hit.headers.values())


async def test_repeats_take_the_fast_path_and_keep_every_rule(app: App) -> None:
    """Repeats of the exact same bytes are served from the memory tier's decoded copy.

    They count as hits, per tenant; no-cache and no-store still reach the app; a cleared
    entry misses.
    """
    middleware = CacheMiddleware(app)
    transport = httpx.ASGITransport(app=middleware)
    auth_a = {"authorization": "Bearer a"}
    async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as c:
        first = await c.post(PATH, json=BODY, headers=auth_a)
        await c.post(PATH, json=BODY, headers=auth_a)  # a full-path hit: now known
        assert len(middleware.known) == 1
        (known,) = middleware.known.entries()
        cache = known.cache
        hits_before = cache.stats().hit_count
        for _ in range(3):
            fast = await c.post(PATH, json=BODY, headers=auth_a)
            assert fast.headers["x-cache"] == "HIT"
            assert fast.content == first.content
            assert "age" in fast.headers
        assert cache.stats().hit_count == hits_before + 3
        assert app.calls == 1
        other = await c.post(PATH, json=BODY, headers={"authorization": "Bearer b"})
        assert other.headers["x-cache"] == "MISS"
        refreshed = await c.post(PATH, json=BODY, headers={**auth_a, "cache-control": "no-cache"})
        assert refreshed.headers["x-cache"] == "MISS"
        skipped = await c.post(PATH, json=BODY, headers={**auth_a, "cache-control": "no-store"})
        assert skipped.headers["x-cache"] == "BYPASS"
        assert app.calls == 4
        cache.clear()
        after = await c.post(PATH, json=BODY, headers=auth_a)
        assert after.headers["x-cache"] == "MISS"
        assert app.calls == 5


async def test_fast_path_hits_reach_event_hooks(app: App) -> None:
    """With a hook subscribed (as `memollm serve` does for its histograms), fast hits emit events."""
    from memollm import events

    seen: list[events.CacheEvent] = []
    unsubscribe = events.subscribe(seen.append)
    try:
        middleware = CacheMiddleware(app)
        transport = httpx.ASGITransport(app=middleware)
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as c:
            for _ in range(4):  # a miss, a full-path hit, then two fast hits
                started = time.perf_counter()
                response = await c.post(PATH, json=BODY)
                elapsed = time.perf_counter() - started
                assert response.status_code == 200
    finally:
        unsubscribe()
    assert [e.outcome for e in seen] == ["miss", "hit", "hit", "hit"]
    assert [e.tier for e in seen] == [None, "memory", "memory", "memory"]
    fast = seen[-1]
    assert fast.tier == "memory" and fast.detail is None and 0 < fast.latency <= elapsed
    assert fast.function == "memollm.asgi.response"
    assert app.calls == 1


async def test_semantic_hits_through_the_middleware_stay_within_a_tenant(app: App, embedder: Any) -> None:
    """A re-phrased question is a SEMANTIC-HIT for its tenant only, with its similarity in a header."""
    policy = Policy(semantic=0.85, embedder=embedder)
    first = {**BODY, "messages": [{"role": "user", "content": "How do I create a list in Python?"}]}
    again = {**BODY, "messages": [{"role": "user", "content": "What's the way to make a Python list?"}]}
    async with client(app, policy=policy) as c:
        await c.post(PATH, json=first, headers={"authorization": "Bearer a"})
        other_tenant = await c.post(PATH, json=again, headers={"authorization": "Bearer b"})
        same_tenant = await c.post(PATH, json=again, headers={"authorization": "Bearer a"})
    assert other_tenant.headers["x-cache"] == "MISS"
    assert same_tenant.headers["x-cache"] == "SEMANTIC-HIT"
    assert float(same_tenant.headers["x-cache-similarity"]) >= 0.85
    assert app.calls == 2


def test_a_stale_answer_never_takes_the_failed_calls_headers() -> None:
    """When the app ran but the answer sent comes from the cache, the app's headers are not used."""
    from memollm.asgi.headers import own_headers
    from memollm.core.observe import Observation

    live = {"headers": [(b"x-request-id", b"req-of-the-failed-call")]}
    for outcome, expected in (("stale", None), ("hit", None), ("coalesced", None), ("miss", live["headers"])):
        seen = Observation()
        seen.outcome = outcome
        assert own_headers(live, seen) == expected


async def test_fast_path_hits_reach_the_latency_histogram(app: App) -> None:
    """The serve metrics count every hit, the fast path's included, without per-hit events."""
    prometheus_client = pytest.importorskip("prometheus_client")
    from memollm.metrics import prometheus

    registry = prometheus_client.CollectorRegistry()
    metrics = prometheus.install(registry)
    try:
        labels = {"function": "memollm.asgi.response"}

        def sample(name: str, **more: str) -> float:
            # Totals are per function name for the whole process: other tests' middlewares add to them.
            return registry.get_sample_value(name, {**labels, **more}) or 0.0

        gc.collect()  # totals cover live caches only: earlier tests' dead middlewares must go first
        before = {
            "hit": sample("memollm_lookup_seconds_count", outcome="hit"),
            "miss": sample("memollm_lookup_seconds_count", outcome="miss"),
            "memory": sample("memollm_hits_total", tier="memory"),
        }
        middleware = CacheMiddleware(app)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=middleware), base_url="http://p") as c:
            for _ in range(6):  # a miss, a full-path hit, then four fast hits
                assert (await c.post(PATH, json=BODY)).status_code == 200
        assert metrics.pending == 6  # a miss and a full-path hit as events, four fast hits as sunk tuples
        prometheus.exposition(registry)  # a scrape folds them in
        assert sample("memollm_lookup_seconds_count", outcome="hit") - before["hit"] == 5
        assert sample("memollm_lookup_seconds_count", outcome="miss") - before["miss"] == 1
        assert sample("memollm_hits_total", tier="memory") - before["memory"] == 5
    finally:
        metrics.uninstall()


def test_known_requests_are_bounded_by_entries_and_bytes() -> None:
    """The fast path's memory of request bytes stays within bounds; served entries outlive idle ones."""
    from memollm.asgi._known import KnownRequests

    known = KnownRequests(max_entries=3, max_bytes=100, max_body=40)
    ident = [("/p", "default", None, None, bytes([i]) * 30) for i in range(4)]
    for i in range(3):
        known.add(ident[i], f"k{i}", cache=None)
    assert len(known) == 3 and known.bytes == 90
    assert all(entry.used for entry in known.entries())  # just answered: a second chance each
    for entry in known.entries():
        entry.used = False  # as after an eviction pass
    served = known.get(ident[0])
    assert served is not None
    served.used = True  # what a fast-path reply does
    known.add(ident[3], "k3", cache=None)  # over 100 bytes: k0 was served, so k1 goes
    assert known.get(ident[1]) is None
    assert [k.key for k in known.entries()] == ["k2", "k3", "k0"]
    assert known.bytes == 90
    known.add(ident[3], "k3-again", cache=None)  # replacing does not count twice
    assert known.bytes == 90 and len(known) == 3
    for _ in range(5):  # every entry served: still bounded, and the new one is kept
        for entry in known.entries():
            entry.used = True
        known.add(("/p", "default", None, None, bytes([9]) * 30), "k9", cache=None)
        assert len(known) == 3 and known.bytes == 90
    assert "k9" in [k.key for k in known.entries()]
    known.add(("/p", "default", None, None, b"x" * 41), "big", cache=None)
    assert "big" not in [k.key for k in known.entries()]
    identity = known.identities()[0]
    known.forget(identity)
    known.forget(identity)  # twice is harmless
    assert known.bytes == 60 and known.get(identity) is None


async def test_an_answer_gone_from_memory_leaves_the_fast_path(app: App) -> None:
    """When the memory tier no longer holds an answer, its request bytes are forgotten, then relearned."""
    middleware = CacheMiddleware(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=middleware), base_url="http://p") as c:
        await c.post(PATH, json=BODY)
        assert len(middleware.known) == 1
        (entry,) = middleware.known.entries()
        entry.cache.clear()
        again = await c.post(PATH, json=BODY)
        assert again.headers["x-cache"] == "MISS" and app.calls == 2
        assert len(middleware.known) == 1  # the miss relearned it
        assert (await c.post(PATH, json=BODY)).headers["x-cache"] == "HIT"


async def test_namespace_and_max_age_combinations_are_bounded(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    """Clients choose namespaces and TTLs; past 64 pairs, new ones pass through uncached with a warning."""
    middleware = CacheMiddleware(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=middleware), base_url="http://p") as c:
        for i in range(64):
            r = await c.post(PATH, json=BODY, headers={"x-memollm-namespace": f"ns{i}"})
            assert r.headers["x-cache"] == "MISS"
        with caplog.at_level("WARNING", logger="memollm"):
            extra = await c.post(PATH, json=BODY, headers={"x-memollm-namespace": "ns-over"})
        assert extra.status_code == 200 and "x-cache" not in extra.headers
        assert "namespace and max-age combinations" in caplog.text
        known_ns = await c.post(PATH, json=BODY, headers={"x-memollm-namespace": "ns3"})
        assert known_ns.headers["x-cache"] == "HIT"  # existing ones keep working
    assert middleware.slots == 64


async def test_memollm_never_warns_about_its_own_functions(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    """The middleware's cached functions are memollm's own: no closure warning reaches the user."""
    caplog.set_level("WARNING", logger="memollm")
    async with client(app) as c:
        await c.post(PATH, json=BODY)
        await c.post(PATH, json={**BODY, "stream": True})
    assert not [r for r in caplog.records if "cannot be keyed" in r.getMessage()]
