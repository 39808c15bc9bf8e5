"""memollm in one minute: a simulated LLM, a workload with repeats, and what caching saved.

Runs on the embedded default (no Redis, no API key, no network):

    python examples/quickstart.py [--calls 300] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import memollm
from memollm.testing import FakeLLM

# A simulated price list ($ per million tokens), in the range of today's small models.
PRICE_IN, PRICE_OUT = 0.60, 2.40

QUESTIONS = [
    "How do I define a function in Python?",
    "What is the difference between a list and a tuple?",
    "How do I read a file line by line?",
    "How do I reverse a string in Python?",
    "What does the yield keyword do?",
    "How do I merge two dictionaries?",
    "How do I sort a list of dicts by a key?",
    "What is a virtual environment and why use one?",
    "How do I make an HTTP request in Python?",
    "How do I parse JSON from a string?",
    "What is the GIL?",
    "How do I write a unit test with pytest?",
    "How do I format a date as ISO 8601?",
    "How do I remove duplicates from a list while keeping order?",
    "What is a decorator?",
    "How do I handle exceptions properly?",
    "How do I run code in parallel with threads?",
    "What is asyncio for?",
    "How do I measure how long a function takes?",
    "How do I convert a string to an int safely?",
]


def tokens(text: str) -> int:
    """A rough token count (about four characters a token), enough for a cost estimate."""
    return max(1, len(text) // 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="questions to ask (default 300)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per real model call")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    llm = FakeLLM(latency=args.latency, answer_chars=1200)

    @memollm.cached_llm(ttl=600)
    def ask(prompt: str, model: str = "fake-model-mini", temperature: float = 0.0) -> str:
        """The application's existing model call, now cached."""
        return llm(prompt, model, temperature)

    # Popular questions come back often, the long tail rarely (a Zipf-like workload).
    rng = random.Random(args.seed)
    weights = [1 / (rank + 1) for rank in range(len(QUESTIONS))]
    workload = rng.choices(QUESTIONS, weights=weights, k=args.calls)

    latencies = []
    for question in workload:
        start = time.perf_counter()
        ask(question)
        latencies.append(time.perf_counter() - start)

    stats = ask.cache.stats()
    saved_calls = args.calls - llm.calls
    per_call_cost = (tokens(QUESTIONS[0]) * PRICE_IN + tokens(llm.answer(QUESTIONS[0])) * PRICE_OUT) / 1e6
    hit_times = sorted(latencies)[: stats.hit_count] or [0.0]
    miss_times = sorted(latencies)[stats.hit_count :] or [0.0]

    print(f"questions asked        {args.calls}")
    print(f"real model calls       {llm.calls}")
    print(f"calls saved            {saved_calls} ({saved_calls / args.calls:.0%})")
    print(f"hit rate               {stats.hit_rate:.1%}  (hits by tier: {dict(stats.hits)})")
    print(f"median latency, miss   {statistics.median(miss_times) * 1e3:8.2f} ms")
    print(f"median latency, hit    {statistics.median(hit_times) * 1e6:8.2f} us")
    print(f"time saved             {saved_calls * args.latency:.1f} s of waiting on the model")
    print(f"money saved            ${saved_calls * per_call_cost:.4f} of ${args.calls * per_call_cost:.4f}")
    print(f"                       (simulated: ${PRICE_IN}/MTok in, ${PRICE_OUT}/MTok out)")


if __name__ == "__main__":
    main()
