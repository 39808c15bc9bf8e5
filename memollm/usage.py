"""Token usage of a model call: read from its response, or estimated from its text.

Responses in the OpenAI shape (``usage.prompt_tokens`` / ``completion_tokens``) or the
Anthropic shape (``usage.input_tokens`` / ``output_tokens``), as dicts or SDK objects,
give exact counts. Otherwise the counts are estimated from the prompt and the answer's
text and marked ``estimated``: with tiktoken's ``o200k_base`` encoding when tiktoken is
installed and that encoding's file is already in tiktoken's local cache (memollm never
downloads it: a cache library must not reach out to the internet on its own; run
``tiktoken.get_encoding("o200k_base")`` once to cache it), else with a heuristic of one
token per CJK character and one per four other characters, rounded up. The encoding is
loaded on a background thread, never on a caller's path.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import sse
from ._log import logger

__all__ = [
    "Usage", "count_tokens", "field_of", "json_body_usage", "prompt_text", "sse_usage", "text_of", "usage_of",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens one model call used.

    ``estimated`` is true when the counts were estimated from text rather than read
    from the response; ``model`` is the model that answered, when known.
    """

    input_tokens: int
    output_tokens: int
    estimated: bool = False
    model: str | None = None

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


# -- counting ---------------------------------------------------------------------------

_encoder: Any = None
_loading = threading.Lock()
_state = "new"  # new -> loading -> ready | failed; tests set "off" to pin the heuristic


def count_tokens(text: str) -> int:
    """Estimate the tokens in ``text`` (see the module docstring for how)."""
    if not text:
        return 0
    if _state == "ready":
        return len(_encoder.encode(text, disallowed_special=()))
    if _state == "new":
        _start_loading()
    return _heuristic(text)


def _heuristic(text: str) -> int:
    cjk = sum(1 for ch in text if _is_cjk(ch))
    return cjk + math.ceil((len(text) - cjk) / 4)


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (
        0x3040 <= code <= 0x30FF  # kana
        or 0x3400 <= code <= 0x4DBF
        or 0x4E00 <= code <= 0x9FFF
        or 0xAC00 <= code <= 0xD7AF  # hangul
        or 0xF900 <= code <= 0xFAFF
        or 0x20000 <= code <= 0x2FA1F
    )


def _start_loading() -> None:
    global _state  # noqa: PLW0603 - one process-wide encoder
    with _loading:
        if _state != "new":
            return
        try:
            import tiktoken
        except ImportError:
            _state = "failed"
            return
        if not _cached_locally():
            _state = "failed"
            logger.info(
                "tiktoken's o200k_base is not cached on this machine; token estimates use the heuristic"
            )
            return
        _state = "loading"

    def load() -> None:
        global _encoder, _state  # noqa: PLW0603
        try:
            _encoder = tiktoken.get_encoding("o200k_base")
            _state = "ready"
        except Exception as exc:  # noqa: BLE001 - any failure means: keep the heuristic
            _state = "failed"
            logger.info("tiktoken could not load o200k_base (%s); token estimates use the heuristic", exc)

    threading.Thread(target=load, name="memollm-tiktoken", daemon=True).start()


_ENCODING_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"


def _cached_locally() -> bool:
    """Whether tiktoken would load o200k_base from its cache (the path tiktoken itself uses)."""
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        folder = os.environ["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in os.environ:
        folder = os.environ["DATA_GYM_CACHE_DIR"]
    else:
        folder = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not folder:  # an empty TIKTOKEN_CACHE_DIR turns tiktoken's cache off: it would download
        return False
    name = hashlib.sha1(_ENCODING_URL.encode(), usedforsecurity=False).hexdigest()
    return os.path.isfile(os.path.join(folder, name))


# -- reading responses ------------------------------------------------------------------


def usage_of(result: Any, prompt: str = "", model: str | None = None) -> Usage:
    """The usage of the call that returned ``result`` for ``prompt`` on ``model``.

    Exact when ``result`` (or, for a stream, one of its chunks) carries usage; estimated
    from ``prompt`` and the result's text otherwise.
    """
    found = _reported(result)
    if found is None and isinstance(result, (list, tuple)):
        for chunk in reversed(result):  # streams report usage in their last chunk
            found = _reported(chunk)
            if found is not None:
                break
    answered = _model_of(result) or model
    if found is not None:
        return Usage(found[0], found[1], False, answered)
    return Usage(count_tokens(prompt), count_tokens(text_of(result)), True, answered)


def field_of(obj: Any, name: str) -> Any:
    """``obj[name]`` of a mapping, else ``obj.name``; None when absent (SDK objects and parsed JSON alike)."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _reported(result: Any) -> tuple[int, int] | None:
    if isinstance(result, (str, bytes, int, float, bool)) or result is None:
        return None
    usage = field_of(result, "usage")
    if usage is None:
        return None
    for names in (("prompt_tokens", "completion_tokens"), ("input_tokens", "output_tokens")):
        got = (field_of(usage, names[0]), field_of(usage, names[1]))
        if all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in got):
            return got[0], got[1]
    return None


def _model_of(result: Any) -> str | None:
    if isinstance(result, (str, bytes, int, float, bool, list, tuple)) or result is None:
        return None
    model = field_of(result, "model")
    return model if isinstance(model, str) else None


def text_of(result: Any) -> str:  # noqa: PLR0911 - one return per response shape
    """The answer text inside a result: a string, a completion's message or text, or a stream's deltas."""
    if isinstance(result, str):
        return result
    if isinstance(result, (list, tuple)):
        return "".join(text_of(part) for part in result)
    if isinstance(result, (bytes, int, float, bool)) or result is None:
        return ""
    kind = field_of(result, "type")
    if isinstance(kind, str) and kind.startswith(("response.", "message_", "content_block_")):
        return _event_text(result, kind)
    content = field_of(result, "content")  # Anthropic messages, or a message itself
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(t for t in (field_of(block, "text") for block in content) if isinstance(t, str))
    choices = field_of(result, "choices")
    if isinstance(choices, list):
        return "".join(_choice_text(choice) for choice in choices[:1])
    output = field_of(result, "output")  # a Responses API response: items holding content blocks
    if isinstance(output, list):
        return "".join(text_of(item) for item in output)
    for name in ("text", "output_text", "delta"):
        value = field_of(result, name)
        if isinstance(value, str):
            return value
    return ""


def _choice_text(choice: Any) -> str:
    for name in ("message", "delta"):
        part = field_of(choice, name)
        if part is not None:
            content = field_of(part, "content")
            return (content if isinstance(content, str) else "") + _calls_text(field_of(part, "tool_calls"))
    text = field_of(choice, "text")
    return text if isinstance(text, str) else ""


def _event_text(event: Any, kind: str) -> str:
    """The text a stream event adds: a Responses API text delta, an Anthropic content delta."""
    if kind == "response.output_text.delta":
        delta = field_of(event, "delta")
        return delta if isinstance(delta, str) else ""
    if kind == "content_block_delta":
        return text_of(field_of(event, "delta"))
    return ""  # events that repeat text already sent (".done", "response.completed") or hold none


def _calls_text(calls: Any) -> str:
    """Tool calls as text: each function's name and arguments (an answer may be only these)."""
    if not isinstance(calls, list):
        return ""
    parts = []
    for call in calls:
        function = field_of(call, "function")
        for name in ("name", "arguments"):
            value = field_of(function, name)
            if isinstance(value, str):
                parts.append(value)
    return "".join(parts)


def prompt_text(arguments: Iterable[Any]) -> str:
    """The text a model was sent, from a call's arguments: strings and message contents."""
    parts: list[str] = []
    for value in arguments:
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            parts.extend(text_of(message) for message in value if isinstance(message, Mapping))
        elif isinstance(value, Mapping) and isinstance(value.get("messages"), list):
            parts.append(prompt_text([value["messages"]]))
    return "\n".join(parts)


def json_body_usage(body: bytes, model: str | None, prompt: str) -> Usage:
    """Usage of an HTTP JSON response body (the ASGI middleware's stored responses)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    return usage_of(parsed if isinstance(parsed, dict) else "", prompt, model)


def sse_usage(events: Iterable[bytes], model: str | None, prompt: str) -> Usage:
    """Usage of a recorded server-sent-event stream of completion chunks."""
    return usage_of(sse.objects(b"".join(events)), prompt, model)
