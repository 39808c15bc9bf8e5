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
    """A stored answer is served without a call."""
    llm = FakeLLM()
    ask = memollm.cached_llm(llm.complete)
    assert ask.cache.store("preloaded", "What are your opening hours?")
    assert ask("What are your opening hours?") == "preloaded"
    assert llm.calls == 0
    assert ask.cache.stats().hits == {"memory": 1}
    assert ask.cache.stats().tokens_saved == 0  # nothing was paid for


def test_stored_prompts_are_indexed_for_semantic_hits(memory: MemoryBackend) -> None:
    """Stored prompts are indexed for semantic hits."""

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
    """What is not stored."""

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


def test_store_many_preloads_in_batches(memory: MemoryBackend) -> None:
    """Store many preloads in batches."""
    batches: list[int] = []

    def embed(texts: list[str]) -> Any:
        batches.append(len(texts))
        vocab = ["hours", "refund", "shipping", "password"]
        return np.array([[t.lower().count(w) for w in vocab] for t in texts], dtype=np.float32) + 1e-3

    calls = 0

    @memollm.cached_llm(semantic=0.9, embedder=embed, verify=False)
    def ask(question: str, lang: str = "en") -> str:
        nonlocal calls
        calls += 1
        return "fresh"

    faq = [
        ("What are your opening hours?", "9 to 5"),
        (("How do I get a refund?",), "Within 30 days"),
        ({"question": "Where is my shipping label?", "lang": "en"}, "In your account"),
        ({"question": "Where is my shipping label?", "lang": "de"}, "In Ihrem Konto"),
        (threading.Lock(), "not keyable: skipped"),
    ]
    assert ask.cache.store_many(faq) == 4
    assert batches == [4]  # one embedding call for every prompt
    assert ask("What are your opening hours?") == "9 to 5"
    assert ask("refund: how do I get one?") == "Within 30 days"  # semantic, from the batch
    assert ask("my shipping label, where is it?", lang="de") == "In Ihrem Konto"  # its own partition
    assert calls == 0


def test_store_many_into_a_partition_that_already_has_an_approximate_index() -> None:
    """Store many into a partition that already has an approximate index."""
    import importlib.util

    if importlib.util.find_spec("usearch") is None:
        pytest.skip("the semantic extra is not installed")
    from memollm.semantic.index import SemanticIndex

    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(60, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = SemanticIndex(max_entries=1000, ann_threshold=20)
    index.add_many("p", [f"k{i}" for i in range(30)], vectors[:30], [f"t{i}" for i in range(30)])
    assert index.graph_size("p") == 30
    index.add_many("p", [f"k{i}" for i in range(25, 60)], vectors[25:], [f"t{i}" for i in range(25, 60)])
    assert len(index) == 60 and index.graph_size("p") == 60  # k25..k29 were not inserted twice
    for i in (0, 29, 45, 59):
        assert index.search("p", vectors[i], k=1, threshold=0.99)[0].key == f"k{i}"


def test_store_many_reaches_the_shared_vector_log(tmp_path: Any) -> None:
    """Preloaded prompts are logged in SQLite: a process started later finds them semantically."""
    from memollm.backends.sqlite import SQLiteBackend

    def embed(texts: list[str]) -> Any:
        vocab = ["hours", "refund"]
        return np.array([[t.lower().count(w) for w in vocab] for t in texts], dtype=np.float32) + 1e-3

    def make() -> Any:
        memollm.register_tier("memory", MemoryBackend())
        memollm.register_tier("sqlite", SQLiteBackend(tmp_path / "c.db"))

        @memollm.cached_llm(
            name="faq", tiers=("memory", "sqlite"), semantic=0.9, embedder=embed, verify=False
        )
        def ask(question: str) -> str:
            return "fresh"

        return ask

    assert make().cache.store_many([("What are your opening hours?", "9 to 5")]) == 1
    later = make()  # an empty memory tier and an empty index, as in a new process
    assert later("hours: when are you open?") == "9 to 5"


def _by_number(texts: list[str]) -> Any:
    """Vectors that depend only on the number in a text: "question 7" and "number 7, please" match."""
    out = []
    for text in texts:
        number = int("".join(c for c in text if c.isdigit()))
        vector = np.random.default_rng(number).normal(size=32).astype(np.float32)
        out.append(vector / np.linalg.norm(vector))
    return np.array(out)


@pytest.mark.parametrize("where", ["sqlite", "redis", "cluster"])
def test_a_large_preload_is_logged_whole(where: str, tmp_path: Any, request: pytest.FixtureRequest) -> None:
    """Thousands of preloaded prompts (more than one pipeline's worth) all reach a later process."""
    from memollm.backends.redis import RedisBackend
    from memollm.backends.sqlite import SQLiteBackend

    count = 4_100

    def make() -> Any:
        shared: Any
        if where == "sqlite":
            shared = SQLiteBackend(tmp_path / "c.db")
        elif where == "redis":
            shared = RedisBackend(request.getfixturevalue("redis_url"))
        else:
            shared = RedisBackend(request.getfixturevalue("cluster_url"), cluster=True)

        @memollm.cached_llm(
            tiers=(MemoryBackend(), shared), semantic=0.95, embedder=_by_number, verify=False,
            semantic_index="process",
        )  # fmt: skip
        def ask(question: str) -> str:
            return "fresh"

        return ask

    stored = make().cache.store_many([(f"question {i}", f"answer {i}") for i in range(count)])
    assert stored == count
    later = make()  # an empty memory tier and an empty index, as in a new process
    for i in (0, 1999, 2000, 2001, count - 1):
        assert later(f"number {i}, please") == f"answer {i}"
    assert later.cache.stats().hits == {"semantic": 5}


def test_the_same_prompt_again_is_not_reindexed() -> None:
    """The same prompt again is not reindexed."""
    from memollm.semantic.index import SemanticIndex

    index = SemanticIndex(max_entries=100)
    first, other = np.eye(4, dtype=np.float32)[0], np.eye(4, dtype=np.float32)[1]
    index.add("p", "k", first, "same prompt", None)
    index.add("p", "k", other, "same prompt", None)  # e.g. its own write read back from the log
    assert index.search("p", first, k=1, threshold=0.99)[0].key == "k"
    index.add("p", "k", other, "a changed prompt", None)
    assert index.search("p", other, k=1, threshold=0.99)[0].key == "k"
