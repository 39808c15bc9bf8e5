"""Running the app on the request being answered, and capturing its response (whole, or as a stream)."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator
from typing import Any

from .headers import kept, passed_on
from .types import ASGIApp, Message, Receive, Scope

__all__ = ["CURRENT", "call_app", "stream_app"]


# The request being answered: the cached functions below only see (path, body). The dict
# receives the live response's full headers when the app runs for this very request.
CURRENT: contextvars.ContextVar[tuple[Scope, Receive, dict[str, Any]]] = contextvars.ContextVar(
    "memollm_asgi_request"
)


async def call_app(app: ASGIApp) -> tuple[int, str, bytes]:
    """Run the app on the current request and collect its whole response.

    As (status, headers as "name: value" lines, body): all immutable, so the memory tier
    can keep it decoded and a repeated hit skips decoding.
    """
    scope, receive, live = CURRENT.get()
    live["called"] = True
    status, headers, chunks = 500, [], []

    async def capture(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            live["headers"] = own = passed_on(message.get("headers", ()))
            status, headers = message["status"], kept(own)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, capture)
    return status, "\n".join(f"{k}: {v}" for k, v in headers), b"".join(chunks)


async def stream_app(app: ASGIApp) -> AsyncIterator[Any]:
    """Run the app on the current request; yield (status, headers), then each body chunk as sent."""
    scope, receive, live = CURRENT.get()
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
                live["headers"] = own = passed_on(message.get("headers", ()))
                yield (message["status"], kept(own))
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
