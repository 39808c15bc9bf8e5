"""A small OpenAI-compatible HTTP server the tests start: scripted replies, counted requests."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    delay: float = 0.0  # seconds before answering (a slow upstream)
    events: list[tuple[str, dict[str, Any]]] | None = None  # server-sent events (name, data) instead
    raw: bytes | None = None  # these bytes as the body instead, under content_type
    content_type: str = "application/json"
    length: int | None = None  # the Content-Length to declare for raw (None: its length; -1: none)
    stall: threading.Event | None = None  # after raw, hold the connection open until this is set


def completion(text: str, model: str = "test-model") -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }


def error(status: int, code: str | None = None, message: str = "scripted failure") -> Reply:
    kind = {429: "rate_limit_error", 401: "authentication_error"}.get(status, "api_error")
    return Reply(status, body={"error": {"message": message, "type": kind, "code": code}})


def _last_content(body: dict[str, Any]) -> object:
    """The last message's content (or the prompt), whatever shape a hostile request gave it."""
    try:
        messages = body.get("messages") or [{"content": body.get("prompt", "")}]
        return messages[-1]["content"]
    except (TypeError, KeyError, IndexError, AttributeError):
        return "?"


class Upstream:
    """Replies from per-key scripts (or a shared one), then 200s that echo the prompt."""

    def __init__(self) -> None:  # noqa: C901 - the handler class is defined inside, over the server
        self.script: deque[Reply] = deque()
        self.by_key: dict[str, deque[Reply]] = {}
        self.requests: list[dict[str, Any]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.arrived = threading.Event()
        self.lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length) or b"{}"
                try:
                    body = json.loads(raw)
                except (ValueError, RecursionError):
                    body = None
                if not isinstance(body, dict):
                    body = {"raw": raw.decode("latin-1")}  # passed through as sent
                key = (self.headers.get("authorization") or "").removeprefix("Bearer ")
                with upstream.lock:
                    upstream.requests.append({"key": key, "body": body, "path": self.path})
                    queue = upstream.by_key.get(key) or upstream.script
                    reply = queue.popleft() if queue else None
                upstream.arrived.set()
                upstream.gate.wait(30)
                if reply is None and body.get("stream"):
                    self._stream(f"echo: {_last_content(body)} #{len(upstream.requests)}")
                    return
                if reply is None:
                    reply = Reply(
                        body=completion(f"echo: {_last_content(body)}", str(body.get("model", "m")))
                    )
                if reply.delay:
                    time.sleep(reply.delay)  # the upstream being slow, not test synchronisation
                if reply.events is not None:
                    self._events(reply.events)
                    return
                if reply.raw is not None:
                    self._raw(reply)
                    return
                payload = json.dumps(reply.body or {}).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def _raw(self, reply: Reply) -> None:
                assert reply.raw is not None
                self.send_response(reply.status)
                self.send_header("content-type", reply.content_type)
                length = len(reply.raw) if reply.length is None else reply.length
                if length >= 0:
                    self.send_header("content-length", str(length))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    self.wfile.write(reply.raw)
                    self.wfile.flush()
                    if reply.stall is not None:
                        reply.stall.wait(30)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

            def _events(self, events: list[tuple[str, dict[str, Any]]]) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                for name, data in events:
                    self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                    self.wfile.flush()

            def _stream(self, text: str) -> None:
                # Server-sent events, one chat.completion.chunk per word, then [DONE]; the body
                # ends when the connection closes (HTTP/1.0), as a streaming upstream's may.
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                words = text.split(" ")
                for i, word in enumerate(words):
                    piece = word + (" " if i < len(words) - 1 else "")
                    chunk = {
                        "id": "chatcmpl-stream",
                        "object": "chat.completion.chunk",
                        "created": 1_700_000_000,
                        "model": "test-model",
                        "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                    }
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                chunk["choices"] = [{"index": 0, "delta": {}, "finish_reason": "stop"}]
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> Upstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()

    def play(self, *replies: Reply, key: str | None = None) -> None:
        with self.lock:
            (self.by_key.setdefault(key, deque()) if key else self.script).extend(replies)

    @property
    def count(self) -> int:
        return len(self.requests)

    def keys_used(self) -> list[str]:
        return [r["key"] for r in self.requests]


def chunk(content: str | None, finish: str | None = None, index: int = 0) -> dict[str, Any]:
    """A chat.completion.chunk with one choice's delta (and its finish reason, when given)."""
    delta = {} if content is None else {"content": content}
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}  # fmt: skip


def sse(*events: dict[str, Any] | str) -> bytes:
    """Server-sent events, one data line each (a string as it is, such as "[DONE]")."""
    return b"".join(f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n".encode() for e in events)
