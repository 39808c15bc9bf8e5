"""The semantic tier with the real (offline) fastembed model: hits, partitions, guards, shadow mode."""

from __future__ import annotations

import importlib.util
import logging
import sqlite3
import subprocess
import sys
import threading
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import memollm
from memollm import LLMCache, cached_llm
from memollm.backends import MemoryBackend
from memollm.semantic.embedder import BatchingEmbedder, FastEmbedder
from memollm.semantic.index import SemanticIndex
from memollm.semantic.verify import explain
from memollm.testing import FakeClock, FakeLLM

from .helpers import eventually

PARAPHRASES = [
    ("How do I create a list in Python?", "What's the way to make a Python list?"),
    ("How do I reverse a string in Python?", "What's the best way to reverse a Python string?"),
    ("How many feet are in a mile?", "How many feet does a mile have?"),
]
# Made-up look-alikes of the families the verifier was built against: never served.
LOOKALIKES = [
    ("How do I turn off dark mode in Windows 11?", "How do I turn on dark mode in Windows 11?"),
    ("How many feet are in a mile?", "How many meters are in a mile?"),
    ("Convert 10 kilometers to miles", "Convert 10 kilometers to meters"),
    ("How do I convert Celsius to Fahrenheit?", "How do I convert Fahrenheit to Celsius?"),
    ("How do I read a CSV file in Python?", "How do I read a CSV file in Java?"),
    ("How do I install Docker on Ubuntu?", "How do I uninstall Docker on Ubuntu?"),
]
ADVERSARIAL = [
    ("How do I enable 2FA on my account?", "How do I disable 2FA on my account?"),
    ("What is 1+1?", "What is 21+1?"),
    ("Find flights from Boston to Denver", "Find flights from Denver to Boston"),
    ("Is it safe to take ibuprofen while pregnant?", "Is it not safe to take ibuprofen while pregnant?"),
]


@pytest.fixture
def llm() -> FakeLLM:
    return FakeLLM()


def semantic_fn(llm: FakeLLM, embedder: Any, **settings: Any) -> Any:
    @cached_llm(semantic=0.85, embedder=embedder, **settings)
    def ask(question: str, model: str = "m", system: str = "You are helpful.") -> str:
        return llm(f"{system}|{question}", model)

    return ask


class TestHits:
    @pytest.mark.parametrize(("first", "second"), PARAPHRASES, ids=["list", "reverse", "mile"])
    def test_paraphrase_is_served(self, llm: FakeLLM, embedder: Any, first: str, second: str) -> None:
        """A re-phrased question is answered from the original's entry, and the caller can tell."""
        ask = semantic_fn(llm, embedder)
        answer = ask(first)
        with memollm.lookup() as seen:
            assert ask(second) == answer
        assert llm.calls == 1
        assert seen.outcome == "semantic-hit"
        assert seen.similarity is not None and seen.similarity >= 0.85
        assert ask.cache.stats().hits == {"semantic": 1}

    @pytest.mark.parametrize(("first", "second"), ADVERSARIAL, ids=["2fa", "numbers", "route", "negation"])
    def test_adversarial_lookalikes_are_rejected(
        self, llm: FakeLLM, embedder: Any, first: str, second: str
    ) -> None:
        """Near-identical questions with opposite meanings never share an answer."""
        ask = semantic_fn(llm, embedder, verify=None)
        ask(first)
        ask(second)
        assert llm.calls == 2
        assert "semantic" not in ask.cache.stats().hits

    @pytest.mark.parametrize("semantic", [True, 0.92])
    @pytest.mark.parametrize(("first", "second"), LOOKALIKES, ids=["on-off", "units", "to-unit", "direction",
                                                                    "language", "install"])  # fmt: skip
    def test_lookalike_families_are_never_served(
        self, llm: FakeLLM, embedder: Any, first: str, second: str, semantic: object
    ) -> None:
        """On/off, another unit, a reversed conversion, another language: misses at the defaults."""

        @cached_llm(semantic=semantic, embedder=embedder)
        def ask(question: str) -> str:
            return llm(question)

        ask(first)
        ask(second)
        assert llm.calls == 2

    def test_semantic_true_is_the_recommended_threshold(self, embedder: Any) -> None:
        """semantic=True serves paraphrases at the threshold the shipped model recommends."""
        from memollm.semantic.learned import recommended_threshold

        llm = FakeLLM()

        @cached_llm(semantic=True, embedder=embedder)
        def ask(question: str) -> str:
            return llm(question)

        ask(PARAPHRASES[1][0])
        with memollm.lookup() as seen:
            ask(PARAPHRASES[1][1])
        assert llm.calls == 1
        assert seen.similarity is not None and seen.similarity >= recommended_threshold() >= 0.85
        assert memollm.Policy.parse_settings({"semantic": "true"}, source="env") == {"semantic": True}

    def test_without_guards_the_lookalikes_would_hit(self, llm: FakeLLM, embedder: Any) -> None:
        """The guards are what stops them: raw cosine alone serves the wrong answer."""
        ask = semantic_fn(llm, embedder, verify=False)
        ask(ADVERSARIAL[0][0])
        ask(ADVERSARIAL[0][1])
        assert llm.calls == 1

    @pytest.mark.parametrize(
        "change",
        [{"model": "other"}, {"system": "You are a pirate."}],
        ids=["model", "system-prompt"],
    )
    def test_another_partition_never_hits(self, llm: FakeLLM, embedder: Any, change: dict[str, str]) -> None:
        """A different model or system prompt is another partition: even the same question misses."""
        ask = semantic_fn(llm, embedder)
        ask(PARAPHRASES[0][0])
        ask(PARAPHRASES[0][1], **change)
        assert llm.calls == 2
        assert "semantic" not in ask.cache.stats().hits
        ask(PARAPHRASES[0][1])  # back in the first partition, the paraphrase does hit
        assert ask.cache.stats().hits == {"semantic": 1}

    def test_tenants_never_share(self, llm: FakeLLM, embedder: Any) -> None:
        """One tenant's answers are never served to another, exactly or semantically."""
        ask = semantic_fn(llm, embedder)
        with memollm.tenant("acme"):
            ask(PARAPHRASES[0][0])
        with memollm.tenant("globex"):
            ask(PARAPHRASES[0][0])
            ask(PARAPHRASES[0][1])
        assert llm.calls == 2
        with memollm.tenant("acme"):
            ask(PARAPHRASES[0][1])
        assert llm.calls == 2

    def test_tools_in_messages_partition(self, llm: FakeLLM, embedder: Any) -> None:
        """OpenAI-style calls: the last user message is embedded; tools and earlier turns partition."""

        @cached_llm(semantic=0.85, embedder=embedder)
        def chat(**request: Any) -> str:
            return llm(str(request))

        base = {"model": "m", "temperature": 0}
        chat(messages=[{"role": "user", "content": PARAPHRASES[1][0]}], **base)
        chat(messages=[{"role": "user", "content": PARAPHRASES[1][1]}], **base)
        assert llm.calls == 1
        chat(messages=[{"role": "user", "content": PARAPHRASES[1][1]}], tools=[{"name": "x"}], **base)
        earlier = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
        chat(messages=[*earlier, {"role": "user", "content": PARAPHRASES[1][1]}], **base)
        assert llm.calls == 3


class TestIndexKeeping:
    def test_expired_entries_are_not_served(self, llm: FakeLLM, embedder: Any, clock: FakeClock) -> None:
        """An entry past its TTL is neither an exact nor a semantic hit, and its vector goes."""
        memollm.register_tier("memory", MemoryBackend(clock=clock))

        def ask(question: str) -> str:
            return llm(question)

        cache = LLMCache(ask, settings={"semantic": 0.85, "embedder": embedder, "ttl": 10}, clock=clock)
        fn = cache.wrap(ask)
        fn(PARAPHRASES[0][0])
        clock.advance(11)
        fn(PARAPHRASES[0][1])
        assert llm.calls == 2
        semantic = cache.state.current().semantic
        assert semantic is not None
        assert len(semantic.index) == 1  # the expired prompt's vector was dropped

    def test_evicted_entries_leave_no_dangling_vector(self, llm: FakeLLM, embedder: Any) -> None:
        """When the exact entry is gone (evicted, invalidated), its vector is removed, not served."""
        ask = semantic_fn(llm, embedder)
        ask(PARAPHRASES[0][0])
        memollm.registry.get_tier("memory").clear()
        ask(PARAPHRASES[0][1])
        assert llm.calls == 2
        ask.cache.invalidate(PARAPHRASES[0][1])
        ask(PARAPHRASES[0][0])
        assert llm.calls == 3

    def test_partition_size_is_bounded(self) -> None:
        """A partition keeps at most max_entries vectors, dropping the least recently used."""
        index = SemanticIndex(max_entries=3)
        for i in range(5):
            v = np.zeros(4, dtype=np.float32)
            v[i % 4] = 1.0
            index.add("p", f"k{i}", v, f"t{i}", None)
        assert len(index) == 3
        probe = np.array([1, 0, 0, 0], dtype=np.float32)
        assert [c.key for c in index.search("p", probe, threshold=0.5)] == ["k4"]


class TestShadow:
    def test_shadow_measures_but_never_serves(
        self, llm: FakeLLM, embedder: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Shadow mode counts would-be hits and whether the answers agree; the model is always called."""
        caplog.set_level(logging.INFO, logger="memollm")

        @cached_llm(semantic="shadow", embedder=embedder)
        def ask(question: str) -> str:
            llm(question)
            # Short answers are compared exactly: these two paraphrases get different ones.
            return "same answer" if "list" in question.lower() else f"{len(question)} characters"

        ask(PARAPHRASES[0][0])
        with memollm.lookup() as seen:
            ask(PARAPHRASES[0][1])
        assert seen.outcome == "miss"
        ask(PARAPHRASES[1][0])
        ask(PARAPHRASES[1][1])
        stats = ask.cache.stats()
        assert (stats.shadow_hits, stats.shadow_mismatches) == (2, 1)
        assert "agree" in caplog.text and "differ" in caplog.text
        assert "semantic" not in stats.hits


class TestEmbedder:
    def test_model_load_failure_degrades_to_exact_caching(
        self, llm: FakeLLM, tmp_path: Any, warnings_log: pytest.LogCaptureFixture
    ) -> None:
        """A model that cannot load turns semantic lookups off with one warning saying how to fix it."""
        pytest.importorskip("fastembed")
        broken = FastEmbedder(path=str(tmp_path / "no-model-here"))

        @cached_llm(semantic=0.9, embedder=broken)
        def ask(question: str) -> str:
            return llm(question)

        for q in (PARAPHRASES[0][0], PARAPHRASES[0][0], PARAPHRASES[0][1], PARAPHRASES[1][0]):
            ask(q)
        assert llm.calls == 3  # the exact repeat still hit
        assert ask.cache.stats().hits == {"memory": 1}
        assert len(warnings_log.records) == 1
        assert "MEMOLLM_EMBED_MODEL_PATH" in warnings_log.text

    def test_a_model_to_download_never_blocks_the_caller(self) -> None:
        """Without a local copy, the download runs in the background; callers see EmbedderLoading."""
        from memollm.semantic.embedder import EmbedderLoading, EmbedderUnavailable

        # An unknown name fails inside fastembed without touching the network.
        embedder = FastEmbedder("no-such-org/no-such-model")
        with pytest.raises(EmbedderLoading, match="MEMOLLM_EMBED_MODEL_PATH"):
            embedder.embed(["x"])
        assert eventually(lambda: not embedder.loading)
        with pytest.raises(EmbedderUnavailable, match="no-such-model") as failed:
            embedder.embed(["x"])
        assert not isinstance(failed.value, EmbedderLoading)

    def test_no_download_when_told_not_to(self) -> None:
        """No download when told not to."""
        from memollm.semantic.embedder import EmbedderLoading, EmbedderUnavailable

        with pytest.raises(EmbedderUnavailable) as failed:
            FastEmbedder("no-such-org/no-such-model", download=False).embed(["x"])
        assert not isinstance(failed.value, EmbedderLoading)

    def test_model_from_the_environment(self, model_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """MEMOLLM_EMBED_MODEL_PATH points the default embedder at a local folder."""
        monkeypatch.setenv("MEMOLLM_EMBED_MODEL_PATH", model_path)
        vectors = FastEmbedder().embed(["hello world", "goodbye"])
        assert vectors.shape == (2, 384)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    def test_plain_callable_embedder(self, llm: FakeLLM) -> None:
        """A plain function can be the embedder (its vectors are normalised)."""

        def letters(texts: list[str]) -> list[list[float]]:
            return [[t.count(c) for c in "abcdefghijklmnopqrstuvwxyz"] for t in texts]

        @cached_llm(semantic=0.99, embedder=letters, verify=False)
        def ask(question: str) -> str:
            return llm(question)

        ask("listen")
        ask("silent")  # same letters: cosine 1
        assert llm.calls == 1

    def test_concurrent_requests_share_batches(self, embedder: Any) -> None:
        """Requests that arrive while the model is busy are embedded together in the next batch."""
        release = threading.Event()
        sizes: list[int] = []

        class Gated:
            def embed(self, texts: list[str]) -> Any:
                sizes.append(len(texts))
                if len(sizes) == 1:
                    release.wait(10)  # the first model call is busy while the others queue up
                return embedder.embed(texts)

        batching = BatchingEmbedder(Gated())
        out: dict[int, Any] = {}
        threads = [
            threading.Thread(
                target=lambda i=i: out.__setitem__(i, batching.embed_one(f"question number {i}"))
            )
            for i in range(16)
        ]
        threads[0].start()
        assert eventually(lambda: bool(sizes))  # the leader is inside the model
        for t in threads[1:]:
            t.start()
        assert eventually(lambda: batching.waiting >= 15)  # every other request is waiting
        release.set()
        for t in threads:
            t.join()
        assert sizes == [1, 15]
        expected = embedder.embed(["question number 3"])[0]
        assert np.allclose(out[3], expected, atol=1e-5)


class TestVerifier:
    @pytest.mark.parametrize(("a", "b"), ADVERSARIAL, ids=["2fa", "numbers", "route", "negation"])
    def test_vetoes(self, a: str, b: str) -> None:
        """Each adversarial pair is vetoed, with a reason."""
        assert explain(a, b) is not None

    @pytest.mark.parametrize(("a", "b"), PARAPHRASES, ids=["list", "reverse", "capital"])
    def test_paraphrases_pass(self, a: str, b: str) -> None:
        """Plain paraphrases pass the guards."""
        assert explain(a, b) is None

    def test_cjk_is_left_to_a_suitable_model(self) -> None:
        """Mostly-CJK prompts are vetoed under the default English model."""
        assert "CJK" in (explain("如何创建列表？", "怎样建立列表？") or "")


SEMANTIC_SCRIPT = """
import json, sys
from memollm import cached_llm
from memollm.testing import FakeLLM

llm = FakeLLM()

@cached_llm(tiers=["memory", sys.argv[1]], semantic=0.85)
def ask(question: str) -> str:
    return llm(question)

answer = ask(sys.argv[2])
print(json.dumps({"calls": llm.calls, "hits": dict(ask.cache.stats().hits), "answer": answer}))
"""


def run_semantic(tmp_path: Any, tier: str, question: str, env: dict[str, str]) -> dict[str, Any]:
    import json
    import os
    import subprocess
    import sys

    script = tmp_path / "semantic_app.py"
    script.write_text(SEMANTIC_SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script), tier, question],
        capture_output=True, text=True, check=True, cwd=tmp_path, env={**os.environ, **env},
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


class TestSharedIndex:
    def test_restart_reloads_from_sqlite(self, tmp_path: Any, model_path: str) -> None:
        """After a restart, a paraphrase of a question asked before is a semantic hit from SQLite."""
        env = {"MEMOLLM_SQLITE_PATH": str(tmp_path / "c.db"), "MEMOLLM_EMBED_MODEL_PATH": model_path}
        first = run_semantic(tmp_path, "sqlite", PARAPHRASES[0][0], env)
        second = run_semantic(tmp_path, "sqlite", PARAPHRASES[0][1], env)
        assert (first["calls"], second["calls"]) == (1, 0)
        assert second["hits"] == {"semantic": 1}
        assert second["answer"] == first["answer"]

    def test_two_processes_share_through_redis(self, tmp_path: Any, model_path: str, redis_url: str) -> None:
        """A second process answers a paraphrase from the first process's entry, through Redis."""
        env = {"MEMOLLM_REDIS_URL": redis_url, "MEMOLLM_EMBED_MODEL_PATH": model_path}
        first = run_semantic(tmp_path, "redis", PARAPHRASES[1][0], env)
        second = run_semantic(tmp_path, "redis", PARAPHRASES[1][1], env)
        assert (first["calls"], second["calls"]) == (1, 0)
        assert second["hits"] == {"semantic": 1}

    @pytest.mark.parametrize("tier", ["sqlite", "redis"])
    def test_garbage_in_the_shared_log_is_skipped(
        self, tmp_path: Any, model_path: str, tier: str, request: pytest.FixtureRequest
    ) -> None:
        """Rows of wrong types, lengths or encodings in the vector log are skipped; rows after them count."""
        import redis as redis_py

        db = tmp_path / "c.db"
        env = {"MEMOLLM_EMBED_MODEL_PATH": model_path}
        if tier == "sqlite":
            env["MEMOLLM_SQLITE_PATH"] = str(db)
        else:
            env["MEMOLLM_REDIS_URL"] = request.getfixturevalue("redis_url")
        run_semantic(tmp_path, tier, PARAPHRASES[0][0], env)
        if tier == "sqlite":
            with closing(sqlite3.connect(db, isolation_level=None)) as conn:
                (partition,) = conn.execute("SELECT partition FROM vectors").fetchone()
                half = b"\x00\x3c"  # 1.0 as float16
                garbage = [("k1", "t", "not bytes", None), ("k2", "t", half * 7, None),
                           (3, 4.5, half * 384, "never"), ("k4", "t", b"\x00\x7e" * 384, None)]  # fmt: skip
                conn.executemany(
                    "INSERT INTO vectors (partition, key, text, vector, expires) VALUES (?, ?, ?, ?, ?)",
                    [(partition, *row) for row in garbage],
                )
        else:
            admin = redis_py.Redis.from_url(env["MEMOLLM_REDIS_URL"])
            (stream,) = list(admin.scan_iter(match="*:vectors"))
            rows = [{"k": b"\xff\xfe"}, {"k": "k", "t": "t", "v": b"abc"},
                    {"k": "k", "t": b"\xff", "v": b"ab"},
                    {"k": "k", "t": "t", "v": b"\x00\x3c" * 384, "e": "soon"}]  # fmt: skip
            for fields in rows:
                admin.xadd(stream, fields)
        second = run_semantic(tmp_path, tier, PARAPHRASES[1][0], env)
        third = run_semantic(tmp_path, tier, PARAPHRASES[1][1], env)
        assert (second["calls"], third["calls"]) == (1, 0)
        assert third["hits"] == {"semantic": 1}

    def test_clearing_a_function_clears_its_shared_vectors(self, tmp_path: Any, model_path: str) -> None:
        """fn.cache.clear() removes the function's logged vectors, so a restart does not bring them back."""
        from memollm.backends.sqlite import SQLiteBackend

        db = tmp_path / "c.db"
        env = {"MEMOLLM_SQLITE_PATH": str(db), "MEMOLLM_EMBED_MODEL_PATH": model_path}
        run_semantic(tmp_path, "sqlite", PARAPHRASES[2][0], env)
        backend = SQLiteBackend(db)

        def logged() -> int:
            with closing(sqlite3.connect(db)) as conn:
                return int(conn.execute("SELECT count(*) FROM vectors").fetchone()[0])

        assert logged() == 1
        assert backend.clear() == 1
        assert logged() == 0
        backend.close()


def test_approximate_index_finds_what_exact_search_finds() -> None:
    """Past its threshold a partition searches an HNSW index, with the same answers as exact search."""
    if importlib.util.find_spec("usearch") is None:  # not imported here: see the onnxruntime test
        pytest.skip("the semantic extra is not installed")
    rng = np.random.default_rng(0)
    base = rng.normal(size=(400, 64)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    exact = SemanticIndex(max_entries=10_000, ann_threshold=10**9)
    approximate = SemanticIndex(max_entries=10_000, ann_threshold=100)
    keys, texts = [f"k{i}" for i in range(400)], [f"t{i}" for i in range(400)]
    exact.add_many("p", keys, base, texts)
    for i, vector in enumerate(base):  # one by one: the index is built when the threshold is passed
        approximate.add("p", keys[i], vector, texts[i], None)
    assert approximate.graph_size("p") is not None
    agree = 0
    for i in range(100):
        query = base[i] + 0.05 * rng.normal(size=64).astype(np.float32)
        query /= np.linalg.norm(query)
        found = (
            exact.search("p", query, k=1, threshold=0.5),
            approximate.search("p", query, k=1, threshold=0.5),
        )
        # HNSW is approximate: now and then it misses (an empty answer, so a cache miss, never a
        # wrong hit). Recall measured at scale is in benchmarks/bench_semantic.py.
        agree += bool(found[1]) and found[0][0].key == found[1][0].key
    assert agree >= 96
    approximate.remove("p", "k5")
    assert all(c.key != "k5" for c in approximate.search("p", base[5], k=3, threshold=0.0))


def test_without_usearch_large_partitions_stay_exact(
    monkeypatch: pytest.MonkeyPatch, warnings_log: pytest.LogCaptureFixture
) -> None:
    """Without usearch a large partition keeps answering from exact search, with one warning."""
    import sys

    monkeypatch.setitem(sys.modules, "usearch", None)
    monkeypatch.setitem(sys.modules, "usearch.index", None)
    index = SemanticIndex(max_entries=1000, ann_threshold=10)
    vectors = np.eye(20, dtype=np.float32)
    for i in range(20):
        index.add("p", f"k{i}", vectors[i], f"t{i}", None)
    assert index.search("p", vectors[15], k=1)[0].key == "k15"
    assert warnings_log.text.count("usearch is not installed") == 1


class TestSemanticStreams:
    def test_paraphrase_replays_the_stream(self, llm: FakeLLM, embedder: Any) -> None:
        """A streamed answer is replayed, chunk by chunk, for a re-phrased question."""

        @cached_llm(semantic=0.85, embedder=embedder)
        def stream(question: str) -> Any:
            yield from llm.stream(question)

        first = list(stream(PARAPHRASES[0][0]))
        with memollm.lookup() as seen:
            again = list(stream(PARAPHRASES[0][1]))
        assert again == first
        assert llm.calls == 1
        assert seen.outcome == "semantic-hit"

    async def test_async_stream_paraphrase(self, llm: FakeLLM, embedder: Any) -> None:
        """Async streams get semantic hits too."""

        @cached_llm(semantic=0.85, embedder=embedder)
        async def stream(question: str) -> Any:
            async for chunk in llm.astream(question):
                yield chunk

        first = [c async for c in stream(PARAPHRASES[1][0])]
        again = [c async for c in stream(PARAPHRASES[1][1])]
        assert again == first
        assert llm.calls == 1


def test_onnxruntime_after_a_large_partition_does_not_crash(tmp_path: Path) -> None:
    """Importing usearch, then onnxruntime, segfaults (usearch 2.26, onnxruntime 1.32).

    The index loads onnxruntime before usearch, so an application that loads a model late lives.
    """
    # Only looked up, not imported: importing usearch here would crash this very process later.
    if importlib.util.find_spec("usearch") is None or importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("the semantic extra is not installed")
    script = tmp_path / "order.py"
    script.write_text(
        "import numpy as np\n"
        "from memollm.semantic.index import SemanticIndex\n"
        "index = SemanticIndex(max_entries=1000, ann_threshold=10)\n"
        "v = np.eye(32, dtype=np.float32)[:20]\n"
        "index.add_many('p', [f'k{i}' for i in range(20)], v, [f't{i}' for i in range(20)])\n"
        "assert index.graph_size('p') is not None\n"
        "import onnxruntime\n"
        "print('alive')\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=False, timeout=120
    )
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    assert "alive" in out.stdout
