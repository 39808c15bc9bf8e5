"""Memory of `memollm serve --semantic` under a burst of huge prompts, while cached requests keep answering.

    python benchmarks/soak_hostile_prompts.py [--requests 100] [--mib 4] [--concurrency 8]

Starts an upstream (50 ms, small answers) and ``memollm serve --semantic 0.9`` (memory +
SQLite, the offline embedding model from MEMOLLM_EMBED_MODEL_PATH or .models/), warms it,
then sends ``--requests`` requests whose user message is ``--mib`` MiB of distinct text,
``--concurrency`` at a time, while another client repeats one cached request and records its
latency. Prints the server's RSS before, at its peak and after the burst, the burst's status
codes, and the cached requests' answers and latency during the burst.

Target (issue 13): RSS after the burst within 150 MiB of where it started; every cached
request answered meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_proxy import port, serving, uvicorn  # noqa: E402

MODEL = Path(os.environ.get("MEMOLLM_EMBED_MODEL_PATH", HERE.parent / ".models/all-MiniLM-L6-v2"))


def rss(pid: int) -> float:
    """Resident memory of ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def burst(url: str, args: argparse.Namespace, pid: int) -> tuple[list[int], list[float], float]:
    """(statuses of the huge requests, latencies of the cached one meanwhile, peak RSS)."""
    sem = asyncio.Semaphore(args.concurrency)
    statuses: list[int] = []
    latencies: list[float] = []
    peak = rss(pid)
    done = asyncio.Event()
    async with httpx.AsyncClient(timeout=120) as client:

        async def huge(i: int) -> None:
            text = (f"request {i}: " + "a quick brown fox jumps over the lazy dog " * 30_000)[
                : args.mib * 2**20 - 512
            ]
            body = {"model": "m", "messages": [{"role": "user", "content": text}]}
            async with sem:
                response = await client.post(url + "/v1/chat/completions", json=body)
                statuses.append(response.status_code)

        async def cached() -> None:
            body = {"model": "m", "messages": [{"role": "user", "content": "warm question"}]}
            while not done.is_set():
                started = time.perf_counter()
                response = await client.post(url + "/v1/chat/completions", json=body)
                assert response.headers.get("x-cache") == "HIT", response.headers
                latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0.02)

        async def watch() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss(pid))
                await asyncio.sleep(0.05)

        side = [asyncio.create_task(cached()), asyncio.create_task(watch())]
        await asyncio.gather(*(huge(i) for i in range(args.requests)))
        done.set()
        await asyncio.gather(*side)
    return statuses, latencies, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--mib", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    up_port, serve_port = port(), port()
    upstream_url, url = f"http://127.0.0.1:{up_port}", f"http://127.0.0.1:{serve_port}"
    env = {**os.environ, "MEMOLLM_EMBED_MODEL_PATH": str(MODEL)}
    with (
        tempfile.TemporaryDirectory() as tmp,
        serving(uvicorn("_proxy_apps:upstream", up_port), upstream_url),
    ):
        command = [sys.executable, "-m", "memollm.cli", "serve", "--upstream", upstream_url, "--port",
                   str(serve_port), "--semantic", "0.9", "--sqlite", str(Path(tmp) / "soak.db"),
                   "--max-body", str(args.mib * 2**20 + 4096)]  # fmt: skip
        os.environ.update(env)  # serving() starts it with this process's environment
        with serving(command, url) as server:
            warm = {"model": "m", "messages": [{"role": "user", "content": "warm question"}]}
            for i in range(20):  # load the model, fill the fast path, settle the allocator
                httpx.post(url + "/v1/chat/completions", json=warm, timeout=60)
                httpx.post(url + "/v1/chat/completions", json={**warm, "messages": [
                    {"role": "user", "content": f"small question {i}"}]}, timeout=60)  # fmt: skip
            before = rss(server.pid)
            started = time.perf_counter()
            statuses, latencies, peak = asyncio.run(burst(url, args, server.pid))
            elapsed = time.perf_counter() - started
            time.sleep(1.0)  # the last responses' buffers are freed
            after = rss(server.pid)
    codes = {c: statuses.count(c) for c in sorted(set(statuses))}
    print(f"burst: {args.requests} requests of {args.mib} MiB, {args.concurrency} at a time, "
          f"{elapsed:.1f} s; statuses {codes}")  # fmt: skip
    print(f"RSS: before {before:.0f} MiB, peak {peak:.0f} MiB, after {after:.0f} MiB "
          f"(after - before = {after - before:+.0f} MiB; target <= +150)")  # fmt: skip
    if latencies:
        print(f"cached request during the burst: {len(latencies)} answered, all HIT, "
              f"p50 {median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
