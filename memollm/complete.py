"""Whether a result is a complete answer: only those are stored (RFC 9111's rule for caches).

An upstream can answer 200 and still not give an answer: an error object, an HTML error page,
a body cut short, a stream that stopped before its end or carried an error event. These rules
judge the results of OpenAI-compatible and Anthropic APIs, as JSON bodies and recorded
server-sent events (the proxy) or as SDK objects (the client wrappers):

- a body is a JSON object without a top-level ``error``; a completion has choices, each with a
  ``finish_reason``; a Responses API response has status ``completed``; an Anthropic message
  has a ``stop_reason`` (not ``pause_turn``: the turn goes on); an embeddings list has data;
- a stream parses event by event, carries no error event, and reached its end: chat and
  completion chunks a finish reason for every choice and ``data: [DONE]`` (where the stream's
  bytes are seen), Responses API events ``response.completed``, Anthropic events
  ``message_stop``. A stream of another kind cannot be judged, so it is not stored.

A verdict is ``True`` or an :class:`Incomplete`, which is falsy and says why: as a ``cache_if``
result it is counted in ``stats().incomplete`` (and ``skipped``) and the answer passes
through uncached.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, Literal

from . import sse
from .usage import field_of

__all__ = ["Incomplete", "Verdict", "answer", "body", "events", "requiring", "stream"]


class Incomplete:
    """A falsy verdict: the result is not a complete answer, and why."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"Incomplete({self.reason!r})"


Verdict = Literal[True] | Incomplete


def requiring(
    rule: Callable[[Any], object], cache_if: Callable[[Any], object] | None
) -> Callable[[Any], object]:
    """A ``cache_if``: what ``rule`` finds complete and, after it, the user's ``cache_if`` accepts."""

    def stored_if(result: Any) -> object:
        verdict = rule(result)
        return verdict if not verdict or cache_if is None else cache_if(result)

    return stored_if


def body(data: bytes) -> Verdict:
    """Judge an HTTP JSON response body."""
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError):
        return Incomplete("the body is not JSON")
    if not isinstance(parsed, dict):
        return Incomplete("the body is not a JSON object")
    return answer(parsed)


def answer(result: Any) -> Verdict:
    """Judge a whole answer: a parsed JSON object or an SDK object."""
    if field_of(result, "error") not in (None, False):
        return Incomplete("an error object sent as an answer")
    choices = field_of(result, "choices")
    if choices is not None:
        return _choices(choices)
    judge = _JUDGES.get(field_of(result, "object") or field_of(result, "type"))
    return True if judge is None else judge(result)


def _choices(choices: Any) -> Verdict:
    """A chat or text completion: choices, each finished, each with a message or text."""
    if not isinstance(choices, list) or not choices:
        return Incomplete("a completion without choices")
    for choice in choices:
        if not _finished(field_of(choice, "finish_reason")):
            return Incomplete("a choice without a finish_reason")
        if field_of(choice, "message") is None and not isinstance(field_of(choice, "text"), str):
            return Incomplete("a choice without a message or text")
    return True


def _response(result: Any) -> Verdict:
    """A Responses API response: completed (not queued, in progress, failed or incomplete)."""
    status = field_of(result, "status")
    return True if status == "completed" else Incomplete(f"a response with status {status!r}")


def _message(result: Any) -> Verdict:
    """An Anthropic message: it stopped, and not to pause mid-turn."""
    reason = field_of(result, "stop_reason")
    if not _finished(reason) or reason == "pause_turn":
        return Incomplete(f"a message with stop_reason {reason!r}")
    return True


def _list(result: Any) -> Verdict:
    """An embeddings list: data, each embedding with its vector."""
    data = field_of(result, "data")
    if not isinstance(data, list) or not data:
        return Incomplete("a list without data")
    if any(field_of(item, "object") == "embedding" and field_of(item, "embedding") is None for item in data):
        return Incomplete("an embedding without its vector")
    return True


_JUDGES: dict[object, Callable[[Any], Verdict]] = {"response": _response, "message": _message, "list": _list}


def stream(data: bytes) -> Verdict:
    """Judge a recorded server-sent-event stream (the bytes as the upstream sent them)."""
    recorded = sse.parse(data)
    if recorded is None:
        return Incomplete("the stream is not UTF-8 text")
    if recorded.cut:
        return Incomplete("the stream stopped inside an event")
    items: list[dict[str, Any]] = []
    done = False
    for event in recorded.events:
        if done:
            return Incomplete("events after data: [DONE]")
        if event.data.strip() == sse.DONE:
            done = True
            continue
        try:
            found = json.loads(event.data)
        except (ValueError, RecursionError):
            return Incomplete("a data line that is not JSON")
        if not isinstance(found, dict):
            return Incomplete("a data line that is not a JSON object")
        items.append(found)
    return events(items, done=done)


def events(items: Iterable[Any], *, done: bool | None = None) -> Verdict:
    """Judge a stream's chunks or events (parsed JSON objects or SDK objects).

    ``done``: whether ``data: [DONE]`` ended it, or None where that cannot be seen (an SDK
    consumes the marker).
    """
    reading = _Reading()
    for item in items:
        stop = reading.add(item)
        if stop is not None:
            return stop
    return reading.verdict(done)


class _Reading:
    """What a stream has shown so far: its kind, whether it ended, which choices finished."""

    def __init__(self) -> None:
        self.kind: str | None = None
        self.completed = False
        self.finished: dict[object, bool] = {}

    def add(self, item: Any) -> Incomplete | None:
        """Take one event; an Incomplete as soon as one shows the stream failed."""
        name = field_of(item, "type")
        if field_of(item, "error") not in (None, False) or name == "error":
            return Incomplete("an error event in the stream")
        if isinstance(name, str) and name.startswith("response."):
            self.kind = "responses"
            if name in ("response.failed", "response.incomplete"):
                return Incomplete(f"the stream ended with {name}")
            self.completed = self.completed or name == "response.completed"
        elif isinstance(name, str) and name.startswith(("message_", "content_block_")):
            self.kind = "anthropic"
            if name == "message_delta" and field_of(field_of(item, "delta"), "stop_reason") == "pause_turn":
                return Incomplete("a message paused mid-turn")
            self.completed = self.completed or name == "message_stop"
        elif isinstance(choices := field_of(item, "choices"), list):
            self.kind = self.kind or "choices"
            for choice in choices:
                index = field_of(choice, "index")
                ended = _finished(field_of(choice, "finish_reason"))
                self.finished[index] = self.finished.get(index, False) or ended
        return None

    def verdict(self, done: bool | None) -> Verdict:
        """Whether what was read is a whole stream."""
        if self.kind == "responses":
            return True if self.completed else Incomplete("the stream ended before response.completed")
        if self.kind == "anthropic":
            return True if self.completed else Incomplete("the stream ended before message_stop")
        if self.kind is None:
            return Incomplete("a stream memollm cannot judge complete")
        if done is False:
            return Incomplete("the stream ended without data: [DONE]")
        if not self.finished or not all(self.finished.values()):
            return Incomplete("the stream ended without a finish_reason")
        return True


def _finished(reason: object) -> bool:
    return isinstance(reason, str) and bool(reason)
