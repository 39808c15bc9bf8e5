"""Test doubles for users' own tests: a deterministic fake model and a clock you move by hand."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator

__all__ = ["FakeClock", "FakeLLM"]


class FakeClock:
    """A clock that only moves when told to: pass it as ``clock=`` and call :meth:`advance`."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        """The current time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds


class FakeLLM:
    """A deterministic stand-in for a model API that counts the calls that reach it.

    The answer depends only on the prompt, model and temperature. ``latency``
    seconds are slept per call (``sleep`` is injectable), to model a real API.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        answer_chars: int = 200,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.latency = latency
        self.answer_chars = answer_chars
        self._sleep = sleep
        self._lock = threading.Lock()
        self.calls = 0

    def __memollm_key__(self) -> object:
        """Its answers depend only on its settings, so a cached method of it keys on them."""
        return ["FakeLLM", self.answer_chars]

    def answer(self, prompt: str, model: str = "fake-model", temperature: float = 0.0) -> str:
        """The answer this fake gives, without counting a call."""
        seed = hashlib.sha256(f"{model}|{temperature}|{prompt}".encode()).hexdigest()
        text = f"[{model}] answer to {prompt!r}: {seed} "
        return (text * (self.answer_chars // len(text) + 1))[: self.answer_chars]

    def _count(self) -> None:
        with self._lock:
            self.calls += 1

    def complete(self, prompt: str, model: str = "fake-model", temperature: float = 0.0) -> str:
        """Answer ``prompt`` after ``latency`` seconds."""
        self._count()
        if self.latency:
            self._sleep(self.latency)
        return self.answer(prompt, model, temperature)

    __call__ = complete

    async def acomplete(self, prompt: str, model: str = "fake-model", temperature: float = 0.0) -> str:
        """Async :meth:`complete`."""
        self._count()
        if self.latency:
            await asyncio.sleep(self.latency)
        return self.answer(prompt, model, temperature)

    def stream(self, prompt: str, model: str = "fake-model", temperature: float = 0.0) -> Iterator[str]:
        """Yield the answer in word-sized chunks."""
        self._count()
        yield from _chunks(self.answer(prompt, model, temperature))

    async def astream(
        self, prompt: str, model: str = "fake-model", temperature: float = 0.0
    ) -> AsyncIterator[str]:
        """Async :meth:`stream`."""
        self._count()
        for chunk in _chunks(self.answer(prompt, model, temperature)):
            await asyncio.sleep(0)
            yield chunk


def _chunks(text: str) -> list[str]:
    words = text.split(" ")
    return [w + " " for w in words[:-1]] + [words[-1]]
