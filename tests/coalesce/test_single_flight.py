"""Single-flight, stale-if-error and refresh-ahead, against the local upstream server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

import memollm
from memollm import LLMCache, RetryPolicy, cached_llm
from memollm.testing import FakeClock

from ..faces import Face
from ..helpers import eventually
from ..upstream import Upstream, error


def post(upstream: Upstream, prompt: str) -> dict[str, Any]:
    response = httpx.post(
        upstream.url + "/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": prompt}]},
        timeout=10,
    )
    response.raise_for_status()
    return dict(response.json())


def release_when_waiting(upstream: Upstream, fn: Any, prompt: str, followers: int) -> None:
    """Hold the upstream's first request until ``followers`` callers wait on it, then let it answer."""
    upstream.gate.clear()
    key = fn.cache.key_for(prompt)

    def opener() -> None:
        upstream.arrived.wait(10)
        # Followers are observable only through the flight's count: poll it (bounded).
        for _ in range(1000):
            if fn.cache.state.flights.waiting(key) >= followers:
                break
            threading.Event().wait(0.01)
        upstream.gate.set()

    threading.Thread(target=opener, daemon=True).start()


def in_threads(n: int, fn: Any) -> tuple[list[Any], list[BaseException]]:
    results: list[Any] = []
    errors: list[BaseException] = []
    start = threading.Barrier(n)

    def run() -> None:
        start.wait()
        try:
            results.append(fn())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results, errors


class TestSingleFlight:
    def test_threads_share_one_upstream_call(self, upstream: Upstream) -> None:
        """100 threads asking the same question at once make one upstream request."""

        @cached_llm
        def ask(prompt: str) -> dict[str, Any]:
            return post(upstream, prompt)

        release_when_waiting(upstream, ask, "same question", 99)
        results, errors = in_threads(100, lambda: ask("same question"))
        assert errors == []
        assert upstream.count == 1
        assert ask.cache.stats().coalesced == 99
        assert len(results) == 100
        assert all(r == results[0] for r in results)
        assert len({id(r) for r in results}) == 100  # each caller has its own copy
        stats = ask.cache.stats()
        assert stats.stores == 1
        # One accounting: every call is one outcome; a follower is a coalesced hit, not a miss.
        assert (stats.misses, dict(stats.hits), stats.lookups) == (1, {"coalesced": 99}, 100)
        assert stats.hit_rate == 0.99

    def test_followers_share_the_exception(self, upstream: Upstream) -> None:
        """When the one upstream call fails, every waiting caller gets that failure."""
        upstream.play(error(400))

        @cached_llm
        def ask(prompt: str) -> dict[str, Any]:
            return post(upstream, prompt)

        release_when_waiting(upstream, ask, "bad", 19)
        results, errors = in_threads(20, lambda: ask("bad"))
        assert results == []
        assert upstream.count == 1
        assert len(errors) == 20
        assert all(e is errors[0] for e in errors)  # the very same exception

    async def test_asyncio_tasks_share_one_upstream_call(self, upstream: Upstream) -> None:
        """100 tasks asking the same question at once make one upstream request."""
        client = httpx.AsyncClient(timeout=10)

        @cached_llm(ignore=["client"])
        async def ask(prompt: str, client: Any = client) -> dict[str, Any]:
            response = await client.post(
                upstream.url + "/v1/chat/completions", json={"model": "m", "messages": [{"content": prompt}]}
            )
            return dict(response.json())

        results = await asyncio.gather(*(ask("same") for _ in range(100)))
        await client.aclose()
        assert upstream.count == 1
        assert all(r == results[0] for r in results)

    def test_off_means_every_caller_calls(self, upstream: Upstream) -> None:
        """single_flight=False lets concurrent misses each call (for functions that must)."""

        @cached_llm(single_flight=False)
        def ask(prompt: str) -> dict[str, Any]:
            return post(upstream, prompt)

        upstream.gate.clear()

        def opener() -> None:
            # Release once several requests are in: the server saw them arrive.
            while upstream.count < 5:
                upstream.arrived.wait(1)
                upstream.arrived.clear()
            upstream.gate.set()

        threading.Thread(target=opener).start()
        _, errors = in_threads(5, lambda: ask("same"))
        assert errors == []
        assert upstream.count == 5


WORKER = """
import json, os, sys, threading, time
import httpx
from memollm import cached_llm

url = sys.argv[1]

@cached_llm(tiers=["memory", "redis"], distributed=True)
def ask(prompt: str) -> str:
    reply = httpx.post(f"{url}/v1/chat/completions?pid={os.getpid()}",
                       json={"messages": [{"content": prompt}]}, timeout=60)
    return reply.json()["choices"][0]["message"]["content"]

print("ready", flush=True)
sys.stdin.readline()
results = []
barrier = threading.Barrier(25)
def run():
    barrier.wait()
    results.append(ask("the shared question"))
threads = [threading.Thread(target=run) for _ in range(25)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"results": sorted(set(results)), "count": len(results), "done": time.time(),
                  "coalesced": ask.cache.stats().coalesced}), flush=True)
"""


def start_workers(upstream: Upstream, redis_url: str, tmp_path: Path) -> list[subprocess.Popen[str]]:
    """4 processes of 25 threads each, all calling one distributed cached function at once."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "MEMOLLM_REDIS_URL": redis_url}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), upstream.url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        for _ in range(4)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    return procs


def test_four_processes_share_one_upstream_call(upstream: Upstream, redis_url: str, tmp_path: Path) -> None:
    """4 processes x 25 threads sharing Redis make one upstream request (a Redis lock)."""
    upstream.gate.clear()
    procs = start_workers(upstream, redis_url, tmp_path)
    assert upstream.arrived.wait(30)
    # Hold the answer until the other processes are polling Redis for it (their GETs show
    # in the server's command counts), so the test exercises the lock, not a late hit.
    admin = redis.Redis.from_url(redis_url)

    def gets() -> int:
        return int(admin.info("commandstats").get("cmdstat_get", {}).get("calls", 0))

    start = gets()
    assert eventually(lambda: gets() - start >= 9, timeout=20)
    upstream.gate.set()
    outputs = [json.loads(p.communicate(timeout=60)[0].strip().splitlines()[-1]) for p in procs]
    assert upstream.count == 1
    assert {tuple(o["results"]) for o in outputs} == {("echo: the shared question",)}
    assert sum(o["coalesced"] for o in outputs) == 99  # every call but the leader's was shared


class TestStaleIfError:
    def test_stale_entry_served_when_the_call_fails(
        self, upstream: Upstream, clock: FakeClock, face: Face
    ) -> None:
        """Past its TTL but within stale_ttl, an entry is served if the call still fails, and flagged."""
        memollm.register_tier("memory", memollm.backends.MemoryBackend(clock=clock))

        def answer(prompt: str) -> dict[str, Any]:
            return post(upstream, prompt)

        async def no_wait(seconds: float) -> None:
            return None

        retry = RetryPolicy(attempts=2, sleep=lambda s: None, asleep=no_wait)
        ask = face.shaped(answer)
        cache = LLMCache(ask, settings={"ttl": 10, "stale_ttl": 100, "retry": retry}, clock=clock)
        fn = cache.wrap(ask)
        fresh = face.call(fn, "x")
        clock.advance(20)
        upstream.play(error(503), error(503))
        with memollm.lookup() as seen:
            assert face.call(fn, "x") == fresh
        assert seen.stale
        assert cache.stats().stale == 1
        assert upstream.count == 3  # the miss, then both attempts of the failing call
        with memollm.lookup() as seen:
            face.call(fn, "x")  # the upstream answers again: a fresh miss
        assert seen.outcome == "miss"

    def test_too_old_or_no_window_raises(self, upstream: Upstream, clock: FakeClock) -> None:
        """Beyond the stale window, or without one, the failure reaches the caller."""
        memollm.register_tier("memory", memollm.backends.MemoryBackend(clock=clock))

        def ask(prompt: str) -> dict[str, Any]:
            return post(upstream, prompt)

        for settings, advance in (({"ttl": 10, "stale_ttl": 5}, 20), ({"ttl": 10}, 11)):
            fn = LLMCache(ask, settings=settings, clock=clock).wrap(ask)
            fn("y")
            clock.advance(advance)
            upstream.play(error(500))
            with pytest.raises(httpx.HTTPStatusError):
                fn("y")

    def test_stale_stream(self, clock: FakeClock) -> None:
        """A stream whose upstream fails before its first chunk replays the stale chunks."""
        memollm.register_tier("memory", memollm.backends.MemoryBackend(clock=clock))
        fail = [False]

        def stream(prompt: str) -> Any:
            if fail[0]:
                raise ConnectionError("down")
            yield from ["a", "b"]

        fn = LLMCache(stream, settings={"ttl": 10, "stale_ttl": 60}, clock=clock).wrap(stream)
        assert list(fn("q")) == ["a", "b"]
        clock.advance(30)
        fail[0] = True
        assert list(fn("q")) == ["a", "b"]


class TestRefreshAhead:
    def test_hit_near_expiry_refreshes_once_in_the_background(
        self, upstream: Upstream, clock: FakeClock
    ) -> None:
        """A hit with little TTL left is served at once and refreshed once, however many hits come."""
        memollm.register_tier("memory", memollm.backends.MemoryBackend(clock=clock))
        answers = iter(["old", "new"])
        refreshed = threading.Event()
        release = threading.Event()

        def ask(prompt: str) -> str:
            value = next(answers)
            if value == "new":
                release.wait(10)  # hold the refresh while more hits arrive
                refreshed.set()
            return value

        cache = LLMCache(ask, settings={"ttl": 100, "refresh_ahead": 0.2}, clock=clock)
        fn = cache.wrap(ask)
        assert fn("x") == "old"
        clock.advance(50)
        assert fn("x") == "old"  # plenty left: no refresh
        clock.advance(35)  # 15 s left, under 20 %
        assert [fn("x") for _ in range(10)] == ["old"] * 10
        release.set()
        assert refreshed.wait(10)
        assert eventually(lambda: cache.stats().refreshes == 1)  # counted once the answer is stored
        assert fn("x") == "new"
        assert cache.stats().refreshes == 1

    async def test_async_refresh(self, clock: FakeClock) -> None:
        """Async functions refresh in a background task."""
        memollm.register_tier("memory", memollm.backends.MemoryBackend(clock=clock))
        answers = iter(["old", "new"])
        done = asyncio.Event()

        async def ask(prompt: str) -> str:
            value = next(answers)
            if value == "new":
                done.set()
            return value

        cache = LLMCache(ask, settings={"ttl": 100, "refresh_ahead": 0.2}, clock=clock)
        fn = cache.wrap(ask)
        assert await fn("x") == "old"
        clock.advance(90)
        assert await fn("x") == "old"
        await done.wait()
        await asyncio.gather(*cache.state.refreshes.tasks)
        assert cache.stats().refreshes == 1
        assert await fn("x") == "new"


@pytest.mark.slow
def test_a_killed_lock_holder_is_taken_over_within_seconds(
    upstream: Upstream, redis_url: str, tmp_path: Path
) -> None:
    """The lock holder of 4 processes x 25 threads is SIGKILLed mid-call: survivors answer within 10 s.

    One more upstream call is made (the takeover), not one per surviving process.
    """
    upstream.gate.clear()  # the first call hangs until the test opens the gate
    procs = start_workers(upstream, redis_url, tmp_path)
    assert upstream.arrived.wait(30)
    holder = int(upstream.requests[0]["path"].rsplit("pid=", 1)[1])
    victim = next(p for p in procs if p.pid == holder)
    victim.kill()
    killed = time.time()
    victim.communicate(timeout=10)  # reaps it and closes its pipes
    upstream.gate.set()
    survivors = [p for p in procs if p is not victim]
    outputs = [json.loads(p.communicate(timeout=60)[0].strip().splitlines()[-1]) for p in survivors]
    assert {tuple(o["results"]) for o in outputs} == {("echo: the shared question",)}
    assert all(o["count"] == 25 for o in outputs)
    assert max(o["done"] for o in outputs) - killed <= 10
    assert upstream.count == 2  # the killed holder's call and one takeover


@pytest.mark.slow
@pytest.mark.parametrize("face", ["sync", "async"])
def test_a_live_holder_keeps_its_lease_past_its_length(upstream: Upstream, redis_url: str, face: str) -> None:
    """A call longer than the lease is not taken over: the holder renews it until the call ends."""
    from memollm.backends.redis import RedisBackend

    memollm.register_tier("redis", RedisBackend(redis_url))
    settings = {"tiers": ["memory", "redis"], "distributed": True}

    def ask(prompt: str) -> str:
        return str(post(upstream, prompt)["choices"][0]["message"]["content"])

    async def aask(prompt: str) -> str:
        return await asyncio.to_thread(ask, prompt)

    fn = ask if face == "sync" else aask
    # Two caches of one function: no in-process flight between them, only the Redis lease.
    first, second = LLMCache(fn, settings=settings), LLMCache(fn, settings=settings)
    upstream.gate.clear()
    results: list[str] = []

    def run(cache: LLMCache) -> None:
        call = cache.wrap(fn)
        results.append(call("long") if face == "sync" else asyncio.run(call("long")))

    leader = threading.Thread(target=run, args=(first,))
    leader.start()
    assert upstream.arrived.wait(10)
    follower = threading.Thread(target=run, args=(second,))
    follower.start()
    admin = redis.Redis.from_url(redis_url)
    lock = next(iter(admin.scan_iter(match="memollm:lock:*")))
    renewals, last = 0, admin.pttl(lock)
    while renewals < 4:  # renewed every second: past the 3 s lease, a lapsed lock would be taken over
        ttl = admin.pttl(lock)
        assert ttl > 0, "the lease lapsed while its holder was alive"
        renewals += ttl > last
        last = ttl
        threading.Event().wait(0.05)
    upstream.gate.set()
    leader.join(10)
    follower.join(10)
    assert results == ["echo: long", "echo: long"]
    assert upstream.count == 1
    assert second.stats().coalesced == 1
