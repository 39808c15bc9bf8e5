"""What every peer benchmark shares: the payload, the timer, the network guard, the result file.

Each system runs in a process of its own (see run.sh), so one library's imports, threads
or monkey-patches never slow another down.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import json
import os
import platform
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ANSWER = ("Use the def keyword, a name, parameters in parentheses and a colon; " * 16)[:1024]
PROMPT = ("How do I define a function in Python that takes keyword arguments? " * 4)[:200]
MODEL = "gpt-4o-mini"
TEMPERATURE = 0.0
MESSAGES = [{"role": "user", "content": PROMPT}]

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no price-list download at import
os.environ.setdefault("HF_HUB_OFFLINE", "1")


# -- the network guard: loopback only --------------------------------------------------

attempts: list[str] = []


def _loopback(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode()
    host = str(host)
    if host in ("localhost", "") or host.startswith("/"):  # unix sockets too
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def guard_network() -> None:
    """Refuse (and record) every connection or lookup that is not loopback."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if not _loopback(host):
            attempts.append(str(host))
            log = os.environ.get("BENCH_NET_LOG")  # set for server processes run.sh starts
            if log:
                with open(log, "a", encoding="utf-8") as f:
                    f.write(f"{host}\n")
            raise ConnectionRefusedError(f"benchmark network guard: {host} is not loopback")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        check((host,))
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo


# -- timing ---------------------------------------------------------------------------


def time_sync(fn: Callable[[], Any], *, calls: int, rounds: int, warmup: int = 3) -> dict[str, float]:
    """Median and p99 of the per-call time in microseconds (each sample: the mean over ``calls``)."""
    for _ in range(warmup):
        for _ in range(calls):
            fn()
    samples = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            samples.append((time.perf_counter() - start) / calls * 1e6)
    finally:
        gc.enable()
    return _summary(samples)


def time_async(
    fn: Callable[[], Awaitable[Any]], *, calls: int, rounds: int, warmup: int = 3
) -> dict[str, float]:
    """:func:`time_sync` for a coroutine function, all rounds on one event loop."""

    async def run() -> list[float]:
        for _ in range(warmup):
            for _ in range(calls):
                await fn()
        samples = []
        gc.collect()
        gc.disable()
        try:
            for _ in range(rounds):
                start = time.perf_counter()
                for _ in range(calls):
                    await fn()
                samples.append((time.perf_counter() - start) / calls * 1e6)
        finally:
            gc.enable()
        return samples

    return _summary(asyncio.run(run()))


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_us": statistics.median(ordered),
        "p99_us": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "samples": len(ordered),
    }


# -- results --------------------------------------------------------------------------


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("system")
    p.add_argument("--out", type=Path, required=True, help="append the result (JSON lines) here")
    p.add_argument("--calls", type=int, default=500)
    p.add_argument("--rounds", type=int, default=60)
    p.add_argument("--redis", default=None, help="redis://127.0.0.1:PORT/0")
    return p


def version_of(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def record(out: Path, scenario: str, system: str, **result: Any) -> None:
    """Append one system's result; ``network`` lists any refused non-loopback connection."""
    row = {
        "scenario": scenario,
        "system": system,
        "network": sorted(set(attempts)),
        "python": platform.python_version(),
        **result,
    }
    with out.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in result.items()}
    print(f"{scenario:>8} {system:<40} {shown}", file=sys.stderr)


class Counter:
    """Calls that reached the model behind the system measured in this process."""

    calls = 0


def run_exact(
    scenario: str, doc: str, systems: dict[str, Callable[..., Any]], *, slow: tuple[str, ...], divisor: int
) -> None:
    """Measure one exact-hit system named on the command line and record it.

    ``systems`` maps names to builders returning (call, is_async, version); a Redis scenario's
    builders take the URL. Systems whose name starts with one of ``slow`` make ``divisor``
    times fewer calls per round. A system that did not call its model exactly once did not
    hit its cache, and is recorded as such.
    """
    args = parser(doc.splitlines()[0]).parse_args()
    guard_network()
    try:
        build = systems[args.system]
        call, is_async, version = build(args.redis) if args.redis else build()
        calls = args.calls // divisor if args.system.startswith(slow) else args.calls
        timer = time_async if is_async else time_sync
        timing = timer(call, calls=calls, rounds=args.rounds)
    except Exception as exc:  # a peer that cannot run here is reported, not hidden
        record(args.out, scenario, args.system, error=f"{type(exc).__name__}: {exc}"[:300])
        return
    if Counter.calls != 1:
        error = f"did not hit its cache: the model ran {Counter.calls} times"
        record(args.out, scenario, args.system, error=error)
        return
    record(args.out, scenario, args.system, version=version, verified=True, **timing)


def litellm_with(cache: Any) -> tuple[Any, bool, str]:
    """A litellm completion (mock response) behind ``cache``, counting the calls that missed it."""
    import litellm

    litellm.cache = cache
    litellm.suppress_debug_info = True

    def ask() -> str:
        reply = litellm.completion(
            model=MODEL, messages=MESSAGES, temperature=TEMPERATURE, mock_response=ANSWER, caching=True
        )
        if not reply._hidden_params.get("cache_hit"):
            Counter.calls += 1
        return str(reply.choices[0].message.content)

    return ask, False, f"litellm {version_of('litellm')}"


def langchain_with(cache: Any, version: str) -> tuple[Any, bool, str]:
    """A LangChain fake chat model behind ``cache``, counting the calls that missed it."""
    from langchain_core.globals import set_llm_cache
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    set_llm_cache(cache)

    class Model(FakeListChatModel):
        def _call(self, *args: Any, **kwargs: Any) -> str:
            Counter.calls += 1
            return super()._call(*args, **kwargs)

    model = Model(responses=[ANSWER], temperature=TEMPERATURE)
    return (lambda: str(model.invoke(PROMPT).content)), False, version


def memollm_litellm(**policy: Any) -> Any:
    """LiteLLM's Cache with memollm as its backend (what memollm.litellm.enable installs)."""
    from litellm.caching.caching import Cache

    from memollm.litellm import MemoLLMCache

    cache = Cache(type="local")
    cache.cache = MemoLLMCache(**policy)
    return cache


def openai_client() -> Any:
    """An OpenAI client whose transport answers in process: only hits are timed, never the network."""
    import httpx
    import openai

    choice = {"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}
    body = {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": MODEL, "choices": [choice],
        "usage": {"prompt_tokens": 50, "completion_tokens": 250, "total_tokens": 300},
    }  # fmt: skip

    def handler(request: httpx.Request) -> httpx.Response:
        Counter.calls += 1
        return httpx.Response(200, json=body)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    return openai.OpenAI(
        api_key="sk-bench", base_url="http://127.0.0.1:9/v1", http_client=http, max_retries=0
    )
