"""Server-sent events as OpenAI-compatible and Anthropic APIs stream them: reading a recorded stream.

Only what judging and reading a recorded stream needs (the WHATWG event-stream format): events
are separated by a blank line, ``data:`` lines of one event are joined with newlines,
``event:`` names it, lines starting with ``:`` are comments, other fields are ignored.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

__all__ = ["DONE", "Event", "Recorded", "may_end", "objects", "parse"]

DONE = "[DONE]"  # OpenAI's end-of-stream marker (chat and legacy completions)

# What the last event of a stream carries, per API: clients stop reading once they see it.
_ENDINGS = (b"[DONE]", b"message_stop", b"response.completed", b"response.incomplete", b"response.failed")


class Event(NamedTuple):
    """One dispatched event: its ``event:`` name (None if unnamed) and its data."""

    name: str | None
    data: str


class Recorded(NamedTuple):
    """A recorded stream's events, and whether it stopped inside an event (after its last blank line)."""

    events: list[Event]
    cut: bool


def parse(data: bytes) -> Recorded | None:
    """The events of a recorded stream; None if it is not UTF-8 text."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    blocks = text.replace("\r\n", "\n").replace("\r", "\n").split("\n\n")
    rest = blocks.pop()  # what follows the last blank line: an event not yet dispatched
    events = []
    for block in blocks:
        name, lines = None, []
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "data":
                lines.append(value)
            elif field == "event":
                name = value
        if lines:
            events.append(Event(name, "\n".join(lines)))
    return Recorded(events, bool(rest.strip()))


def objects(data: bytes) -> list[dict[str, Any]]:
    """The JSON objects a recorded stream's events carry (``[DONE]``, malformed and cut events left out)."""
    recorded = parse(data)
    if recorded is None:
        return []
    out = []
    for event in recorded.events:
        if event.data.strip() == DONE:
            continue
        try:
            found = json.loads(event.data)
        except (ValueError, RecursionError):
            continue
        if isinstance(found, dict):
            out.append(found)
    return out


def may_end(chunk: bytes) -> bool:
    """Whether a chunk may carry a stream's last event, after which a client stops reading.

    A proxy holds such a chunk back until the stream is stored, so that the client's next
    request (sent as soon as it reads the end) finds the answer.
    """
    return any(end in chunk for end in _ENDINGS)
