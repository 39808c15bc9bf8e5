"""A stand-in model API for the proxy scenario: answers after 50 ms and counts what it was asked.

uvicorn upstream_app:app    (GET /count: the number of completions it served)
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

_MESSAGE = {"role": "assistant", "content": "x" * 1000}
BODY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "m",
        "choices": [{"index": 0, "message": _MESSAGE, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 250, "total_tokens": 300},
    }
).encode()
served = 0


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global served
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    if scope["method"] == "GET":
        body = json.dumps({"count": served}).encode()
    else:
        served += 1
        await asyncio.sleep(0.05)
        body = BODY
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
