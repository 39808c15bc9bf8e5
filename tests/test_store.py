"""fn.cache.store(): preload an answer without calling the function."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

import memollm
from memollm.backends import MemoryBackend
from memollm.errors import UncacheableArgumentError
from memollm.testing import FakeLLM


def test_a_stored_answer_is_served_without_a_call(memory: MemoryBackend) -> None:
    llm = FakeLLM()
    ask = memollm.cached_llm(llm.complete)
    assert ask.cache.store("preloaded", "What are your opening hours?")
    assert ask("What are your opening hours?") == "preloaded"
    assert llm.calls == 0
    assert ask.cache.stats().hits == {"memory": 1}
    assert ask.cache.stats().tokens_saved == 0  # nothing was paid for


def test_stored_prompts_are_indexed_for_semantic_hits(memory: MemoryBackend) -> None:
    def embed(texts: list[str]) -> Any:
        vocab = ["opening", "hours", "open", "refund"]
        return np.array([[t.lower().count(w) for w in vocab] for t in texts], dtype=np.float32) + 1e-3

    calls = 0

    @memollm.cached_llm(semantic=0.9, embedder=embed, verify=False)
    def ask(question: str) -> str:
        nonlocal calls
        calls += 1
        return "fresh"

    ask.cache.store("9 to 5", "What are your opening hours?")
    assert ask("opening hours?") == "9 to 5"
    assert calls == 0


def test_what_is_not_stored(memory: MemoryBackend) -> None:
    @memollm.cached_llm(cache_if=lambda result: result != "")
    def ask(question: object) -> str:
        return "x"

    assert not ask.cache.store("", "refused by cache_if")
    assert not ask.cache.store("fine", threading.Lock())
    assert not ask.cache.store("fine", "a", "too", "many")

    @memollm.cached_llm(strict=True)
    def strict(question: object) -> str:
        return "x"

    with pytest.raises(UncacheableArgumentError):
        strict.cache.store("fine", threading.Lock())

    @memollm.cached_llm(enabled=False)
    def off(question: str) -> str:
        return "x"

    assert not off.cache.store("fine", "q")
