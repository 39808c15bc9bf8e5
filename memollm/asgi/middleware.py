"""CacheMiddleware: caching for OpenAI-compatible endpoints of any ASGI app, streaming included."""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping
from contextlib import ExitStack
from dataclasses import replace
from typing import Any, NamedTuple

from .. import complete, sse
from .._decorator import cached_llm
from .._log import warn_limited
from ..outcomes import lookup
from ..policy import Policy
from ..statistics import CacheStats
from ..switches import bypass, refresh, tenant
from ..usage import Usage, json_body_usage, sse_usage, text_of, usage_of
from ._known import KnownRequests, age, header_lines

__all__ = ["DEFAULT_PATHS", "CacheMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses")
# Never passed on from the app: hop-by-hop, and what the server or the cache sets itself.
_HOP_BY_HOP = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "date", "server", "age"}
)
# Passed on to the caller of a miss, never replayed on a hit: they describe one upstream
# exchange (its id, rate limits, timing, cookies), not the answer.
_PER_EXCHANGE = frozenset(
    {"set-cookie", "x-request-id", "request-id", "cf-ray", "alt-svc", "via", "retry-after",
     "openai-processing-ms", "x-envoy-upstream-service-time", "strict-transport-security"}
)  # fmt: skip
_SERVED_FROM_CACHE = frozenset({"hit", "semantic-hit", "stale", "coalesced"})
_PER_EXCHANGE_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-", "ratelimit-")
_NAMESPACE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_MAX_SLOTS = 64  # (namespace, max-age) pairs, each with its own cached functions
_NO_CONTROL: dict[str, Any] = {}
_MAX_AGE_DIGITS = 10
_VERSION = "memollm.asgi-1"  # bump when what the cached functions store changes
# Headers carrying a caller's credentials. The tenant is the first of them present (in this
# order), unless a tenant_header is configured.
_KEY_HEADERS = frozenset({b"authorization", b"api-key", b"x-api-key"})
_CANONICAL = re.compile(rb"Bearer \S+").fullmatch
_OUTCOMES = {"hit": "HIT", "semantic-hit": "SEMANTIC-HIT", "miss": "MISS", "stale": "STALE",
             "coalesced": "HIT", "bypass": "BYPASS", "uncacheable": "BYPASS"}  # fmt: skip

# The request being answered: the cached functions below only see (path, body). The dict
# receives the live response's full headers when the app runs for this very request.
_request: contextvars.ContextVar[tuple[Scope, Receive, dict[str, Any]]] = contextvars.ContextVar(
    "memollm_asgi_request"
)


class CacheMiddleware:
    """Answer repeated OpenAI-style requests from cache.

    Caches POST requests with a JSON body on ``paths``; everything else passes through
    untouched. The key is the canonical JSON body (key order and whitespace do not
    matter) plus the tenant: a hash of the caller's credentials (``Authorization``, else
    ``api-key``, else ``x-api-key``), or of ``tenant_header``'s value; never the raw token.
    Two copies of one of those headers get 400. Only complete answers with status 200 are
    stored (see :mod:`memollm.complete`); the rest pass through uncached, counted in
    ``stats().incomplete``.
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
        self.tenant_header = tenant_header.lower().encode() if tenant_header else None
        # Headers that say who is asking: one request must not carry two of any of them.
        self._identity = _KEY_HEADERS | ({self.tenant_header} if self.tenant_header else set())
        self.max_body = max_body
        self._caches: dict[tuple[str, float | None], tuple[Any, Any]] = {}
        # Exact request bytes seen before -> their key and cache: a repeat skips JSON parsing
        # and canonicalisation when the memory tier holds the answer. Bounded; public to inspect.
        self.known = KnownRequests()

    def stats(self) -> CacheStats:
        """What this middleware's cache did, over every namespace and max-age, streams included."""
        return CacheStats.combine(fn.cache.stats() for pair in list(self._caches.values()) for fn in pair)

    @property
    def slots(self) -> int:
        """How many (namespace, max-age) pairs have cached functions (at most 64)."""
        return len(self._caches)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") not in self.paths:
            await self.app(scope, receive, send)
            return
        raw_headers = scope.get("headers", ())
        headers = dict(raw_headers)  # ASGI servers lowercase header names
        if len(headers) != len(raw_headers) and _repeated(raw_headers, self._identity):
            # The tenant would come from one copy while the upstream may use the other.
            await _error(send, 400, "a request must carry at most one Authorization or API key header")
            return
        message = await receive()
        if message["type"] == "http.request" and not message.get("more_body"):
            body = message.get("body", b"")  # the usual case: one message
            whole, more = len(body) <= self.max_body, False
        else:
            body, whole, more = await self._read_rest(message, receive)
        json_body = whole and b"json" in headers.get(b"content-type", b"")
        raw_control = headers.get(b"cache-control")
        control = _cache_control(raw_control) if raw_control else _NO_CONTROL
        namespace = self.policy.namespace
        asked = headers.get(b"x-memollm-namespace")
        if asked and _NAMESPACE.match(text := asked.decode("latin-1")):
            namespace = text
        scope_id = _tenant_of(headers, self.tenant_header)
        known = (scope["path"], namespace, control.get("max-age"), scope_id, body)
        # Exactly known bytes were valid JSON when first seen: answer before parsing them again.
        if json_body and (control is _NO_CONTROL or not ("no-cache" in control or "no-store" in control)):
            found = self.known.get(known)
            if found is not None:
                reply = found.reply()
                if reply is not None:
                    await send({"type": "http.response.start", "status": reply[0], "headers": reply[1]})
                    await send({"type": "http.response.body", "body": reply[2]})
                    return
                self.known.forget(known)  # gone from the memory tier: the full path decides
        replay = _replaying(body, more, receive)
        request = _parse(body) if json_body else None
        if request is None:  # not ours to cache: the app sees the request as it came
            await self.app(scope, replay, send)
            return
        live: dict[str, Any] = {}
        asked = _Asked(namespace, control, scope_id, known, live)
        try:
            await self._through_cache(scope, replay, _tracked(send, live), request, asked)
        except Exception as exc:
            if live.get("called") or live.get("sent"):
                raise  # the app's own failure, or one after the answer began: not ours to hide
            # A failure of the cache itself: the request still reaches the app, uncached.
            warn_limited(("asgi-fail-open", type(exc)), "memollm middleware: serving a request "
                         "uncached after an internal error: %r", exc)  # fmt: skip
            await self.app(scope, replay, send)

    async def _through_cache(
        self, scope: Scope, replay: Receive, send: Send, request: dict[str, Any], asked: _Asked
    ) -> None:
        """The full path: look up, call the app on a miss, store, answer with the cache's headers."""
        namespace, control, scope_id, known, live = asked
        functions = self._functions(namespace, control.get("max-age"))
        if functions is None:
            warn_limited(
                ("asgi-slots", id(self)),
                "more than %d namespace and max-age combinations: requests with new ones pass "
                "through uncached (use fewer X-MemoLLM-Namespace or max-age values)",
                _MAX_SLOTS,
            )
            await self.app(scope, replay, send)
            return
        value_fn, stream_fn = functions
        token = _request.set((scope, replay, live))
        try:
            with ExitStack() as stack:
                stack.enter_context(tenant(scope_id))
                seen = stack.enter_context(lookup())
                if "no-store" in control:
                    stack.enter_context(bypass())
                elif "no-cache" in control:
                    stack.enter_context(refresh())
                if request.get("stream") is True:
                    await self._send_stream(stream_fn(scope["path"], request), seen, live, send)
                else:
                    response = await value_fn(scope["path"], request)
                    await self._send(response, seen, live, send)
                    if seen.outcome in ("hit", "miss"):
                        self.known.add(known, value_fn.cache.key_for(scope["path"], request), value_fn.cache)
        finally:
            _request.reset(token)

    # -- the request ------------------------------------------------------------------

    async def _read_rest(self, first: Message, receive: Receive) -> tuple[bytes, bool, bool]:
        """The body begun by ``first``: (what was read, whether it is whole, whether more follows).

        Not whole past max_body (reading stops there; the app reads the rest) or cut off.
        """
        chunks: list[bytes] = []
        size = 0
        message = first
        while True:
            if message["type"] != "http.request":
                return b"".join(chunks), False, False
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = bool(message.get("more_body"))
            if size > self.max_body or not more:
                return b"".join(chunks), size <= self.max_body, more
            message = await receive()

    def _functions(self, namespace: str, max_age: float | None) -> tuple[Any, Any] | None:
        """The cached functions for a namespace and TTL (built once, sharing one key space).

        None past _MAX_SLOTS pairs: clients choose both, and each pair holds objects for good.
        """
        slot = (namespace, max_age)
        found = self._caches.get(slot)
        if found is not None:
            return found
        if len(self._caches) >= _MAX_SLOTS:
            return None
        policy = replace(
            self.policy,
            namespace=namespace,
            ttl=max_age if max_age else self.policy.ttl,
            cache_if=complete.requiring(_answer, self.policy.cache_if),
            usage=self.policy.usage or _response_usage,
            answer_text=self.policy.answer_text or _response_text,
            # Named, not fingerprinted: the functions below close over this middleware, which
            # is no part of an answer (and fingerprinting would warn users about memollm's own code).
            version=self.policy.version if self.policy.version is not None else _VERSION,
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

    async def _send(
        self, response: tuple[int, str, bytes], seen: Any, live: dict[str, Any], send: Send
    ) -> None:
        status, text, body = response
        own = _own_headers(live, seen)
        head = own if own is not None else header_lines(text)
        headers = [*head, (b"content-length", str(len(body)).encode()), *_marks(seen)]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _send_stream(self, items: Any, seen: Any, live: dict[str, Any], send: Send) -> None:
        started = False
        held = b""  # the stream's last event, sent once the stream is stored (see sse.may_end)
        try:
            async for item in items:
                if not started:  # the first item is the response's status and headers
                    status, headers = item
                    own = _own_headers(live, seen)
                    head = own if own is not None else _headers(headers)
                    await send({"type": "http.response.start", "status": status,
                                "headers": [*head, *_marks(seen)]})  # fmt: skip
                    started = True
                    continue
                if held:
                    await send({"type": "http.response.body", "body": held, "more_body": True})
                    held = b""
                if sse.may_end(item):
                    held = item
                else:
                    await send({"type": "http.response.body", "body": item, "more_body": True})
            await send({"type": "http.response.body", "body": held})
        finally:
            await items.aclose()


class _Asked(NamedTuple):
    """What a request asks of the cache besides its body."""

    namespace: str
    control: dict[str, Any]
    scope_id: str | None  # the tenant's hash
    known: tuple[Any, ...]  # the fast path's key: path, namespace, max-age, tenant, body bytes
    live: dict[str, Any]  # what happened to this very request: the app's headers, called, sent


def _repeated(headers: Iterable[tuple[bytes, bytes]], names: frozenset[bytes] | set[bytes]) -> bool:
    """Whether any of ``names`` occurs more than once."""
    seen: set[bytes] = set()
    for name, _ in headers:
        if name in names:
            if name in seen:
                return True
            seen.add(name)
    return False


def _tenant_of(headers: dict[bytes, bytes], tenant_header: bytes | None) -> str | None:
    """The tenant: a hash of the tenant header, or of the caller's credentials (never the raw token).

    Spellings of one credential are one tenant: surrounding and repeated spaces are dropped
    and the scheme's case is ignored (``Bearer sk-1`` = ``bearer  sk-1``).
    """
    if tenant_header is not None:
        raw = headers.get(tenant_header)
    else:
        raw = headers.get(b"authorization")
        if raw is None:
            raw = headers.get(b"api-key") or headers.get(b"x-api-key")
    if raw is None:
        return None
    # Most requests are already in canonical form ("Bearer <token>"): hashed as they are.
    if tenant_header is not None or _CANONICAL(raw) is None:
        words = raw.split()
        if tenant_header is None and len(words) == 2:
            words[0] = words[0].capitalize()
        raw = b" ".join(words)
    return hashlib.sha256(raw).hexdigest()[:32]


def _tracked(send: Send, live: dict[str, Any]) -> Send:
    """``send`` that notes in ``live`` when the answer has begun."""

    async def tracked(message: Message) -> None:
        live["sent"] = True
        await send(message)

    return tracked


async def _error(send: Send, status: int, message: str) -> None:
    """An error in the OpenAI error shape."""
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "code": None}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"x-cache", b"BYPASS")]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _parse(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
        return None
    return data if isinstance(data, dict) else None


def _replaying(body: bytes, more: bool, receive: Receive) -> Receive:
    """A receive that gives the app the body already read, then the client's later messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replay


def _cache_control(raw: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in raw.decode("latin-1").lower().split(","):
        name, _, value = part.strip().partition("=")
        if name == "max-age":
            # delta-seconds are digits (RFC 9111); "inf", "1e400" or a 400-digit number are ignored.
            if value.isascii() and value.isdigit() and len(value) <= _MAX_AGE_DIGITS and int(value) > 0:
                out["max-age"] = float(value)
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


def _answer(result: Any) -> bool | complete.Incomplete:
    """Whether a response is a complete answer: 200, and a well-formed body or finished stream."""
    if isinstance(result, tuple):  # a whole response: (status, headers, body)
        return result[0] == 200 and complete.body(result[2])
    if not result or not isinstance(result[0], (list, tuple)) or result[0][0] != 200:
        return False  # a stream: (status, headers), then its chunks
    return complete.stream(b"".join(c for c in result[1:] if isinstance(c, bytes)))


def _response_text(result: Any) -> str:
    """The answer a stored response holds: its completion's text, or its stream's deltas."""
    if isinstance(result, tuple) and len(result) == 3 and isinstance(result[2], bytes):
        try:
            return text_of(json.loads(result[2]))
        except (ValueError, RecursionError):
            return ""
    if isinstance(result, (list, tuple)):
        return text_of(sse.objects(b"".join(c for c in result[1:] if isinstance(c, bytes))))
    return text_of(result)


def _headers(pairs: list[list[str]]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs]


def _marks(seen: Any) -> list[tuple[bytes, bytes]]:
    marks = [(b"x-cache", _OUTCOMES.get(seen.outcome or "", "MISS").encode())]
    if seen.created is not None and seen.outcome in _SERVED_FROM_CACHE:
        marks.append((b"age", age(seen.created)))
    if seen.similarity is not None:
        marks.append((b"x-cache-similarity", f"{seen.similarity:.4f}".encode()))
    return marks


def _own_headers(live: dict[str, Any], seen: Any) -> list[tuple[bytes, bytes]] | None:
    """The app's full headers when the answer sent is the app's answer to this very request."""
    if seen.outcome in _SERVED_FROM_CACHE:
        return None  # a stale answer after a failed call, say: never the failure's headers
    return live.get("headers")


def _passed_on(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The app's headers a caller of a miss receives (the cache sets its own x-cache ones)."""
    out = []
    for k, v in headers:
        name = k.lower()
        if name.decode("latin-1") not in _HOP_BY_HOP and not name.startswith(b"x-cache"):
            out.append((name, v))
    return out


def _kept(headers: list[tuple[bytes, bytes]]) -> list[list[str]]:
    """The headers stored with an answer and replayed on its hits."""
    kept = []
    for k, v in headers:
        name = k.decode("latin-1")
        if name not in _PER_EXCHANGE and not name.startswith(_PER_EXCHANGE_PREFIXES):
            kept.append([name, v.decode("latin-1")])
    return kept


async def _call_app(app: ASGIApp) -> tuple[int, str, bytes]:
    """Run the app on the current request and collect its whole response.

    As (status, headers as "name: value" lines, body): all immutable, so the memory tier
    can keep it decoded and a repeated hit skips decoding.
    """
    scope, receive, live = _request.get()
    live["called"] = True
    status, headers, chunks = 500, [], []

    async def capture(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            live["headers"] = own = _passed_on(message.get("headers", ()))
            status, headers = message["status"], _kept(own)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, capture)
    return status, "\n".join(f"{k}: {v}" for k, v in headers), b"".join(chunks)


async def _stream_app(app: ASGIApp) -> AsyncIterator[Any]:
    """Run the app on the current request; yield (status, headers), then each body chunk as sent."""
    scope, receive, live = _request.get()
    live["called"] = True
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
                live["headers"] = own = _passed_on(message.get("headers", ()))
                yield (message["status"], _kept(own))
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
