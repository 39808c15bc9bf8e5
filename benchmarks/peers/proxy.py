"""Scenario 4: cached hits through a caching proxy: memollm serve versus LiteLLM's proxy.

    python proxy.py --out F [--seconds 5] [--concurrency 16]

Both proxies run as real processes on loopback in front of the same upstream (upstream_app.py,
50 ms per answer, counting what it serves), with networking restricted to loopback in every
process (guard/sitecustomize.py). Each proxy is warmed with one request, then loaded with
the identical request; the upstream must have served exactly one completion per proxy.
Load comes from wrk when installed, else from a bounded httpx generator.
"""

from __future__ import annotations

import asyncio
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

from common import parser, record, version_of

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
REQUEST = {"model": "m", "messages": [{"role": "user", "content": "How do I define a function in Python?"}]}
MASTER = "sk-bench-master-key-0123456789abcdef"
SCENARIO = "proxy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running(args: list[str], url: str, health: str, netlog: Path) -> Iterator[subprocess.Popen[bytes]]:
    import httpx

    env = {
        **os.environ,
        "PYTHONPATH": str(HERE / "guard"),
        "BENCH_NET_LOG": str(netlog),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_MASTER_KEY": MASTER,
        "HF_HUB_OFFLINE": "1",
    }
    log = tempfile.TemporaryFile()  # noqa: SIM115 - outlives this block: closed in finally
    proc = subprocess.Popen(args, cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"{args[0]} exited: {log.read().decode()[-600:]}")
            try:
                if httpx.get(url + health, timeout=1).status_code < 500:
                    break
            except httpx.TransportError:
                time.sleep(0.2)  # waiting for another process to listen
        else:
            raise RuntimeError(f"{args[0]} did not start in 90 s")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def wrk(url: str, seconds: int, concurrency: int) -> dict[str, float]:
    script = Path(tempfile.mkdtemp()) / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {MASTER}"\n'
        f"wrk.body = {json.dumps(json.dumps(REQUEST))}\n"
    )
    command = [
        shutil.which("wrk") or "wrk",
        "-t2",
        f"-c{concurrency}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(script),
        url + "/v1/chat/completions",
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")

    def ms(label: str) -> float:
        m = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out)
        if m is None:
            raise RuntimeError(f"cannot read wrk's output:\n{out}")
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "p50_ms": ms("50%"), "p99_ms": ms("99%"), "load": "wrk"}


def httpx_load(url: str, seconds: int, concurrency: int) -> dict[str, float]:
    import httpx

    async def run() -> tuple[list[float], float]:
        latencies: list[float] = []
        end = time.perf_counter() + seconds
        async with httpx.AsyncClient(
            base_url=url,
            timeout=30,
            headers={"authorization": f"Bearer {MASTER}"},
            limits=httpx.Limits(max_connections=concurrency),
        ) as client:

            async def worker() -> None:
                while time.perf_counter() < end:
                    start = time.perf_counter()
                    (await client.post("/v1/chat/completions", json=REQUEST)).raise_for_status()
                    latencies.append(time.perf_counter() - start)

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return latencies, time.perf_counter() - started

    latencies, took = asyncio.run(run())
    latencies.sort()
    return {
        "rps": len(latencies) / took,
        "p50_ms": latencies[len(latencies) // 2] * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
        "load": "httpx",
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--seconds", type=int, default=5)
    p.add_argument("--concurrency", type=int, default=16)
    args = p.parse_args()
    import httpx

    load = wrk if shutil.which("wrk") else httpx_load
    scratch = Path(tempfile.mkdtemp())
    netlog = scratch / "network.log"
    netlog.touch()
    up_port = free_port()
    upstream = f"http://127.0.0.1:{up_port}"
    with running(
        [
            str(BIN / "python"),
            "-m",
            "uvicorn",
            "upstream_app:app",
            "--port",
            str(up_port),
            "--log-level",
            "error",
        ],
        upstream,
        "/count",
        netlog,
    ):
        config = scratch / "litellm.yaml"
        config.write_text(
            "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/m\n"
            f"      api_base: {upstream}/v1\n      api_key: sk-upstream\n"
            "litellm_settings:\n  cache: true\n  cache_params:\n    type: local\n"
        )
        proxies = {
            "memollm serve": (
                [
                    str(BIN / "python"),
                    "-m",
                    "memollm.cli",
                    "serve",
                    "--upstream",
                    upstream,
                    "--sqlite",
                    str(scratch / "m.db"),
                ],
                "/healthz",
                f"memollm {version_of('memollm-cache')}",
            ),
            "LiteLLM proxy (local cache)": (
                [str(BIN / "litellm"), "--config", str(config), "--host", "127.0.0.1"],
                "/health/liveliness",
                f"litellm {version_of('litellm')}",
            ),
        }
        for name, (command, health, version) in proxies.items():
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            try:
                with running([*command, "--port", str(port)], url, health, netlog):
                    before = httpx.get(upstream + "/count").json()["count"]
                    headers = {"authorization": f"Bearer {MASTER}"}
                    for _ in range(3):  # warm: the first is the miss
                        httpx.post(url + "/v1/chat/completions", json=REQUEST, headers=headers, timeout=30)
                    result = load(url, args.seconds, args.concurrency)
                    served = httpx.get(upstream + "/count").json()["count"] - before
            except Exception as exc:  # a peer that cannot run here is reported, not hidden
                record(args.out, SCENARIO, name, error=f"{type(exc).__name__}: {exc}"[:300])
                continue
            if served != 1:
                record(args.out, SCENARIO, name, error=f"did not hit its cache: upstream served {served}")
                continue
            refused = sorted(set(netlog.read_text().split()))
            record(args.out, SCENARIO, name, version=version, verified=True, refused_hosts=refused, **result)


if __name__ == "__main__":
    main()
