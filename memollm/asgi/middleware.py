"""CacheMiddleware: caching for OpenAI-compatible endpoints of any ASGI app, streaming included."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import ExitStack
from dataclasses import replace
from hashlib import sha256
from typing import Any

from .. import complete, sse
from .._decorator import cached_llm
from .._log import warn_limited
from ..outcomes import lookup
from ..policy import Policy
from ..statistics import CacheStats
from ..switches import bypass, refresh, tenant
from ._known import KnownRequests, header_lines
from .answers import is_answer, response_text, response_usage
from .capture import CURRENT, call_app, stream_app
from .headers import marks, own_headers, stored_headers
from .request import (
    KEY_HEADERS,
    NAMESPACE,
    Asked,
    cache_control,
    known_tenant,
    parse,
    refuse,
    repeated,
    replaying,
    tenant_of,
    tracked,
)
from .types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DEFAULT_PATHS", "CacheMiddleware"]


DEFAULT_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses")
_MAX_SLOTS = 64  # (namespace, max-age) pairs, each with its own cached functions
_NO_CONTROL: dict[str, Any] = {}
_VERSION = "memollm.asgi-1"  # bump when what the cached functions store changes


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
        self._identity = KEY_HEADERS | ({self.tenant_header} if self.tenant_header else set())
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
        if len(headers) != len(raw_headers) and repeated(raw_headers, self._identity):
            # The tenant would come from one copy while the upstream may use the other.
            await refuse(send, 400, "a request must carry at most one Authorization or API key header")
            return
        message = await receive()
        if message["type"] == "http.request" and not message.get("more_body"):
            body = message.get("body", b"")  # the usual case: one message
            whole, more = len(body) <= self.max_body, False
        else:
            body, whole, more = await self._read_rest(message, receive)
        json_body = whole and b"json" in headers.get(b"content-type", b"")
        raw_control = headers.get(b"cache-control")
        control = cache_control(raw_control) if raw_control else _NO_CONTROL
        namespace = self.policy.namespace
        asked = headers.get(b"x-memollm-namespace")
        if asked and NAMESPACE.match(text := asked.decode("latin-1")):
            namespace = text
        # The usual case inline (the caller's Authorization, as sent): this runs on every hit.
        raw = None if self.tenant_header else headers.get(b"authorization")
        who = sha256(raw).digest() if raw else known_tenant(headers, self.tenant_header)
        known = (scope["path"], namespace, control.get("max-age"), who, body)
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
        replay = replaying(body, more, receive)
        request = parse(body) if json_body else None
        if request is None:  # not ours to cache: the app sees the request as it came
            await self.app(scope, replay, send)
            return
        live: dict[str, Any] = {}
        asked = Asked(namespace, control, tenant_of(headers, self.tenant_header), known, live)
        try:
            await self._through_cache(scope, replay, tracked(send, live), request, asked)
        except Exception as exc:
            if live.get("called") or live.get("sent"):
                raise  # the app's own failure, or one after the answer began: not ours to hide
            # A failure of the cache itself: the request still reaches the app, uncached.
            warn_limited(("asgi-fail-open", type(exc)), "memollm middleware: serving a request "
                         "uncached after an internal error: %r", exc)  # fmt: skip
            await self.app(scope, replay, send)

    async def _through_cache(
        self, scope: Scope, replay: Receive, send: Send, request: dict[str, Any], asked: Asked
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
        token = CURRENT.set((scope, replay, live))
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
            CURRENT.reset(token)

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
            cache_if=complete.requiring(is_answer, self.policy.cache_if),
            usage=self.policy.usage or response_usage,
            answer_text=self.policy.answer_text or response_text,
            # Named, not fingerprinted: the functions below close over this middleware, which
            # is no part of an answer (and fingerprinting would warn users about memollm's own code).
            version=self.policy.version if self.policy.version is not None else _VERSION,
        )

        @cached_llm(policy=policy, name="memollm.asgi.response")
        async def response(path: str, body: dict[str, Any]) -> tuple[int, str, bytes]:
            return await call_app(self.app)

        @cached_llm(policy=policy, name="memollm.asgi.stream")
        async def stream(path: str, body: dict[str, Any]) -> AsyncIterator[Any]:
            async for item in stream_app(self.app):
                yield item

        self._caches[slot] = response, stream
        return response, stream

    # -- the response -----------------------------------------------------------------

    async def _send(
        self, response: tuple[int, str, bytes], seen: Any, live: dict[str, Any], send: Send
    ) -> None:
        status, text, body = response
        own = own_headers(live, seen)
        head = own if own is not None else header_lines(text)
        headers = [*head, (b"content-length", str(len(body)).encode()), *marks(seen)]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _send_stream(self, items: Any, seen: Any, live: dict[str, Any], send: Send) -> None:
        started = False
        held = b""  # the stream's last event, sent once the stream is stored (see sse.may_end)
        try:
            async for item in items:
                if not started:  # the first item is the response's status and headers
                    status, headers = item
                    own = own_headers(live, seen)
                    head = own if own is not None else stored_headers(headers)
                    await send({"type": "http.response.start", "status": status,
                                "headers": [*head, *marks(seen)]})  # fmt: skip
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
