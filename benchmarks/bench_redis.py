"""Per-call cost of a Redis-tier hit through @cached_llm versus the floor, sync and async.

The floor is what a hand-written cache does at best: redis-py ``GET`` of a
precomputed key and ``msgpack.unpackb`` of the same ~1 KB answer. memollm runs
with the Redis tier alone (no memory tier in front), so every call is a Redis
hit: key computation, GET, envelope decoding, TTL check, stats.

    python benchmarks/bench_redis.py [--calls 500] [--rounds 40] [--url redis://...]

Without --url (or REDIS_URL) it starts its own redis-server on a free port.
Prints medians, p99 and ratios; quote the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import msgpack
import redis
import redis.asyncio as aredis

import memollm
from memollm.backends.redis import RedisBackend

ANSWER = ("Use the def keyword, a name, parameters in parentheses and a colon; " * 16)[:1024]
PROMPT = ("How do I define a function in Python that takes keyword arguments? " * 4)[:200]
MODEL, TEMPERATURE = "gpt-4o-mini", 0.0


@contextmanager
def redis_server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit(
            "redis-server is not installed; pass --url or install it (apt-get install redis-server)"
        )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as d:
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                d,
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            client = redis.Redis(port=port)
            for _ in range(500):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.01)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(10)


def sample_sync(fn: Callable[[], Any], calls: int, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        out.append((time.perf_counter() - start) / calls)
    return out


async def sample_async(fn: Callable[[], Awaitable[Any]], calls: int, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            await fn()
        out.append((time.perf_counter() - start) / calls)
    return out


def report(title: str, results: dict[str, list[float]], floor_name: str) -> None:
    floor = statistics.median(results[floor_name])
    print(f"\n## {title}")
    print(f"{'system':44s} {'median':>10s} {'p99':>10s} {'x floor':>8s}")
    for name, xs in results.items():
        med = statistics.median(xs)
        p99 = sorted(xs)[min(len(xs) - 1, int(len(xs) * 0.99))]
        print(f"{name:44s} {med * 1e6:8.1f}us {p99 * 1e6:8.1f}us {med / floor:7.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description="Redis-tier hit versus GET + msgpack.unpackb")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--url", default=os.environ.get("REDIS_URL"))
    args = parser.parse_args()

    with redis_server(args.url) as url:
        backend = RedisBackend(url)
        memollm.register_tier("redis", backend)

        @memollm.cached_llm(tiers=["redis"], ttl=600)
        def ask(prompt: str, model: str, temperature: float) -> str:
            return ANSWER

        @memollm.cached_llm(tiers=["redis"], ttl=600, namespace="async")
        async def aask(prompt: str, model: str, temperature: float) -> str:
            return ANSWER

        raw = redis.Redis.from_url(url)
        raw.set("floor:key", msgpack.packb(ANSWER), px=600_000)
        ask(PROMPT, MODEL, TEMPERATURE)

        def floor() -> Any:
            return msgpack.unpackb(raw.get("floor:key"))

        def ours() -> Any:
            return ask(PROMPT, MODEL, TEMPERATURE)

        if floor() != ANSWER or ours() != ANSWER:
            raise SystemExit("the systems do not return the answer")

        print(
            f"# Redis-tier hit vs floor - Python {platform.python_version()}, redis-py {redis.__version__}, "
            f"server {raw.info()['redis_version']}, memollm {memollm.__version__}"
        )
        print(f"# {args.rounds} rounds x {args.calls} calls, loopback; answer {len(ANSWER)} bytes")
        sync: dict[str, list[float]] = {
            "redis-py GET + msgpack.unpackb [floor]": [],
            "memollm @cached_llm, redis hit": [],
        }
        for _ in range(2):  # interleave so noise falls on both alike
            sync["redis-py GET + msgpack.unpackb [floor]"] += sample_sync(floor, args.calls, args.rounds // 2)
            sync["memollm @cached_llm, redis hit"] += sample_sync(ours, args.calls, args.rounds // 2)
        report("sync", sync, "redis-py GET + msgpack.unpackb [floor]")

        async def run_async() -> dict[str, list[float]]:
            araw = aredis.Redis.from_url(url)
            await aask(PROMPT, MODEL, TEMPERATURE)

            async def afloor() -> Any:
                return msgpack.unpackb(await araw.get("floor:key"))

            async def aours() -> Any:
                return await aask(PROMPT, MODEL, TEMPERATURE)

            out: dict[str, list[float]] = {
                "redis.asyncio GET + unpackb [floor]": [],
                "memollm async, redis hit": [],
            }
            for _ in range(2):
                out["redis.asyncio GET + unpackb [floor]"] += await sample_async(
                    afloor, args.calls, args.rounds // 2
                )
                out["memollm async, redis hit"] += await sample_async(aours, args.calls, args.rounds // 2)
            await araw.aclose()
            await backend.aclose()
            return out

        report("async", asyncio.run(run_async()), "redis.asyncio GET + unpackb [floor]")
        stats = ask.cache.stats()
        if stats.hits.get("redis", 0) < args.calls or stats.misses != 1:
            raise SystemExit(f"memollm did not hit Redis: {stats}")
        backend.close()
        raw.close()
    print("\n(times are this machine's; compare the ratios)")


if __name__ == "__main__":
    main()
