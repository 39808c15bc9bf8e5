"""What a captured response means to the cache: whether it is an answer, its text and its tokens."""

from __future__ import annotations

import json
from typing import Any

from .. import complete, sse
from ..usage import Usage, json_body_usage, sse_usage, text_of, usage_of

__all__ = ["is_answer", "response_text", "response_usage"]


def response_usage(result: Any, prompt: str, model: str | None) -> Usage:
    """Tokens of a stored response: its JSON body's ``usage``, or its SSE chunks'."""
    if isinstance(result, tuple) and len(result) == 3 and isinstance(result[2], bytes):
        return json_body_usage(result[2], model, prompt)
    if isinstance(result, list):  # a stream: (status, headers), then body chunks
        return sse_usage([b"".join(c for c in result[1:] if isinstance(c, bytes))], model, prompt)
    return usage_of(result, prompt, model)


def is_answer(result: Any) -> bool | complete.Incomplete:
    """Whether a response is a complete answer: 200, and a well-formed body or finished stream."""
    if isinstance(result, tuple):  # a whole response: (status, headers, body)
        return result[0] == 200 and complete.body(result[2])
    if not result or not isinstance(result[0], (list, tuple)) or result[0][0] != 200:
        return False  # a stream: (status, headers), then its chunks
    return complete.stream(b"".join(c for c in result[1:] if isinstance(c, bytes)))


def response_text(result: Any) -> str:
    """The answer a stored response holds: its completion's text, or its stream's deltas."""
    if isinstance(result, tuple) and len(result) == 3 and isinstance(result[2], bytes):
        try:
            return text_of(json.loads(result[2]))
        except (ValueError, RecursionError):
            return ""
    if isinstance(result, (list, tuple)):
        return text_of(sse.objects(b"".join(c for c in result[1:] if isinstance(c, bytes))))
    return text_of(result)
