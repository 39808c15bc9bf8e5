"""Where a call's prompt is: the text the semantic tier embeds, and everything else, its partition."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["PROMPT_SLOT", "SEMANTIC_MAX_CHARS", "find_prompt"]

_PROMPT_NAMES = ("prompt", "question", "query", "input")
PROMPT_SLOT = "\x00memollm:prompt\x00"  # stands for the prompt text in a semantic partition
# Longer prompts are cached exactly, never semantically. The embedding model sees at most 512
# tokens (about 2,000 characters of English): two longer prompts could differ where it cannot
# look. It also bounds what one request can make the embedder and the index hold.
SEMANTIC_MAX_CHARS = 2000


def find_prompt(arguments: dict[str, Any], prompt_arg: str | None) -> tuple[str, dict[str, Any]] | None:
    """The prompt text, and the arguments with :data:`PROMPT_SLOT` where the prompt was.

    The prompt is ``prompt_arg``, else a ``prompt``/``question``/``query``/``input`` string,
    else the last user message of OpenAI-style ``messages`` (also inside a ``**kwargs``
    pass-through). None when the call has no usable prompt.
    """
    places = [arguments]
    for value in arguments.values():
        if isinstance(value, dict) and any(k in value for k in (*_PROMPT_NAMES, "messages")):
            places.append(value)  # an OpenAI-style **kwargs pass-through
    names = (prompt_arg,) if prompt_arg else _PROMPT_NAMES
    for place in places:
        for name in names:
            if isinstance(place.get(name), str) and place[name].strip():
                return place[name], _replaced(arguments, place, name, PROMPT_SLOT)
        if not prompt_arg or prompt_arg == "messages":
            messages = place.get("messages")
            if isinstance(messages, list):
                for i in range(len(messages) - 1, -1, -1):
                    message = messages[i]
                    if isinstance(message, Mapping) and message.get("role") == "user":
                        text = _text_of(message.get("content"))
                        if text:
                            new = [*messages[:i], {**message, "content": PROMPT_SLOT}, *messages[i + 1 :]]
                            return text, _replaced(arguments, place, "messages", new)
                        break
    return None


def _replaced(arguments: dict[str, Any], place: dict[str, Any], name: str, value: object) -> dict[str, Any]:
    if place is arguments:
        return {**arguments, name: value}
    return {k: ({**v, name: value} if v is place else v) for k, v in arguments.items()}


def _text_of(content: object) -> str | None:
    if isinstance(content, str):
        return content if content.strip() else None
    if isinstance(content, list):  # content parts: keep the text ones
        texts = [p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text"]
        joined = "\n".join(t for t in texts if isinstance(t, str))
        return joined or None
    return None
