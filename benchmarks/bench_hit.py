"""Per-call cost of a memory-tier hit, memollm versus the floor, in one run.

The floor is ``cachetools.cached`` on the same function and arguments: a ~200
character prompt, a model name and a temperature, returning a ~1 KB answer.
Two ways of passing the prompt are measured: the same string object every call
(its hash is cached by Python) and an equal string built fresh for every call,
as an application that formats its prompts does. A wrapt decorator that does
nothing is listed too, to show how much of memollm's cost is wrapt's dispatch.

    python benchmarks/bench_hit.py [--calls 2000] [--rounds 200]

Prints medians and p99 of the per-call time (each sample is the mean over a batch
of calls) and the ratio of each line to the floor. Quote ratios, not times.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import cachetools
import wrapt

import memollm

ANSWER = ("Use the def keyword, a name, parameters in parentheses and a colon; " * 16)[:1024]
PROMPT = ("How do I define a function in Python that takes keyword arguments? " * 4)[:200]
MODEL = "gpt-4o-mini"
TEMPERATURE = 0.0


def build() -> dict[str, Callable[..., Any]]:
    @cachetools.cached(cachetools.TTLCache(maxsize=10_000, ttl=600))
    def floor_ttl(prompt: str, model: str, temperature: float) -> str:
        return ANSWER

    @cachetools.cached(cachetools.LRUCache(maxsize=10_000))
    def floor_lru(prompt: str, model: str, temperature: float) -> str:
        return ANSWER

    @wrapt.decorator
    def noop(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return ANSWER

    @noop
    def wrapt_noop(prompt: str, model: str, temperature: float) -> str:
        return ANSWER

    @memollm.cached_llm(ttl=600)
    def memollm_hit(prompt: str, model: str, temperature: float) -> str:
        return ANSWER

    return {
        "cachetools.cached(TTLCache) [floor]": floor_ttl,
        "cachetools.cached(LRUCache)": floor_lru,
        "wrapt no-op decorator (reference)": wrapt_noop,
        "memollm @cached_llm, memory hit": memollm_hit,
    }


def sample(fn: Callable[..., Any], make: Callable[[], list[str]], calls: int, rounds: int) -> list[float]:
    """Per-call seconds, one sample per round (the mean over a batch of calls)."""
    for p in make()[:100]:  # warm-up: fill the caches
        fn(p, MODEL, TEMPERATURE)
    out = []
    gc.disable()
    try:
        for _ in range(rounds):
            prompts = make()  # outside the timer
            start = time.perf_counter()
            for p in prompts:
                fn(p, MODEL, TEMPERATURE)
            out.append((time.perf_counter() - start) / calls)
    finally:
        gc.enable()
    return out


def p99(xs: list[float]) -> float:
    return sorted(xs)[min(len(xs) - 1, int(len(xs) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description="memory-tier hit versus cachetools.cached")
    parser.add_argument("--calls", type=int, default=2000, help="calls per batch")
    parser.add_argument("--rounds", type=int, default=200, help="batches per system")
    args = parser.parse_args()

    def same() -> list[str]:
        return [PROMPT] * args.calls

    def fresh() -> list[str]:
        # Equal prompts as new objects whose hash Python has not computed yet, as when an
        # application formats its prompt for every call.
        return ["".join(list(PROMPT)) for _ in range(args.calls)]

    fns = build()
    print(
        f"# memory-tier hit vs floor - Python {platform.python_version()}, {platform.machine()}, "
        f"memollm {memollm.__version__}, cachetools {cachetools.__version__}, wrapt {wrapt.__version__}"
    )
    print(
        f"# {args.rounds} rounds x {args.calls} calls; prompt {len(PROMPT)} chars, answer {len(ANSWER)} bytes"
    )
    for label, make in (("same prompt object", same), ("fresh equal prompt per call", fresh)):
        print(f"\n## {label}")
        print(f"{'system':40s} {'median':>10s} {'p99':>10s} {'x floor':>8s}")
        results = {}
        # Interleave systems round by round so machine noise hits all of them alike.
        for _ in range(2):
            for name, fn in fns.items():
                results.setdefault(name, []).extend(sample(fn, make, args.calls, args.rounds // 2))
        floor = statistics.median(results["cachetools.cached(TTLCache) [floor]"])
        for name, xs in results.items():
            med = statistics.median(xs)
            print(f"{name:40s} {med * 1e6:8.3f}us {p99(xs) * 1e6:8.3f}us {med / floor:7.2f}x")
    stats = fns["memollm @cached_llm, memory hit"].cache.stats()
    if stats.misses != 1 or stats.hit_count == 0:
        raise SystemExit(f"memollm did not hit its cache: {stats}")
    print("\n(times are this machine's; compare the ratios)", file=sys.stderr)


if __name__ == "__main__":
    main()
