"""Apps for bench_proxy.py, each run by uvicorn in its own process."""

from __future__ import annotations

import asyncio
import json
import os

_MESSAGE = {"role": "assistant", "content": "x" * 1000}
BODY = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1_700_000_000, "model": "m",
    "choices": [{"index": 0, "message": _MESSAGE, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 50, "completion_tokens": 250, "total_tokens": 300},
}).encode()  # fmt: skip


async def _drain(receive):  # type: ignore[no-untyped-def]
    while (await receive()).get("more_body"):
        pass


async def _answer(send):  # type: ignore[no-untyped-def]
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


async def bare(scope, receive, send):  # type: ignore[no-untyped-def]
    """The same bytes a cached hit returns, with no cache in between."""
    if scope["type"] == "http":
        await _drain(receive)
        await _answer(send)


async def upstream(scope, receive, send):  # type: ignore[no-untyped-def]
    """A model API that takes 50 ms to answer."""
    if scope["type"] == "http":
        await _drain(receive)
        await asyncio.sleep(0.05)
        await _answer(send)


def proxy():  # type: ignore[no-untyped-def]
    """memollm serve's app in front of the upstream given in BENCH_UPSTREAM (uvicorn --factory)."""
    from memollm.asgi.proxy import build_app

    return build_app(os.environ["BENCH_UPSTREAM"])


def cached_bare():  # type: ignore[no-untyped-def]
    """CacheMiddleware in front of the bare app (no proxy), to see the middleware alone."""
    from memollm.asgi import CacheMiddleware

    return CacheMiddleware(bare)
