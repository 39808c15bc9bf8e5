"""A forwarding proxy to an OpenAI-compatible API, and ``build_app`` for ``memollm serve``."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from ..errors import AllKeysExhaustedError
from ..metrics.text import metrics_text, own_registry
from ..policy import Policy
from ..resilience.failover import Failover
from ..resilience.keypool import KeyPool
from .middleware import CacheMiddleware
from .replies import (
    Refusal,
    StatusError,
    error_body,
    read_bounded,
    refuse,
    reply,
    reply_json,
    send_exhausted,
    send_refusal,
    upstream_headers,
)
from .types import Message, Receive, Scope, Send

__all__ = ["Proxy", "build_app", "metrics_text"]

_DROP_REQUEST = frozenset(
    {b"host", b"content-length", b"connection", b"accept-encoding", b"transfer-encoding"}
)


class Proxy:
    """Forwards every request to ``upstream`` (httpx, pooled connections), streaming answers back.

    Also answers ``/healthz`` and ``/metrics`` (Prometheus text: ``metrics``, by default an
    installation of :mod:`memollm.metrics.prometheus` of its own). Requests larger than
    ``max_body`` get 413; an unreachable upstream, or an answer that fails or stalls past
    ``timeout`` mid-read, gets 502. Answers are read whole before they are passed on (up to
    ``max_response`` bytes; streams pass on as they arrive, and one that fails ends with an
    error event). With ``keys``, requests go upstream with the pool's keys instead of the
    client's own Authorization.
    """

    def __init__(
        self,
        upstream: str,
        *,
        max_body: int = 4 * 1024 * 1024,
        timeout: float = 120.0,
        keys: KeyPool | None = None,
        client: Any = None,
        metrics: Any = None,
        max_response: int = 64 * 1024 * 1024,
    ) -> None:
        import httpx

        self.upstream = upstream.rstrip("/")
        self.max_response = max_response
        # Base URLs of OpenAI-compatible APIs usually end in /v1, as clients' requests start
        # with it: either form of --upstream works, and /v1 is never sent twice.
        self._v1 = urlsplit(self.upstream).path.endswith("/v1")
        self.max_body = max_body
        self.keys = keys
        # Its own Prometheus registry, with its event hook: uninstalled when the app shuts down.
        self.metrics = metrics if metrics is not None else own_registry()
        self.client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)),
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
            await reply_json(send, 200, {"status": "ok"})
            return
        if scope.get("method") == "GET" and path == "/metrics":
            registry = None if self.metrics is None else self.metrics.registry
            await reply(send, 200, metrics_text(registry).encode(), b"text/plain; version=0.0.4")
            return
        body = await self._body(receive)
        if body is None:
            await refuse(send, 413, f"request body over {self.max_body} bytes")
            return
        await self._forward(scope, body, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.client.aclose()  # finish in-flight connections, then close the pool
                if self.metrics is not None:
                    self.metrics.uninstall()
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
        target = _target(scope)
        if target is None:
            await refuse(send, 400, "the request target must be an absolute path without control characters")
            return
        if self._v1 and (target == "/v1" or target.startswith(("/v1/", "/v1?"))):
            target = target[3:]
        headers = _sendable([(k, v) for k, v in scope.get("headers", []) if k.lower() not in _DROP_REQUEST])
        if headers is None:
            await refuse(send, 400, "a request header has a name or value that cannot be sent")
            return
        failover = None if self.keys is None else Failover(self.keys)
        refused: Refusal | None = None
        while True:
            key = None
            if failover is not None:
                try:
                    key = failover.key()
                except AllKeysExhaustedError as exc:
                    await send_exhausted(send, refused, exc)
                    return
                headers = [(k, v) for k, v in headers if k.lower() != b"authorization"]
                headers.append((b"authorization", f"Bearer {key}".encode()))
            response = await self._send_upstream(scope["method"], self.upstream + target, headers, body, send)
            if response is None:
                return
            if key is None or failover is None:
                break
            if response.status_code < 400:
                failover.ok(key)
                break
            # Read the (small) error to classify it: a spent key says so in the body.
            refused = Refusal(
                response.status_code,
                list(response.headers.items()),
                await read_bounded(response, self._httpx.HTTPError),
            )
            if not failover.failed(key, StatusError(refused)):
                await send_refusal(send, refused)
                return
            # this key is set aside: the same request goes out with the next one
        await self._relay(response, send)

    async def _relay(self, response: Any, send: Send) -> None:
        """The upstream's answer to the client: a stream as it comes, anything else read whole first."""
        try:
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                await self._relay_stream(response, send)
            else:
                await self._relay_whole(response, send)
        finally:
            await response.aclose()

    async def _relay_whole(self, response: Any, send: Send) -> None:
        """Read the answer before answering: one that fails mid-read becomes a 502, never a cut 200.

        Past ``max_response`` bytes it is streamed on as it comes (a failure then cuts it off).
        """
        chunks, size = [], 0
        body = response.aiter_bytes()  # decoded: the client gets no Content-Encoding from here
        try:
            async for chunk in body:
                chunks.append(chunk)
                size += len(chunk)
                if size > self.max_response:
                    break
        except self._httpx.HTTPError as exc:
            failed = type(exc).__name__
            await refuse(send, 502, f"the upstream's answer failed mid-read: {failed}", "api_error")
            return
        headers = upstream_headers(response)
        if size <= self.max_response:
            headers.append((b"content-length", str(size).encode()))
            await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
            await send({"type": "http.response.body", "body": b"".join(chunks)})
            return
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": b"".join(chunks), "more_body": True})
        async for chunk in body:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def _relay_stream(self, response: Any, send: Send) -> None:
        """Pass server-sent events on as they arrive."""
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": upstream_headers(response),
            }
        )
        try:
            async for chunk in response.aiter_bytes():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except self._httpx.HTTPError as exc:
            # The status has gone out: end with an error event, as OpenAI reports errors mid-stream,
            # so clients raise instead of taking a cut stream for a whole one.
            message = f"the upstream's stream failed: {type(exc).__name__}"
            event = b"\n\ndata: " + json.dumps(error_body(message, "api_error")).encode() + b"\n\n"
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def _send_upstream(
        self, method: str, url: str, headers: list[tuple[bytes, bytes]], body: bytes, send: Send
    ) -> Any:
        """The upstream's streaming response, or None once an error has been answered."""
        httpx = self._httpx
        try:
            request = self.client.build_request(method, url, headers=headers, content=body)
            return await self.client.send(request, stream=True)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError, TypeError):
            await refuse(send, 400, "the request cannot be forwarded as sent")
        except httpx.HTTPError as exc:
            await refuse(send, 502, f"upstream unreachable: {type(exc).__name__}", "api_error")
        return None


# Bytes a request target may hold: visible ASCII, no spaces or control characters (RFC 9112).
_TARGET = re.compile(rb"/[\x21-\x7e]*")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def _target(scope: Scope) -> str | None:
    """The path and query to forward, percent-encoded as the client sent them; None if unusable."""
    raw: bytes = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogateescape")
    query: bytes = scope.get("query_string", b"")
    if not _TARGET.fullmatch(raw) or (query and not _TARGET.fullmatch(b"/" + query)):
        return None
    return raw.decode("ascii") + (f"?{query.decode('ascii')}" if query else "")


def _sendable(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]] | None:
    """Headers with surrounding whitespace trimmed (it is not part of a value); None if one cannot be sent.

    Forwarding a header the HTTP client refuses would fail the request, and clients log what
    they refuse, credentials included.
    """
    out = []
    for name, value in headers:
        trimmed = value.strip(b" \t")
        if not _TOKEN.fullmatch(name) or _BAD_VALUE.search(trimmed):
            return None
        out.append((name, trimmed))
    return out


def build_app(
    upstream: str,
    *,
    policy: Policy | None = None,
    tenant_header: str | None = None,
    max_body: int = 4 * 1024 * 1024,
    keys: KeyPool | None = None,
    timeout: float = 120.0,
) -> CacheMiddleware:
    """The ``memollm serve`` app: the caching middleware in front of the forwarding proxy.

    ``timeout``: seconds the upstream may stay silent (before answering, or mid-answer).
    """
    proxy = Proxy(upstream, max_body=max_body, keys=keys, timeout=timeout)
    return CacheMiddleware(proxy, policy=policy, tenant_header=tenant_header, max_body=max_body)
