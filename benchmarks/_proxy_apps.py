"""Apps for bench_proxy.py, each run by uvicorn in its own process."""

from __future__ import annotations

import asyncio
import json

_MESSAGE = {"role": "assistant", "content": "x" * 1000}
BODY = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1_700_000_000, "model": "m",
    "choices": [{"index": 0, "message": _MESSAGE, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 50, "completion_tokens": 250, "total_tokens": 300},
}).encode()  # fmt: skip


async def _drain(receive):  # type: ignore[no-untyped-def]
    while (await receive()).get("more_body"):
        pass


_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
# What a cached hit adds. Age stays "0" through a 5-second run, as it does for the hit.
_HIT_HEADERS = [*_HEADERS, (b"x-cache", b"HIT"), (b"age", b"0")]


async def _answer(send, headers=_HEADERS):  # type: ignore[no-untyped-def]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


async def bare(scope, receive, send):  # type: ignore[no-untyped-def]
    """The same response bytes a cached hit returns (headers included), with no cache in between."""
    if scope["type"] == "http":
        await _drain(receive)
        await _answer(send, _HIT_HEADERS)


async def plain(scope, receive, send):  # type: ignore[no-untyped-def]
    """The answer as an upstream sends it (no cache headers)."""
    if scope["type"] == "http":
        await _drain(receive)
        await _answer(send)


async def upstream(scope, receive, send):  # type: ignore[no-untyped-def]
    """A model API that takes 50 ms to answer."""
    if scope["type"] == "http":
        await _drain(receive)
        await asyncio.sleep(0.05)
        await _answer(send)


def cached_bare():  # type: ignore[no-untyped-def]
    """CacheMiddleware in front of an app (no proxy, no metrics), to see the middleware alone."""
    from memollm.asgi import CacheMiddleware

    return CacheMiddleware(plain)
