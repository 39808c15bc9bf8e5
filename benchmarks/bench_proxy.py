"""Cached hits through `memollm serve` versus a bare ASGI app and versus the upstream itself.

    python benchmarks/bench_proxy.py [--seconds 2] [--concurrency 16] [--repeat 15]

Three servers, each a process of its own on loopback: a bare ASGI app sending exactly the
response bytes a hit sends (status, headers, body), the CacheMiddleware alone in front of an
app, and ``memollm serve`` itself (as users run it: metrics on, memory + SQLite). The
load comes from wrk (Debian's package) when installed, bounded by duration; otherwise from a
bounded async httpx generator, which saturates before the servers do and so understates
differences. The servers are warmed so every measured request is a hit, then loaded in turn,
--repeat times; each keeps its best run.

Where taskset is available the server under load gets a core of its own and wrk the rest, so
the generator does not steal the server's CPU. Besides throughput and latency, the server's
CPU time per request is read from /proc: the steadiest measure of what a hit costs on a shared
machine. Target: hit overhead <= 25% versus the bare app. Quote ratios. The peer proxy
(LiteLLM's) is measured beside memollm serve by benchmarks/peers/run.sh, in its own venv.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from statistics import median
from typing import NamedTuple

import httpx

HERE = Path(__file__).resolve().parent
REQUEST = {"model": "m", "messages": [{"role": "user", "content": "How do I define a function in Python?"}]}


class Run(NamedTuple):
    p50: float
    p99: float
    rps: float
    cpu: float | None  # server CPU seconds per request


def port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cores() -> tuple[str | None, str | None]:
    """(the server's core, the load generator's cores) for taskset, or (None, None)."""
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if shutil.which("taskset") is None or len(available) < 2:
        return None, None
    return str(available[0]), ",".join(map(str, available[1:]))


def pinned(command: list[str], core: str | None) -> list[str]:
    return command if core is None else ["taskset", "-c", core, *command]


@contextmanager
def serving(command: list[str], url: str, core: str | None = None) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(pinned(command, core), cwd=HERE)
    try:
        for _ in range(500):
            try:
                httpx.get(url + "/healthz", timeout=0.5)
                break
            except httpx.TransportError:
                time.sleep(0.02)  # waiting for another process to listen
        else:
            raise SystemExit(f"{command} did not start listening on {url}")
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


def uvicorn(target: str, p: int) -> list[str]:
    """A uvicorn command with the settings memollm serve runs with."""
    return [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(p),
            "--log-level", "warning", "--no-access-log", "--no-proxy-headers"]  # fmt: skip


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk_load(url: str, seconds: int, concurrency: int, core: str | None) -> tuple[float, float, float, int]:
    """(p50, p99, requests per second, requests) from wrk --latency."""
    script = Path(tempfile.mkdtemp()) / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(json.dumps(REQUEST))}\n"
    )
    threads = 2 if core is None else min(2, len(core.split(",")))
    command = [shutil.which("wrk") or "wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds}s", "--latency"]
    command += ["-s", str(script), url + "/v1/chat/completions"]
    out = subprocess.run(pinned(command, core), capture_output=True, text=True, check=True,
                         timeout=seconds + 30).stdout  # fmt: skip

    def ms(label: str) -> float:
        m = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out)
        if m is None:
            raise SystemExit(f"cannot read wrk's output:\n{out}")
        value, unit = float(m.group(1)), m.group(2)
        return value / {"us": 1e6, "ms": 1e3, "s": 1.0}[unit]

    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return ms("50%"), ms("99%"), rps, total


async def load(url: str, requests: int, concurrency: int) -> tuple[list[float], float, set[str]]:
    latencies: list[float] = []
    marks: set[str] = set()
    queue = iter(range(requests))
    async with httpx.AsyncClient(
        base_url=url, timeout=30, limits=httpx.Limits(max_connections=concurrency)
    ) as c:

        async def worker() -> None:
            for _ in queue:
                start = time.perf_counter()
                r = await c.post("/v1/chat/completions", json=REQUEST)
                latencies.append(time.perf_counter() - start)
                r.raise_for_status()
                marks.add(r.headers.get("x-cache", "-"))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, requests / (time.perf_counter() - started), marks


def measure(
    url: str, pid: int | None, args: argparse.Namespace, load_core: str | None, requests: int | None = None
) -> Run:
    """One loaded run against one server, with its CPU time per request when ``pid`` is given."""
    before = None if pid is None else cpu_seconds(pid)
    if args.wrk:
        p50, p99, rps, total = wrk_load(url, args.seconds, args.concurrency, load_core)
    else:
        latencies, rps, _ = asyncio.run(load(url, requests or args.requests, args.concurrency))
        p50, p99, total = median(latencies), sorted(latencies)[int(len(latencies) * 0.99)], len(latencies)
    after = None if pid is None else cpu_seconds(pid)
    cpu = None if before is None or after is None else (after - before) / total
    return Run(p50, p99, rps, cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000, help="per run, with the httpx generator")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=2, help="wrk's duration per run")
    parser.add_argument("--no-wrk", dest="wrk", action="store_false", help="use the httpx load generator")
    parser.add_argument("--repeat", type=int, default=15, help="rounds (each server loaded once per round)")
    args = parser.parse_args()
    args.wrk = args.wrk and shutil.which("wrk") is not None
    server_core, load_core = cores()
    bare_name, middleware_name, serve_name = (
        "bare ASGI app (same bytes)", "CacheMiddleware alone, hit", "memollm serve, cached hit"
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        up_port = port()
        upstream_url = f"http://127.0.0.1:{up_port}"
        stack.enter_context(serving(uvicorn("_proxy_apps:upstream", up_port), upstream_url))
        servers: dict[str, tuple[str, int]] = {}
        for name in (bare_name, middleware_name, serve_name):
            p = port()
            if name == bare_name:
                command = uvicorn("_proxy_apps:bare", p)
            elif name == middleware_name:
                command = [*uvicorn("_proxy_apps:cached_bare", p), "--factory"]
            else:
                command = [sys.executable, "-m", "memollm.cli", "serve", "--upstream", upstream_url,
                           "--port", str(p), "--sqlite", str(Path(tmp) / "serve.db")]  # fmt: skip
            url = f"http://127.0.0.1:{p}"
            proc = stack.enter_context(serving(command, url, server_core))
            servers[name] = (url, proc.pid)
            asyncio.run(load(url, 50, 4))  # warm-up (and, for the caches, the one miss)
            if name != bare_name and (seen := asyncio.run(load(url, 20, 2))[2]) != {"HIT"}:
                raise SystemExit(f"{name} did not serve hits after warm-up: {seen}")
        # Rounds: each server once per round, in a rotated order, and each compared with the
        # bare app's run of the same round. The median of those paired ratios is what a
        # neighbour's burst on this shared machine disturbs least.
        rounds: list[dict[str, Run]] = []
        names = list(servers)
        for i in range(args.repeat):
            order = names[i % len(names) :] + names[: i % len(names)]
            rounds.append({name: measure(*servers[name], args, load_core) for name in order})
        upstream = measure(upstream_url, None, args, load_core, requests=200)  # ~300 requests/s
    how = f"wrk, {args.seconds}s per run" if args.wrk else f"httpx, {args.requests} requests per run"
    pins = f"server on core {server_core}, load on {load_core}" if server_core else "not pinned"
    print(f"# load: {how}, concurrency {args.concurrency}, loopback, {pins}; medians of {args.repeat} rounds")
    print(f"{'system':30s} {'req/s':>8s} {'p50':>9s} {'p99':>9s} {'CPU/req':>9s}  overhead vs bare (range)")

    overheads: dict[str, list[float]] = {}
    for name in names:
        runs = [r[name] for r in rounds]
        paired = [r[bare_name].rps / r[name].rps - 1 for r in rounds]
        overheads[name] = paired
        cpus = [run.cpu for run in runs if run.cpu is not None]
        cpu_text = f"{median(cpus) * 1e6:7.1f}us" if cpus else f"{'-':>9s}"
        spread = (
            "" if name == bare_name else f"{median(paired):+.0%} ({min(paired):+.0%} .. {max(paired):+.0%})"
        )
        print(f"{name:30s} {median([r.rps for r in runs]):8.0f} {median([r.p50 for r in runs]) * 1e3:7.2f}ms "
              f"{median([r.p99 for r in runs]) * 1e3:7.2f}ms {cpu_text}  {spread}")  # fmt: skip
    print(f"{'upstream directly (50 ms)':30s} {upstream.rps:8.0f} "
          f"{upstream.p50 * 1e3:7.2f}ms {upstream.p99 * 1e3:7.2f}ms")  # fmt: skip
    hit_p50 = median([r[serve_name].p50 for r in rounds])
    cpu_pairs = [r[serve_name].cpu / r[bare_name].cpu - 1  # type: ignore[operator]
                 for r in rounds if r[serve_name].cpu and r[bare_name].cpu]  # fmt: skip
    line = (
        f"\nhit overhead vs bare (median of paired rounds): {median(overheads[serve_name]):+.0%} throughput"
    )
    if cpu_pairs:
        line += f", {median(cpu_pairs):+.0%} server CPU per request"
    print(line + f"; speed-up over the upstream: {upstream.p50 / hit_p50:.1f}x p50")


if __name__ == "__main__":
    main()
