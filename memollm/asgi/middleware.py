"""CacheMiddleware: caching for OpenAI-compatible endpoints of any ASGI app, streaming included."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping
from contextlib import ExitStack
from dataclasses import replace
from typing import Any

from .._control import bypass, lookup, refresh, tenant
from .._decorator import cached_llm
from ..policy import Policy
from ..usage import Usage, json_body_usage, sse_usage, usage_of

__all__ = ["DEFAULT_PATHS", "CacheMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses")
_HOP_BY_HOP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive", "date", "server"})
_NAMESPACE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_KNOWN_LIMIT = 50_000
_OUTCOMES = {"hit": "HIT", "semantic-hit": "SEMANTIC-HIT", "miss": "MISS", "stale": "STALE",
             "coalesced": "HIT", "bypass": "BYPASS", "uncacheable": "BYPASS"}  # fmt: skip

# The request being answered: the cached functions below only see (path, body).
_request: contextvars.ContextVar[tuple[Scope, Receive]] = contextvars.ContextVar("memollm_asgi_request")


class CacheMiddleware:
    """Answer repeated OpenAI-style requests from cache.

    Caches POST requests with a JSON body on ``paths``; everything else passes through
    untouched. The key is the canonical JSON body (key order and whitespace do not
    matter) plus the tenant: a hash of the ``Authorization`` header, or of
    ``tenant_header``'s value; never the raw token. Only 200 responses are stored.
    ``"stream": true`` requests are recorded event by event and replayed as a stream.

    Request headers: ``Cache-Control: no-cache`` (skip the read, store the fresh answer),
    ``no-store`` (neither), ``max-age=N`` (the TTL to store with); ``X-MemoLLM-Namespace``.
    Response headers: ``X-Cache`` (HIT, MISS, SEMANTIC-HIT, BYPASS, STALE), ``Age``,
    ``X-Cache-Similarity`` on semantic hits. No header ever carries a cache key.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        paths: Iterable[str] = DEFAULT_PATHS,
        policy: Policy | None = None,
        tenant_header: str | None = None,
        max_body: int = 4 * 1024 * 1024,
    ) -> None:
        self.app = app
        self.paths = frozenset(paths)
        self.policy = policy or Policy()
        self.tenant_header = tenant_header.lower().encode() if tenant_header else b"authorization"
        self.max_body = max_body
        self._caches: dict[tuple[str, float | None], tuple[Any, Any]] = {}
        # Exact request bytes seen before -> (storage key, cache): a repeat skips JSON parsing
        # and canonicalisation when the memory tier holds the answer.
        self._known: dict[tuple[Any, ...], tuple[str, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") not in self.paths:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))  # ASGI servers lowercase header names
        body, whole = await self._read_body(receive)
        json_body = whole and b"json" in headers.get(b"content-type", b"")
        raw_control = headers.get(b"cache-control", b"")
        control = _cache_control(raw_control) if raw_control else {}
        namespace = self.policy.namespace
        asked = headers.get(b"x-memollm-namespace")
        if asked and _NAMESPACE.match(text := asked.decode("latin-1")):
            namespace = text
        scope_id = self._tenant(headers)
        known = (scope["path"], namespace, control.get("max-age"), scope_id, body)
        # Exactly known bytes were valid JSON when first seen: answer before parsing them again.
        if (
            json_body
            and "no-cache" not in control
            and "no-store" not in control
            and await self._fast_hit(known, send)
        ):
            return
        replay = _replaying(body, receive)
        request = _parse(body) if json_body else None
        if request is None:  # not ours to cache: the app sees the request as it came
            await self.app(scope, replay, send)
            return
        value_fn, stream_fn = self._functions(namespace, control.get("max-age"))
        token = _request.set((scope, replay))
        try:
            with ExitStack() as stack:
                stack.enter_context(tenant(scope_id))
                seen = stack.enter_context(lookup())
                if "no-store" in control:
                    stack.enter_context(bypass())
                elif "no-cache" in control:
                    stack.enter_context(refresh())
                if request.get("stream") is True:
                    await self._send_stream(stream_fn(scope["path"], request), seen, send)
                else:
                    response = await value_fn(scope["path"], request)
                    await self._send(response, seen, send)
                    if seen.outcome in ("hit", "miss") and len(self._known) < _KNOWN_LIMIT:
                        key = value_fn.cache.key_for(scope["path"], request)
                        self._known[known] = (key, value_fn.cache)
        finally:
            _request.reset(token)

    async def _fast_hit(self, known: tuple[Any, ...], send: Send) -> bool:
        """Serve a repeat of exactly known request bytes from the memory tier's decoded copy."""
        found = self._known.get(known)
        if found is None:
            return False
        key, cache = found
        served = cache.serve_memo(key)
        if served is None:
            return False
        (status, text, body), created = served
        headers = [*_header_lines(text), (b"content-length", str(len(body)).encode()), (b"x-cache", b"HIT")]
        if created is not None:
            headers.append((b"age", str(max(0, int(time.time() - created))).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True

    # -- the request ------------------------------------------------------------------

    async def _read_body(self, receive: Receive) -> tuple[bytes, bool]:
        """The body, and whether it is whole (False past max_body: then it is not cached)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks), False
            chunk = message.get("body", b"")
            if not message.get("more_body"):
                if not chunks:  # the usual case: the whole body in one message
                    return chunk, True
                chunks.append(chunk)
                return b"".join(chunks), True
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_body:
                return b"".join(chunks), False

    def _tenant(self, headers: dict[bytes, bytes]) -> str | None:
        raw = headers.get(self.tenant_header)
        return None if raw is None else hashlib.sha256(raw).hexdigest()[:32]

    def _functions(self, namespace: str, max_age: float | None) -> tuple[Any, Any]:
        """The cached functions for a namespace and TTL (built once, sharing one key space)."""
        slot = (namespace, max_age)
        found = self._caches.get(slot)
        if found is not None:
            return found
        policy = replace(
            self.policy,
            namespace=namespace,
            ttl=max_age if max_age else self.policy.ttl,
            cache_if=_stored_if_200,
            usage=self.policy.usage or _response_usage,
        )

        @cached_llm(policy=policy, name="memollm.asgi.response")
        async def response(path: str, body: dict[str, Any]) -> tuple[int, str, bytes]:
            return await _call_app(self.app)

        @cached_llm(policy=policy, name="memollm.asgi.stream")
        async def stream(path: str, body: dict[str, Any]) -> AsyncIterator[Any]:
            async for item in _stream_app(self.app):
                yield item

        self._caches[slot] = response, stream
        return response, stream

    # -- the response -----------------------------------------------------------------

    async def _send(self, response: tuple[int, str, bytes], seen: Any, send: Send) -> None:
        status, text, body = response
        headers = [*_header_lines(text), (b"content-length", str(len(body)).encode()), *_marks(seen)]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _send_stream(self, items: Any, seen: Any, send: Send) -> None:
        started = False
        try:
            async for item in items:
                if not started:  # the first item is the response's status and headers
                    status, headers = item
                    await send({"type": "http.response.start", "status": status,
                                "headers": [*_headers(headers), *_marks(seen)]})  # fmt: skip
                    started = True
                else:
                    await send({"type": "http.response.body", "body": item, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await items.aclose()


def _parse(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the app the body already read, then the client's later messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _cache_control(raw: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in raw.decode("latin-1").lower().split(","):
        name, _, value = part.strip().partition("=")
        if name == "max-age":
            try:
                seconds = float(value)
            except ValueError:
                continue
            if seconds > 0:
                out["max-age"] = seconds
        elif name:
            out[name] = True
    return out


def _response_usage(result: Any, prompt: str, model: str | None) -> Usage:
    """Tokens of a stored response: its JSON body's ``usage``, or its SSE chunks'."""
    if isinstance(result, tuple) and len(result) == 3 and isinstance(result[2], bytes):
        return json_body_usage(result[2], model, prompt)
    if isinstance(result, list):  # a stream: (status, headers), then body chunks
        return sse_usage([b"".join(c for c in result[1:] if isinstance(c, bytes))], model, prompt)
    return usage_of(result, prompt, model)


def _stored_if_200(result: Any) -> bool:
    if isinstance(result, tuple):  # a whole response
        return bool(result[0] == 200)
    return bool(result) and isinstance(result[0], (list, tuple)) and result[0][0] == 200  # a stream


@functools.lru_cache(maxsize=256)
def _header_lines(text: str) -> tuple[tuple[bytes, bytes], ...]:
    # Responses of one upstream repeat the same few header sets: parse each once.
    pairs = []
    for line in text.split("\n") if text else ():
        name, _, value = line.partition(": ")
        pairs.append((name.encode("latin-1"), value.encode("latin-1")))
    return tuple(pairs)


def _headers(pairs: list[list[str]]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs]


def _marks(seen: Any) -> list[tuple[bytes, bytes]]:
    marks = [(b"x-cache", _OUTCOMES.get(seen.outcome or "", "MISS").encode())]
    if seen.created is not None and seen.outcome in ("hit", "semantic-hit", "stale", "coalesced"):
        marks.append((b"age", str(max(0, int(time.time() - seen.created))).encode()))
    if seen.similarity is not None:
        marks.append((b"x-cache-similarity", f"{seen.similarity:.4f}".encode()))
    return marks


def _kept(headers: list[tuple[bytes, bytes]]) -> list[list[str]]:
    kept = []
    for k, v in headers:
        name = k.decode("latin-1").lower()
        if name not in _HOP_BY_HOP and not name.startswith("x-cache"):
            kept.append([name, v.decode("latin-1")])
    return kept


async def _call_app(app: ASGIApp) -> tuple[int, str, bytes]:
    """Run the app on the current request and collect its whole response.

    As (status, headers as "name: value" lines, body): all immutable, so the memory tier
    can keep it decoded and a repeated hit skips decoding.
    """
    scope, receive = _request.get()
    status, headers, chunks = 500, [], []

    async def capture(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status, headers = message["status"], _kept(list(message.get("headers", [])))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, capture)
    return status, "\n".join(f"{k}: {v}" for k, v in headers), b"".join(chunks)


async def _stream_app(app: ASGIApp) -> AsyncIterator[Any]:
    """Run the app on the current request; yield (status, headers), then each body chunk as sent."""
    scope, receive = _request.get()
    queue: asyncio.Queue[Message | None] = asyncio.Queue()

    async def forward(message: Message) -> None:
        await queue.put(message)

    async def run() -> None:
        try:
            await app(scope, receive, forward)
        finally:
            await queue.put(None)

    task = asyncio.ensure_future(run())
    finished = False
    try:
        while True:
            message = await queue.get()
            if message is None:
                break
            if message["type"] == "http.response.start":
                yield (message["status"], _kept(list(message.get("headers", []))))
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    yield message["body"]
                if not message.get("more_body"):
                    break
        await task  # the app's own failure, if any, reaches the caller (and nothing is stored)
        finished = True
    finally:
        if not finished:
            task.cancel()
