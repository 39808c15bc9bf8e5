"""Leases in a real Redis: held while renewed, taken over when lapsed, never released by another."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
import redis

from memollm.backends.guard import CircuitBreaker, Guarded
from memollm.backends.redis import RedisBackend
from memollm.coalesce import processes

from ..servers import RedisServer


class FakeClock:
    """A clock that moves only when the code under test sleeps on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def tier(url: str) -> Guarded:
    return Guarded(RedisBackend(url))


def test_a_lease_is_exclusive_and_released_only_by_its_holder(redis_url: str) -> None:
    """While one process holds the lock another cannot take it; release frees it for the next."""
    shared = tier(redis_url)
    first = processes.take(shared, "k", 3.0)
    assert first is not None
    assert processes.take(shared, "k", 3.0) is None
    first.release()
    second = processes.take(shared, "k", 3.0)
    assert second is not None
    first.release()  # a stale holder's release leaves the new holder's lock alone
    assert processes.take(shared, "k", 3.0) is None
    second.release()


def test_a_result_found_once_the_lock_is_free_is_taken_and_the_lock_returned(redis_url: str) -> None:
    """If the lock is free and the result is there, the waiter returns it and frees the lock at once."""
    shared = tier(redis_url)
    waited = processes.lead_or_wait(shared, "k", 5.0, lambda: "stored answer")
    assert (waited.lease, waited.found) == (None, "stored answer")
    assert processes.take(shared, "k", 3.0) is not None  # not left locked


def test_a_waiter_gives_up_after_lock_timeout(redis_url: str) -> None:
    """With the lock held and no result, lead_or_wait returns neither after lock_timeout: call alone."""
    shared = tier(redis_url)
    held = processes.take(shared, "k", 3.0)
    assert held is not None
    clock = FakeClock()
    waited = processes.lead_or_wait(shared, "k", 0.2, lambda: None, clock=clock, sleep=clock.advance)
    assert (waited.lease, waited.found) == (None, None)
    assert clock.now >= 0.2  # it waited out the whole lock_timeout, polling, before giving up
    assert clock.slept == pytest.approx([processes.POLL] * len(clock.slept))
    held.release()


async def test_async_waiting_and_giving_up(redis_url: str) -> None:
    """The async face waits for a result, takes a free lock, and gives up after lock_timeout."""
    shared = tier(redis_url)
    held = await processes.atake(shared, "k", 3.0)
    assert held is not None

    async def nothing() -> None:
        return None

    async def answer() -> str:
        return "stored"

    clock = FakeClock()

    async def asleep(seconds: float) -> None:
        clock.advance(seconds)

    gave_up = await processes.alead_or_wait(shared, "k", 0.2, nothing, clock=clock, asleep=asleep)
    assert (gave_up.lease, gave_up.found) == (None, None)
    assert clock.now >= 0.2
    assert (await processes.alead_or_wait(shared, "k", 5.0, answer)).found == "stored"
    await held.release()
    waited = await processes.alead_or_wait(shared, "k", 5.0, answer)  # free now: found after taking it
    assert (waited.lease, waited.found) == (None, "stored")
    mine = await processes.alead_or_wait(shared, "k", 5.0, nothing)
    assert mine.lease is not None
    await mine.lease.release()
    await shared.backend.aclose()


def test_an_open_breaker_stops_the_wait(fresh_redis: RedisServer) -> None:
    """A Redis that fails while a waiter polls opens its breaker: the waiter calls alone."""
    shared = Guarded(RedisBackend(fresh_redis.url), CircuitBreaker(failures=1, backoff=60, max_backoff=60))
    held = processes.take(shared, "k", 3.0)
    assert held is not None
    fresh_redis.kill()
    with pytest.raises(redis.RedisError):
        processes.lead_or_wait(shared, "k", 5.0, lambda: None)
    assert not shared.breaker.allow()
    with pytest.raises(Exception, match="unavailable"):
        processes.take(shared, "k", 3.0)


async def test_a_failed_renewal_is_logged_not_raised(
    fresh_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """If Redis goes away while the call runs, renewing the lease fails quietly; the call goes on."""
    caplog.set_level(logging.DEBUG, logger="memollm")
    shared = tier(fresh_redis.url)
    held = processes.take(shared, "sync", 0.3)
    aheld = await processes.atake(shared, "async", 0.3)
    assert held is not None and aheld is not None
    fresh_redis.kill()
    deadline = time.monotonic() + 5
    while caplog.text.count("renewing a single-flight lease failed") < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # renewals run every 0.1 s, on a thread and in a task
    assert caplog.text.count("renewing a single-flight lease failed") >= 2
    held.release()
    await aheld.release()
    await shared.backend.aclose()


# -- a holder that wakes late never overwrites the answer of the one that took over -------------

LATE_HOLDER = """
import asyncio, json, os, pathlib, sys, time
import memollm
from memollm.backends.redis import RedisBackend

memollm.register_tier("redis", RedisBackend(os.environ["REDIS"]))
name, folder, face = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
settings = {"tiers": ["memory", "redis"], "distributed": True, "version": "1"}

def answered() -> str:
    (folder / f"{name}.calling").touch()
    while not (folder / f"{name}.go").exists():  # the test says when the model answers
        time.sleep(0.01)
    return f"answer from {name}"

@memollm.cached_llm(**settings)
def ask(question: str) -> str:
    return answered()

@memollm.cached_llm(**settings)
async def aask(question: str) -> str:
    return await asyncio.to_thread(answered)

answer = ask("the shared question") if face == "sync" else asyncio.run(aask("the shared question"))
print(json.dumps({"answer": answer}))
"""


def _stored(url: str) -> list[object]:
    from memollm.codec import Codec

    return [Codec().decode(data).value for _, data in RedisBackend(url).scan()]


@pytest.mark.slow
@pytest.mark.parametrize("face", ["sync", "async"])
def test_a_holder_that_wakes_late_never_overwrites_the_takeover(
    redis_url: str, tmp_path: Path, face: str
) -> None:
    """A is stopped past its lease mid-call; B takes over and stores; A wakes: B's answer stays stored."""
    import json
    import os
    import signal
    import subprocess
    import sys

    from ..helpers import eventually

    script = tmp_path / "worker.py"
    script.write_text(LATE_HOLDER)
    env = {**os.environ, "REDIS": redis_url, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}

    def start(name: str) -> subprocess.Popen[str]:
        command = [sys.executable, str(script), name, str(tmp_path), face]
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    a = start("a")
    try:
        assert eventually((tmp_path / "a.calling").exists, timeout=30)
        a.send_signal(signal.SIGSTOP)  # holding the lease, inside the model call
        (tmp_path / "b.go").touch()
        b = start("b")  # waits out a's lease (no renewals come), takes over, answers, stores
        out, err = b.communicate(timeout=60)
        assert b.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1]) == {"answer": "answer from b"}
        assert _stored(redis_url) == ["answer from b"]
        (tmp_path / "a.go").touch()
        a.send_signal(signal.SIGCONT)
        out, err = a.communicate(timeout=60)
        assert a.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1]) == {"answer": "answer from a"}  # its own caller's
        assert _stored(redis_url) == ["answer from b"]
    finally:
        if a.poll() is None:
            a.send_signal(signal.SIGCONT)
            a.kill()
            a.communicate()


@pytest.mark.parametrize("kind", ["redis", "cluster"])
def test_a_fenced_write_is_refused_only_after_a_later_token(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """Tokens grow per key; a write under an older token than the last one stored is refused (Cluster too)."""
    url = request.getfixturevalue("redis_url" if kind == "redis" else "cluster_url")
    backend = RedisBackend(url, cluster=kind == "cluster")
    first, second = backend.fence("ns:f:k"), backend.fence("ns:f:k")
    assert second == first + 1
    assert backend.fence("ns:f:other") == 1
    assert backend.set_fenced("ns:f:k", b"new", 60, second)
    assert not backend.set_fenced("ns:f:k", b"old", 60, first)
    assert backend.get("ns:f:k") == b"new"
    assert backend.set_fenced("ns:f:k", b"newer", None, backend.fence("ns:f:k"))
    assert backend.get("ns:f:k") == b"newer"
    admin = backend.client
    assert admin.pttl("memollm:ns:f:k") == -1
    assert admin.pttl("{memollm:ns:f:k}:fence") == -1  # the token lives as long as its entry
    backend.clear("ns:")
    assert admin.exists("memollm:ns:f:k", "{memollm:ns:f:k}:fence", "{memollm:ns:f:other}:fence") == 0
