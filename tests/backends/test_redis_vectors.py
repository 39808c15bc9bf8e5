"""The semantic index in a Redis server with vector search (Redis 7.4 + RediSearch), and its fallbacks."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis as redis_py

import memollm
from memollm import cached_llm
from memollm.backends import MemoryBackend
from memollm.backends.redis import RedisBackend
from memollm.backends.redis_vectors import RedisVectorIndex, supports_vector_search
from memollm.testing import FakeLLM

from ..servers import RedisServer
from ..test_semantic import LOOKALIKES, PARAPHRASES


def semantic_fn(llm: FakeLLM, embedder: Any, url: str, **settings: Any) -> Any:
    @cached_llm(tiers=(MemoryBackend(), RedisBackend(url)), semantic=0.85, embedder=embedder, **settings)
    def ask(question: str, model: str = "m") -> str:
        return llm(question, model)

    return ask


def vector_keys(url: str) -> list[bytes]:
    return list(redis_py.Redis.from_url(url).scan_iter(match="memollm:vec:*"))


def test_detection(stack_url: str, redis_url: str) -> None:
    """Vector search is found on a server with RediSearch, and not on a plain Redis."""
    assert supports_vector_search(RedisBackend(stack_url))
    assert not supports_vector_search(RedisBackend(redis_url))


def test_paraphrases_are_found_in_the_server(stack_url: str, embedder: Any) -> None:
    """Paraphrases are found in the server."""
    llm = FakeLLM()
    ask = semantic_fn(llm, embedder, stack_url)
    for first, second in PARAPHRASES:
        assert ask(second) == ask(first)
    assert llm.calls == len(PARAPHRASES)
    assert ask.cache.stats().hits == {"semantic": len(PARAPHRASES)}
    admin = redis_py.Redis.from_url(stack_url)
    assert len(vector_keys(stack_url)) == len(PARAPHRASES)
    assert not list(admin.scan_iter(match="*:vectors"))  # no log to replay: the server holds the index


def test_plain_redis_keeps_the_process_index(redis_url: str, embedder: Any) -> None:
    """Plain redis keeps the process index."""
    llm = FakeLLM()
    ask = semantic_fn(llm, embedder, redis_url)
    first, second = PARAPHRASES[0]
    ask(first)
    assert ask(second) == ask(first) and llm.calls == 1
    assert vector_keys(redis_url) == []
    assert list(redis_py.Redis.from_url(redis_url).scan_iter(match="*:vectors"))


def test_the_setting_forces_either(stack_url: str, redis_url: str, embedder: Any, caplog: Any) -> None:
    """The setting forces either."""
    llm = FakeLLM()
    process = semantic_fn(llm, embedder, stack_url, semantic_index="process")
    process(PARAPHRASES[0][0])
    assert vector_keys(stack_url) == []
    with caplog.at_level(logging.WARNING, logger="memollm"):
        server = semantic_fn(llm, embedder, redis_url, semantic_index="server")
        first, second = PARAPHRASES[1]
        server(first)
        assert server(second) == server(first)
    assert "semantic_index='server'" in caplog.text


def test_a_cluster_tier_shares_the_process_index_through_its_log(cluster_url: str, embedder: Any) -> None:
    """The documented Cluster set-up: no server index (RediSearch searches one node), the log is shared."""
    assert not supports_vector_search(RedisBackend(cluster_url, cluster=True))
    llm = FakeLLM()

    def worker() -> Any:
        tiers = (MemoryBackend(), RedisBackend(cluster_url, cluster=True))

        @cached_llm(tiers=tiers, semantic=0.85, embedder=embedder, semantic_index="auto")
        def ask(question: str) -> str:
            return llm(question)

        return ask

    one, two = worker(), worker()  # two processes' worth of state: separate memory, separate index
    first, second = PARAPHRASES[0]
    answer = one(first)
    assert two(second) == answer and llm.calls == 1
    assert two.cache.stats().hits == {"semantic": 1}
    admin = redis_py.RedisCluster.from_url(cluster_url)
    assert list(admin.scan_iter(match="memollm:vec:*")) == []
    assert list(admin.scan_iter(match="*:vectors"))  # the shared log the second worker read


def test_tenants_and_partitions_never_cross(stack_url: str, embedder: Any) -> None:
    """Tenants and partitions never cross."""
    llm = FakeLLM()
    ask = semantic_fn(llm, embedder, stack_url)
    first, second = PARAPHRASES[0]
    with memollm.tenant("a"):
        ask(first)
    with memollm.tenant("b"):
        ask(second)
    ask(second, model="other")
    assert llm.calls == 3


def test_the_verifier_still_decides(stack_url: str, embedder: Any) -> None:
    """The verifier still decides."""
    llm = FakeLLM()
    ask = semantic_fn(llm, embedder, stack_url)
    for a, b in LOOKALIKES:
        assert ask(a) != ask(b)
    assert llm.calls == 2 * len(LOOKALIKES)


def test_a_candidate_must_be_a_live_entry(stack_url: str, embedder: Any) -> None:
    """An invalidated entry is never served; its vector goes; clear() removes every vector."""
    llm = FakeLLM()
    ask = semantic_fn(llm, embedder, stack_url)
    first, second = PARAPHRASES[2]
    ask(first)
    ask.cache.invalidate(first)
    assert vector_keys(stack_url) == []
    ask(second)
    assert llm.calls == 2
    redis_py.Redis.from_url(stack_url).delete(*redis_py.Redis.from_url(stack_url).keys("memollm:default:*"))
    ask.cache.clear()  # the memory tier too: the next lookup must go to the server index
    ask(first)
    assert llm.calls == 3
    assert len(vector_keys(stack_url)) == 1
    ask.cache.clear()
    assert vector_keys(stack_url) == []


def test_a_vanished_server_fails_open(embedder: Any, fresh_stack: RedisServer) -> None:
    """A vanished server fails open."""
    server = fresh_stack
    llm = FakeLLM()
    ask = semantic_fn(llm, embedder, server.url)
    first, second = PARAPHRASES[0]
    ask(first)
    server.kill()
    assert ask(first) == ask(first)  # the memory tier still answers exact repeats
    ask(second)  # the server index is gone: a miss, never an exception
    assert llm.calls == 2
    assert ask.cache.stats().errors >= 1


@pytest.mark.parametrize("face", ["aclear", "ainvalidate"])
async def test_async_forgetting_leaves_the_loop_free(
    face: str, embedder: Any, fresh_stack: RedisServer
) -> None:
    """With the index in a stalled server, aclear()/ainvalidate() wait in a thread, not on the loop."""
    import asyncio

    server = fresh_stack
    llm = FakeLLM()

    @cached_llm(
        tiers=(MemoryBackend(), RedisBackend(server.url, timeout=5)), semantic=0.85, embedder=embedder
    )
    async def ask(question: str) -> str:
        return llm(question)

    first = PARAPHRASES[0][0]
    await ask(first)
    assert len(vector_keys(server.url)) == 1
    server.pause()
    forgetting = asyncio.create_task(getattr(ask.cache, face)(*([] if face == "aclear" else [first])))
    started = time.monotonic()
    for _ in range(20):  # the loop keeps turning while the stalled call waits (5 s timeout)
        await asyncio.sleep(0)
    assert time.monotonic() - started < 2.5
    assert not forgetting.done()
    server.resume()
    await forgetting
    assert vector_keys(server.url) == []


NEW_PROCESS = """
import json, sys
from memollm import cached_llm
from memollm.testing import FakeLLM

llm = FakeLLM()

@cached_llm(tiers=["memory", "redis"], semantic=0.85)
def ask(question: str) -> str:
    return llm(question)

answer = ask(sys.argv[1])
print(json.dumps({"calls": llm.calls, "hits": dict(ask.cache.stats().hits), "answer": answer}))
"""


def test_a_new_process_serves_from_its_first_lookup(stack_url: str, model_path: str, tmp_path: Path) -> None:
    """A new process serves from its first lookup."""
    script = tmp_path / "app.py"
    script.write_text(NEW_PROCESS)
    env = {**os.environ, "MEMOLLM_REDIS_URL": stack_url, "MEMOLLM_EMBED_MODEL_PATH": model_path}

    def run(question: str) -> dict[str, Any]:
        command = [sys.executable, str(script), question]
        out = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))

    first, second = PARAPHRASES[1]
    stored = run(first)
    served = run(second)
    assert served == {"calls": 0, "hits": {"semantic": 1}, "answer": stored["answer"]}


@pytest.mark.parametrize("protocol", [2, 3])
def test_replies_of_the_wrong_shape_are_skipped(stack_url: str, protocol: int) -> None:
    """Stored bytes are untrusted: a vector hash with a bad text is skipped; RESP2 and RESP3 alike."""
    import numpy as np

    index = RedisVectorIndex(RedisBackend(stack_url, protocol=protocol))
    vector = np.ones(4, dtype=np.float32) / 2
    index.add("p", "good", "a prompt", vector.tobytes(), None)
    index.add("p", "bad", "x", vector.tobytes(), None)
    redis_py.Redis.from_url(stack_url).hset("memollm:vec:bad", "t", b"\xff\xfe")  # not UTF-8
    found = index.search("p", vector.tobytes(), 5, 0.5)
    assert [(key, text) for key, text, _ in found] == [("good", "a prompt")]
    assert index.search("other partition", vector.tobytes(), 5, 0.0) == []


# -- the index heals: it is created again, and never costs the exact tier -----------------------

TOPICS = ["a proxy", "a database index", "a hash map", "a mutex", "a compiler", "a kernel", "an API",
          "a container", "a socket", "a thread", "a cache", "a queue", "a graph", "a linked list",
          "a checksum", "a router"]  # fmt: skip


def _drop_index(admin: Any) -> None:
    for name in admin.execute_command("FT._LIST"):
        admin.execute_command("FT.DROPINDEX", name)


@pytest.mark.parametrize("how", ["dropindex", "flushall"])
def test_a_vanished_index_heals_without_costing_exact_writes(
    stack_url: str, embedder: Any, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Index dropped or server flushed: one warning, exact writes all land, semantic hits come back."""
    from ..helpers import in_threads

    llm = FakeLLM()
    ask = semantic_fn(llm, embedder, stack_url)
    first, second = PARAPHRASES[0]
    ask(first)
    assert ask(second) == ask(first)
    admin = redis_py.Redis.from_url(stack_url)
    _drop_index(admin) if how == "dropindex" else admin.flushall()
    questions = [f"What is {topic}, in one sentence?" for topic in TOPICS]
    with caplog.at_level(logging.WARNING, logger="memollm"):
        assert not in_threads(lambda i: [ask(q) for q in questions[i::8]], 8)
    assert ask.cache.stats().errors == 0
    assert all(
        admin.exists(f"memollm:{ask.cache.key_for(q)}") for q in questions
    )  # every answer reached Redis
    gone = [r for r in caplog.records if "was gone" in r.getMessage()]
    assert len(gone) == 1
    assert not [r for r in caplog.records if "failed" in r.getMessage()]  # no breaker opened
    again, paraphrase = PARAPHRASES[1]
    calls = llm.calls
    ask(again)
    assert ask(paraphrase) == ask(again)
    assert llm.calls == calls + 1


def test_a_restart_without_persistence_heals(embedder: Any, fresh_stack: RedisServer) -> None:
    """A Redis Stack restarted empty: once it answers again, the index is made again and serves hits."""
    from ..helpers import eventually

    server = fresh_stack
    llm = FakeLLM()
    ask = semantic_fn(llm, embedder, server.url)
    ask(PARAPHRASES[0][0])
    server.stop()
    server.start()
    first, second = PARAPHRASES[2]
    admin = redis_py.Redis.from_url(server.url)
    # The first calls after the restart may meet dead pooled connections; then it must settle.
    assert eventually(
        lambda: ask(first) is not None and admin.exists(f"memollm:{ask.cache.key_for(first)}") == 1
    )
    calls = llm.calls
    assert eventually(lambda: ask(second) == ask(first))
    assert llm.calls == calls
    assert ask.cache.stats().hits.get("semantic", 0) >= 1


def test_a_database_that_cannot_be_indexed_keeps_the_process_index(
    stack_url: str, embedder: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """RediSearch indexes db 0 only: on db 1, one warning, the process index, no tier errors."""
    url = stack_url.rsplit("/", 1)[0] + "/1"
    with caplog.at_level(logging.WARNING, logger="memollm"):
        assert not supports_vector_search(RedisBackend(url))
        llm = FakeLLM()
        ask = semantic_fn(llm, embedder, url)
        first, second = PARAPHRASES[0]
        ask(first)
        assert ask(second) == ask(first)
        ask(first)
    assert llm.calls == 1
    assert ask.cache.stats().errors == 0
    assert vector_keys(url) == []
    assert sum("cannot index here" in r.getMessage() for r in caplog.records) == 1


def test_which_index_is_used_is_said(stack_url: str, redis_url: str, embedder: Any,
                                     caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    """An INFO line when a function's index goes to the server; `memollm stats` names the index."""
    from click.testing import CliRunner

    from memollm.cli import main

    with caplog.at_level(logging.INFO, logger="memollm"):
        ask = semantic_fn(FakeLLM(), embedder, stack_url)
        ask(PARAPHRASES[0][0])
    assert any("semantic index is in the Redis server" in r.getMessage() for r in caplog.records)
    served = CliRunner().invoke(main, ["stats", "--redis", stack_url])
    assert served.exit_code == 0, served.output
    assert "semantic index: in this Redis server (vector search), 1 prompts indexed" in served.output
    plain = CliRunner().invoke(main, ["stats", "--redis", redis_url])
    assert "semantic index: in each process" in plain.output
