"""A forwarding proxy to an OpenAI-compatible API, and ``build_app`` for ``memollm serve``."""

from __future__ import annotations

import json
from typing import Any

from .._cache import global_stats
from ..policy import Policy
from ..resilience.classify import Failure, classify
from ..resilience.keypool import KeyPool
from .middleware import CacheMiddleware, Message, Receive, Scope, Send

__all__ = ["Proxy", "build_app", "metrics_text"]

_DROP_REQUEST = frozenset(
    {b"host", b"content-length", b"connection", b"accept-encoding", b"transfer-encoding"}
)
_DROP_RESPONSE = frozenset(
    {"content-length", "transfer-encoding", "connection", "content-encoding", "keep-alive"}
)


class Proxy:
    """Forwards every request to ``upstream`` (httpx, pooled connections), streaming answers back.

    Also answers ``/healthz`` and ``/metrics`` (Prometheus text). Requests larger than
    ``max_body`` get 413; an unreachable upstream gets 502. With ``keys``, requests go
    upstream with the pool's keys instead of the client's own Authorization.
    """

    def __init__(
        self,
        upstream: str,
        *,
        max_body: int = 4 * 1024 * 1024,
        timeout: float = 120.0,
        keys: KeyPool | None = None,
        client: Any = None,
    ) -> None:
        import httpx

        self.upstream = upstream.rstrip("/")
        self.max_body = max_body
        self.keys = keys
        self.client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=5.0),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )
        self._httpx = httpx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection (http or lifespan)."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope.get("path", "")
        if scope.get("method") == "GET" and path == "/healthz":
            await _json(send, 200, {"status": "ok"})
            return
        if scope.get("method") == "GET" and path == "/metrics":
            await _reply(send, 200, metrics_text().encode(), b"text/plain; version=0.0.4")
            return
        body = await self._body(receive)
        if body is None:
            await _json(send, 413, {"error": {"message": f"request body over {self.max_body} bytes"}})
            return
        await self._forward(scope, body, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.client.aclose()  # finish in-flight connections, then close the pool
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _body(self, receive: Receive) -> bytes | None:
        chunks, size = [], 0
        while True:
            message: Message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    async def _forward(self, scope: Scope, body: bytes, send: Send) -> None:
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() not in _DROP_REQUEST]
        key = None
        if self.keys is not None:
            key = self.keys.acquire()
            headers = [(k, v) for k, v in headers if k.lower() != b"authorization"]
            headers.append((b"authorization", f"Bearer {key}".encode()))
        query = scope.get("query_string", b"").decode("latin-1")
        url = self.upstream + scope.get("path", "") + (f"?{query}" if query else "")
        request = self.client.build_request(scope["method"], url, headers=headers, content=body)
        try:
            response = await self.client.send(request, stream=True)
        except self._httpx.HTTPError as exc:
            await _json(send, 502, {"error": {"message": f"upstream unreachable: {type(exc).__name__}"}})
            return
        if key is not None and self.keys is not None:
            if response.status_code == 200:
                self.keys.report_ok(key)
            else:
                self.keys.report(key, _failure_of(response.status_code, response.headers))
        try:
            kept = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()
                    if k.lower() not in _DROP_RESPONSE]  # fmt: skip
            await send({"type": "http.response.start", "status": response.status_code, "headers": kept})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()


def _failure_of(status: int, headers: Any) -> Failure:
    class _Status(Exception):
        status_code = status

    return classify(_Status())


async def _reply(send: Send, status: int, body: bytes, ctype: bytes) -> None:
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Send, status: int, payload: dict[str, Any]) -> None:
    await _reply(send, status, json.dumps(payload).encode(), b"application/json")


def metrics_text() -> str:
    """Every cached function's metrics in the Prometheus text format.

    With prometheus-client installed (the ``prometheus`` extra): :mod:`memollm.metrics.prometheus`
    on a registry of the proxy's own, histograms included. Without it, the totals over all
    functions, written by hand in the same format.
    """
    try:
        from ..metrics import prometheus
    except ImportError:
        return _plain_metrics()
    return prometheus.exposition(_registry(prometheus)).decode()


_own_registry: Any = None


def _registry(prometheus: Any) -> Any:
    global _own_registry  # noqa: PLW0603 - one registry per process, made on first use
    if _own_registry is None:
        from prometheus_client import CollectorRegistry

        _own_registry = CollectorRegistry()
        prometheus.install(_own_registry)
    return _own_registry


def _plain_metrics() -> str:
    stats = global_stats()
    lines = [
        "# HELP memollm_hits_total Cache hits, by tier.",
        "# TYPE memollm_hits_total counter",
        *(f'memollm_hits_total{{tier="{tier}"}} {n}' for tier, n in sorted(stats.hits.items())),
    ]
    for name in ("misses", "stores", "bypasses", "errors", "corrupt", "stale", "coalesced", "retries"):
        lines += [
            f"# HELP memollm_{name}_total Cache {name}.",
            f"# TYPE memollm_{name}_total counter",
            f"memollm_{name}_total {getattr(stats, name)}",
        ]
    lines += ["# HELP memollm_hit_rate Hits over lookups.", "# TYPE memollm_hit_rate gauge",
              f"memollm_hit_rate {stats.hit_rate:.6f}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def build_app(
    upstream: str,
    *,
    policy: Policy | None = None,
    tenant_header: str | None = None,
    max_body: int = 4 * 1024 * 1024,
    keys: KeyPool | None = None,
) -> CacheMiddleware:
    """The ``memollm serve`` app: the caching middleware in front of the forwarding proxy."""
    proxy = Proxy(upstream, max_body=max_body, keys=keys)
    try:  # histograms need the event hook from the first request on
        from ..metrics import prometheus

        _registry(prometheus)
    except ImportError:
        pass
    return CacheMiddleware(proxy, policy=policy, tenant_header=tenant_header, max_body=max_body)
