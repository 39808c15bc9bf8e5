"""Redis tier against real servers: faults, URL forms, sharing between processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import memollm
from memollm import cached_llm
from memollm.backends.guard import OPEN, CircuitBreaker
from memollm.backends.redis import RedisBackend
from memollm.testing import FakeLLM

from ..helpers import eventually
from ..servers import RedisServer, free_port


def test_redis_down_at_start_up(warnings_log: pytest.LogCaptureFixture) -> None:
    """With nothing listening, the application starts and every call is answered; the tier is skipped."""
    memollm.register_tier("redis", RedisBackend(f"redis://127.0.0.1:{free_port()}/0"))
    llm = FakeLLM()

    @cached_llm(tiers=["redis"])
    def ask(prompt: str) -> str:
        return llm(prompt)

    results = [ask(f"q{i % 5}") for i in range(100)]
    assert results == [llm.answer(f"q{i % 5}") for i in range(100)]
    assert llm.calls == 100
    # Three refused connections open the breaker; after that the tier is not even tried.
    assert ask.cache.stats().errors == 3
    assert "skipping it" in warnings_log.text


def test_cluster_down_at_start_up() -> None:
    """A cluster client that cannot reach any node fails open too."""
    memollm.register_tier("redis", RedisBackend(f"redis://127.0.0.1:{free_port()}/0", cluster=True))

    @cached_llm(tiers=["memory", "redis"])
    def ask(prompt: str) -> str:
        return prompt.upper()

    assert [ask("a"), ask("a")] == ["A", "A"]
    assert ask.cache.stats().hits == {"memory": 1}


def test_killed_mid_workload_then_back(fresh_redis: RedisServer) -> None:
    """Redis killed under 8 threads: no exception reaches a caller, every answer is right.

    And once it restarts, Redis serves hits again within seconds.
    """
    memollm.register_tier(
        "redis",
        RedisBackend(fresh_redis.url),
        breaker=CircuitBreaker(failures=3, backoff=0.05, max_backoff=0.5),
    )
    llm = FakeLLM()

    @cached_llm(tiers=["redis"])
    def ask(prompt: str) -> str:
        return llm(prompt)

    prompts = [f"question {i}" for i in range(40)]
    expected = {p: llm.answer(p) for p in prompts}
    halfway = threading.Barrier(9)
    killed = threading.Event()
    problems: list[object] = []

    def work(n: int) -> None:
        try:
            for i in range(600):
                if i == 300:
                    halfway.wait(30)
                    killed.wait(30)
                prompt = prompts[(i * 7 + n) % len(prompts)]
                if ask(prompt) != expected[prompt]:
                    problems.append(("wrong answer", prompt))
        except BaseException as exc:
            problems.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    halfway.wait(30)
    before_kill = ask.cache.stats()
    fresh_redis.kill()
    killed.set()
    for t in threads:
        t.join(60)
    assert problems == []
    assert before_kill.hits.get("redis", 0) > 1000
    during = ask.cache.stats()
    assert during.errors >= 1

    fresh_redis.start()
    hits_before = ask.cache.stats().hits.get("redis", 0)

    def serves_hits() -> bool:
        ask("after restart")
        return ask.cache.stats().hits.get("redis", 0) > hits_before

    assert eventually(serves_hits, timeout=10)


def test_stalled_redis_never_hangs_a_call(fresh_redis: RedisServer) -> None:
    """A Redis that accepts but never answers (SIGSTOP) costs a call at most the timeout."""
    backend = RedisBackend(fresh_redis.url, timeout=0.2, connect_timeout=0.2)
    memollm.register_tier("redis", backend)
    llm = FakeLLM()

    @cached_llm(tiers=["redis"])
    def ask(prompt: str) -> str:
        return llm(prompt)

    ask("warm")  # connection established before the stall
    fresh_redis.pause()
    results: list[str] = []
    runner = threading.Thread(target=lambda: results.extend(ask(f"q{i}") for i in range(20)))
    runner.start()
    runner.join(30)  # a guard against hanging, not a timing assertion
    fresh_redis.resume()
    assert not runner.is_alive(), "a call hung on a stalled Redis"
    assert results == [llm.answer(f"q{i}") for i in range(20)]
    breaker = memollm.registry.get_tier("redis").breaker
    assert breaker.state == OPEN
    assert ask.cache.stats().errors == 3


def test_corrupt_bytes_and_foreign_values(redis_url: str, warnings_log: pytest.LogCaptureFixture) -> None:
    """Garbage under a memollm key is a counted miss and is replaced.

    A key of another Redis type (WRONGTYPE on GET) is an error, not a crash, and the next
    store repairs it.
    """
    backend = RedisBackend(redis_url)
    memollm.register_tier("redis", backend)
    llm = FakeLLM()

    @cached_llm(tiers=["redis"])
    def ask(prompt: str) -> str:
        return llm(prompt)

    raw = backend.client
    raw.set(backend.full_key(ask.cache.key_for("garbage")), b"\xc1\xc1 not msgpack")
    raw.lpush(backend.full_key(ask.cache.key_for("a list")), b"x")
    raw.set("memollm:default:not-ours", b"foreign")
    assert ask("garbage") == llm.answer("garbage")
    assert ask("a list") == llm.answer("a list")
    stats = ask.cache.stats()
    assert (stats.corrupt, stats.errors) == (1, 1)
    assert ask("garbage") == llm.answer("garbage")
    assert ask("a list") == llm.answer("a list")
    assert llm.calls == 2
    assert ask.cache.stats().hits == {"redis": 2}
    assert raw.get("memollm:default:not-ours") == b"foreign"


def test_key_layout_and_ttl(redis_url: str) -> None:
    """Entries live at memollm:<namespace>:<function>:<call> with the policy's TTL set by SET PX."""
    backend = RedisBackend(redis_url)
    memollm.register_tier("redis", backend)

    @cached_llm(tiers=["redis"], namespace="team-a", ttl=120)
    def ask(prompt: str) -> str:
        return prompt

    ask("x")
    (key,) = backend.client.keys("*")
    assert key.decode() == "memollm:" + ask.cache.key_for("x")
    assert key.decode().startswith("memollm:team-a:")
    assert 115_000 < backend.client.pttl(key) <= 120_000


def test_acl_user_and_password(redis_server: RedisServer, redis_url: str) -> None:
    """An ACL user and password in the URL authenticate; the password never shows in a repr."""
    admin = redis_server.client()
    admin.acl_setuser("app", enabled=True, passwords=["+s3cret-pw"], keys=["memollm:*"], commands=["+@all"])
    try:
        good = RedisBackend(f"redis://app:s3cret-pw@127.0.0.1:{redis_server.port}/0")
        good.set("k", b"v", 60)
        assert good.get("k") == b"v"
        assert "s3cret-pw" not in repr(good)
        bad = RedisBackend(f"redis://app:wrong@127.0.0.1:{redis_server.port}/0")
        memollm.register_tier("redis", bad)

        @cached_llm(tiers=["redis"])
        def ask(prompt: str) -> str:
            return prompt

        assert ask("x") == "x"
        assert ask.cache.stats().errors == 2  # the read and the write were refused
    finally:
        admin.acl_deluser("app")


@pytest.fixture
def tls_redis(tmp_path: Path) -> object:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: cannot make certificates for the TLS test")
    d = tmp_path / "tls"
    d.mkdir()

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "2", "-subj", "/CN=memollm-test-ca")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")  # fmt: skip
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf")  # fmt: skip
    port = free_port()
    server = RedisServer(
        tmp_path / "redis",
        port=free_port(),
        extra=("--tls-port", str(port), "--tls-cert-file", str(d / "server.crt"),
               "--tls-key-file", str(d / "server.key"), "--tls-ca-cert-file", str(d / "ca.crt"),
               "--tls-auth-clients", "no"),
    )  # fmt: skip
    server.start()
    yield port, str(d / "ca.crt")
    server.stop()


def test_tls(tls_redis: tuple[int, str]) -> None:
    """rediss:// talks TLS, verifying the server against the given CA."""
    port, ca = tls_redis
    backend = RedisBackend(f"rediss://127.0.0.1:{port}/0", ssl_ca_certs=ca)
    backend.set("k", b"v", 60)
    assert backend.get("k") == b"v"
    backend.close()


SHARE_SCRIPT = """
import json, sys
from memollm import cached_llm
from memollm.testing import FakeLLM

llm = FakeLLM()

@cached_llm(tiers=[sys.argv[1]])
def ask(prompt: str) -> str:
    return llm(prompt)

answer = ask("what is shared?")
print(json.dumps({"calls": llm.calls, "hits": dict(ask.cache.stats().hits), "answer": answer}))
"""


def run_twice(tmp_path: Path, tier: str, env: dict[str, str]) -> list[dict[str, object]]:
    import json

    script = tmp_path / "share.py"
    script.write_text(SHARE_SCRIPT)
    full_env = {**os.environ, **env}
    full_env.pop("MEMOLLM_CONFIG", None)
    outputs = []
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, str(script), tier],
            capture_output=True,
            text=True,
            check=True,
            env=full_env,
            cwd=tmp_path,
        )
        outputs.append(json.loads(out.stdout))
    return outputs


def test_two_processes_share_hits_through_redis(redis_url: str, tmp_path: Path) -> None:
    """One process stores an answer; another process, configured by MEMOLLM_REDIS_URL, hits it."""
    first, second = run_twice(tmp_path, "redis", {"MEMOLLM_REDIS_URL": redis_url})
    assert (first["calls"], first["hits"]) == (1, {})
    assert (second["calls"], second["hits"]) == (0, {"redis": 1})
    assert first["answer"] == second["answer"]


def test_two_processes_share_hits_through_sqlite(tmp_path: Path) -> None:
    """One process stores an answer in a SQLite file; a later process (a restart) hits it."""
    db = tmp_path / "shared.db"
    first, second = run_twice(tmp_path, "sqlite", {"MEMOLLM_SQLITE_PATH": str(db)})
    assert (first["calls"], second["calls"]) == (1, 0)
    assert second["hits"] == {"sqlite": 1}


@pytest.mark.parametrize("fault", ["oom", "readonly"])
def test_write_refusals_fail_open(fault: str, fresh_redis: RedisServer, redis_server: RedisServer) -> None:
    """A Redis out of memory (noeviction) or turned read-only refuses writes; calls still answer."""
    backend = RedisBackend(fresh_redis.url)
    memollm.register_tier("redis", backend)
    admin = fresh_redis.client()
    if fault == "oom":
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", 1)
    else:
        admin.replicaof("127.0.0.1", redis_server.port)
    llm = FakeLLM()

    @cached_llm(tiers=["memory", "redis"])
    def ask(prompt: str) -> str:
        return llm(prompt)

    assert [ask("a"), ask("a"), ask("b")] == [llm.answer("a"), llm.answer("a"), llm.answer("b")]
    stats = ask.cache.stats()
    assert stats.errors == 2  # the two writes to Redis were refused
    assert stats.hits == {"memory": 1}
    if fault == "readonly":
        admin.replicaof("NO", "ONE")


def test_strict_raises_while_the_tier_is_skipped() -> None:
    """With strict=True a tier skipped by its open breaker raises TierUnavailableError."""
    memollm.register_tier(
        "redis", RedisBackend(f"redis://127.0.0.1:{free_port()}/0"), breaker=CircuitBreaker(failures=1)
    )

    @cached_llm(tiers=["redis"], strict=True)
    def ask(prompt: str) -> str:
        return prompt

    with pytest.raises(memollm.BackendError):
        ask("x")
    with pytest.raises(memollm.TierUnavailableError, match="circuit open"):
        ask("x")


def test_moved_storm_fails_open(cluster_url: str) -> None:
    """A plain client pointed at a Cluster node gets MOVED for most keys: answers still come back."""
    memollm.register_tier("redis", RedisBackend(cluster_url), breaker=CircuitBreaker(failures=1000))
    llm = FakeLLM()

    @cached_llm(tiers=["redis"])
    def ask(prompt: str) -> str:
        return llm(prompt)

    prompts = [f"q{i}" for i in range(30)]
    assert [ask(p) for p in prompts + prompts] == [llm.answer(p) for p in prompts + prompts]
    stats = ask.cache.stats()
    assert stats.errors > 10  # MOVED replies, counted
    assert stats.hits.get("redis", 0) > 0  # keys in the node's own slots still hit
    assert stats.hits.get("redis", 0) + llm.calls == 60
