"""What the proxy answers itself: errors in the OpenAI shape, an upstream's refusal, plain replies."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from ..errors import AllKeysExhaustedError
from .types import Send

__all__ = [
    "DROP_RESPONSE",
    "Refusal",
    "StatusError",
    "error_body",
    "read_bounded",
    "refuse",
    "reply",
    "reply_json",
    "send_exhausted",
    "send_refusal",
    "upstream_headers",
]  # fmt: skip


DROP_RESPONSE = frozenset(
    {"content-length", "transfer-encoding", "connection", "content-encoding", "keep-alive"}
)


class Refusal(NamedTuple):
    """An upstream's error answer, read whole: status, headers, body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class StatusError(Exception):
    """A refusal seen as the exception an SDK would raise, for ``classify`` and ``retry_after``."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.body[:500].decode("utf-8", "replace"))
        self.status_code = refusal.status
        self.headers = dict(refusal.headers)
        try:
            parsed = json.loads(refusal.body)
        except ValueError:
            parsed = None
        self.body = parsed if isinstance(parsed, dict) else None


_MAX_ERROR_BODY = 64 * 1024


async def read_bounded(response: Any, errors: type[Exception]) -> bytes:
    """An error response's body (decoded), up to a limit or until it fails; the response is closed."""
    chunks, size = [], 0
    try:
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > _MAX_ERROR_BODY:
                break
    except errors:
        pass  # what arrived is what the client gets: the status says what happened
    finally:
        await response.aclose()
    return b"".join(chunks)[:_MAX_ERROR_BODY]


def upstream_headers(response: Any) -> list[tuple[bytes, bytes]]:
    """The upstream's response headers a client gets (not hop-by-hop, length or encoding)."""
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()
            if k.lower() not in DROP_RESPONSE]  # fmt: skip


async def send_refusal(send: Send, refused: Refusal) -> None:
    """Pass an upstream's refusal on to the client as it came (but hop-by-hop headers)."""
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in refused.headers
               if k.lower() not in DROP_RESPONSE]  # fmt: skip
    headers.append((b"content-length", str(len(refused.body)).encode()))
    await send({"type": "http.response.start", "status": refused.status, "headers": headers})
    await send({"type": "http.response.body", "body": refused.body})


async def send_exhausted(send: Send, refused: Refusal | None, exc: AllKeysExhaustedError) -> None:
    """Every pool key is set aside: the last upstream refusal, or a 429 saying when to come back."""
    if refused is not None:
        await send_refusal(send, refused)
        return
    message = "every upstream API key of the proxy is cooling down, spent or refused"
    extra = (
        [] if exc.retry_after is None else [(b"retry-after", str(max(1, round(exc.retry_after))).encode())]
    )
    body = json.dumps(error_body(message, "rate_limit_error")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def error_body(message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    """An error body in the OpenAI shape."""
    return {"error": {"message": message, "type": kind, "code": None}}


async def reply(send: Send, status: int, body: bytes, ctype: bytes) -> None:
    """A whole response of the proxy's own."""
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def reply_json(send: Send, status: int, payload: dict[str, Any]) -> None:
    """A JSON response of the proxy's own."""
    await reply(send, status, json.dumps(payload).encode(), b"application/json")


async def refuse(send: Send, status: int, message: str, kind: str = "invalid_request_error") -> None:
    """An error of the proxy's own, in the OpenAI shape."""
    await reply_json(send, status, error_body(message, kind))
