"""`memollm serve`'s app over real HTTP (uvicorn), driven by the openai SDK, in front of a local upstream."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

import memollm
from memollm import Policy
from memollm.asgi.proxy import build_app
from memollm.backends.redis import RedisBackend

from ..servers import RedisServer, Served, free_port
from ..upstream import Upstream, error

pytest.importorskip("uvicorn", reason="the server extra is not installed")


def sdk(proxy: Served, key: str = "sk-client-a") -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0, timeout=10)


MESSAGES = [{"role": "user", "content": "What is a proxy?"}]


def test_identical_request_is_served_from_cache(proxy: Served, upstream: Upstream) -> None:
    """A repeated request gets the same completion, marked HIT, without reaching the upstream."""
    client = sdk(proxy)
    first = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES, temperature=0)
    second = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES, temperature=0)
    assert first.headers["x-cache"] == "MISS"
    assert second.headers["x-cache"] == "HIT"
    assert second.parse().model_dump() == first.parse().model_dump()
    assert upstream.count == 1


async def test_async_sdk(proxy: Served, upstream: Upstream) -> None:
    """The async SDK gets the same caching."""
    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key="k", max_retries=0, timeout=10)
    a = await client.chat.completions.create(model="m", messages=MESSAGES)
    b = await client.chat.completions.create(model="m", messages=MESSAGES)
    await client.close()
    assert a.choices[0].message.content == b.choices[0].message.content
    assert upstream.count == 1


def test_streams_replay_the_same_events(proxy: Served, upstream: Upstream) -> None:
    """A streamed completion is replayed as the same sequence of chunks, as a stream."""
    client = sdk(proxy)

    def stream() -> list[str]:
        chunks = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        return [c.choices[0].delta.content or "" for c in chunks]

    first, second = stream(), stream()
    assert len(first) > 2
    assert second == first
    assert upstream.count == 1


def test_tenants_never_share(proxy: Served, upstream: Upstream) -> None:
    """Clients with different API keys never get each other's cached answers."""
    sdk(proxy, "sk-client-a").chat.completions.create(model="m", messages=MESSAGES)
    sdk(proxy, "sk-client-b").chat.completions.create(model="m", messages=MESSAGES)
    assert upstream.count == 2
    assert upstream.keys_used() == ["sk-client-a", "sk-client-b"]  # forwarded as sent, never cached


def test_upstream_errors_pass_through_uncached(proxy: Served, upstream: Upstream) -> None:
    """An upstream error reaches the client as the upstream sent it and is not cached."""
    upstream.play(error(429), error(429))
    client = sdk(proxy)
    for _ in range(2):
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="m", messages=MESSAGES)
    assert upstream.count == 2


def test_health_metrics_and_limits(proxy: Served, upstream: Upstream) -> None:
    """The proxy answers /healthz and /metrics itself, and refuses bodies over its limit with 413."""
    assert httpx.get(proxy.url + "/healthz").json() == {"status": "ok"}
    sdk(proxy).chat.completions.create(model="m", messages=MESSAGES)
    sdk(proxy).chat.completions.create(model="m", messages=MESSAGES)
    metrics = httpx.get(proxy.url + "/metrics").text
    parser = pytest.importorskip("prometheus_client.parser", reason="the prometheus extra is not installed")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in parser.text_string_to_metric_families(metrics)
        for s in family.samples
    }
    fn = ("function", "memollm.asgi.response")
    assert samples[("memollm_hits_total", (fn, ("tier", "memory")))] >= 1
    assert samples[("memollm_hit_rate", (fn,))] > 0
    # The upstream reports usage 5 + 7 per answer; the hit saved them.
    assert samples[("memollm_tokens_saved_total", (fn, ("kind", "input")))] >= 5
    assert samples[("memollm_tokens_saved_total", (fn, ("kind", "output")))] >= 7
    assert samples[("memollm_lookup_seconds_count", (fn, ("outcome", "hit")))] >= 1
    big = httpx.post(proxy.url + "/v1/chat/completions", json={"messages": [{"content": "x" * 100_000}]})
    assert big.status_code == 413


def test_malformed_requests_pass_through(proxy: Served, upstream: Upstream) -> None:
    """Malformed JSON and other paths reach the upstream unchanged."""
    response = httpx.post(
        proxy.url + "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert "x-cache" not in response.headers
    assert upstream.count == 1
    assert upstream.requests[0]["body"] == {"raw": "{not json"}


def test_upstream_down(tmp_path: Path) -> None:
    """An unreachable upstream is a 502 from the proxy, not a crash."""
    app = build_app(f"http://127.0.0.1:{free_port()}")
    with Served(app) as served:
        response = httpx.post(served.url + "/v1/chat/completions", json={"messages": MESSAGES})
    assert response.status_code == 502


def test_redis_killed_mid_test(upstream: Upstream, fresh_redis: RedisServer) -> None:
    """With its Redis gone the proxy keeps answering (from memory and the upstream)."""
    memollm.register_tier("redis", RedisBackend(fresh_redis.url))
    app = build_app(upstream.url, policy=Policy(tiers=("memory", "redis")))
    with Served(app) as served:
        client = sdk(served)
        client.chat.completions.create(model="m", messages=MESSAGES)
        fresh_redis.kill()
        for i in range(5):
            reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": f"q{i}"}])
            assert reply.choices[0].message.content == f"echo: q{i}"
        assert (
            client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES).headers["x-cache"]
            == "HIT"
        )
