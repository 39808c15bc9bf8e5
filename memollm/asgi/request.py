"""What a request asks of the cache: its tenant, its Cache-Control, its body; refusals in the API's shape."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any, NamedTuple

from .types import Message, Receive, Send

__all__ = ["KEY_HEADERS", "NAMESPACE", "Asked", "cache_control", "credential", "known_tenant", "parse",
           "refuse", "repeated", "replaying", "tenant_of", "tracked"]  # fmt: skip


NAMESPACE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


_MAX_AGE_DIGITS = 10


# Headers carrying a caller's credentials. The tenant is the first of them present (in this
# order), unless a tenant_header is configured.
KEY_HEADERS = frozenset({b"authorization", b"api-key", b"x-api-key"})


_CANONICAL = re.compile(rb"Bearer \S+").fullmatch


class Asked(NamedTuple):
    """What a request asks of the cache besides its body."""

    namespace: str
    control: dict[str, Any]
    scope_id: str | None  # the tenant's hash
    known: tuple[Any, ...]  # the fast path's key: path, namespace, max-age, tenant, body bytes
    live: dict[str, Any]  # what happened to this very request: the app's headers, called, sent


def repeated(headers: Iterable[tuple[bytes, bytes]], names: frozenset[bytes] | set[bytes]) -> bool:
    """Whether any of ``names`` occurs more than once."""
    seen: set[bytes] = set()
    for name, _ in headers:
        if name in names:
            if name in seen:
                return True
            seen.add(name)
    return False


def credential(headers: dict[bytes, bytes], tenant_header: bytes | None) -> bytes | None:
    """The header value the tenant comes from, as sent: ``tenant_header``'s, or the caller's key."""
    if tenant_header is not None:
        return headers.get(tenant_header)
    raw = headers.get(b"authorization")
    if raw is None:
        raw = headers.get(b"api-key") or headers.get(b"x-api-key")
    return raw


def known_tenant(headers: dict[bytes, bytes], tenant_header: bytes | None) -> bytes | None:
    """The tenant as the middleware's fast path tells requests apart: a digest of the value as sent.

    Finer than :func:`tenant_of` (two spellings of one key are two here, one tenant there), so
    it never joins two tenants; cheaper, since a repeat skips canonicalising and hex. Never the
    raw value: known requests are kept in memory.
    """
    raw = credential(headers, tenant_header)
    return None if raw is None else hashlib.sha256(raw).digest()


def tenant_of(headers: dict[bytes, bytes], tenant_header: bytes | None) -> str | None:
    """The tenant: a hash of the tenant header, or of the caller's credentials (never the raw token).

    Spellings of one credential are one tenant: surrounding and repeated spaces are dropped
    and the scheme's case is ignored (``Bearer sk-1`` = ``bearer  sk-1``).
    """
    raw = credential(headers, tenant_header)
    if raw is None:
        return None
    # Most requests are already in canonical form ("Bearer <token>"): hashed as they are.
    if tenant_header is not None or _CANONICAL(raw) is None:
        words = raw.split()
        if tenant_header is None and len(words) == 2:
            words[0] = words[0].capitalize()
        raw = b" ".join(words)
    return hashlib.sha256(raw).hexdigest()[:32]


def tracked(send: Send, live: dict[str, Any]) -> Send:
    """``send`` that notes in ``live`` when the answer has begun."""

    async def tracked(message: Message) -> None:
        live["sent"] = True
        await send(message)

    return tracked


async def refuse(send: Send, status: int, message: str) -> None:
    """An error in the OpenAI error shape."""
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "code": None}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"x-cache", b"BYPASS")]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def parse(body: bytes) -> dict[str, Any] | None:
    """A JSON object body, or None for anything else (not JSON, nested too deep, not an object)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
        return None
    return data if isinstance(data, dict) else None


def replaying(body: bytes, more: bool, receive: Receive) -> Receive:
    """A receive that gives the app the body already read, then the client's later messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replay


def cache_control(raw: bytes) -> dict[str, Any]:
    """A Cache-Control header's directives: ``max-age`` as seconds when valid, the others as True."""
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
