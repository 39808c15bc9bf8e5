"""What a semantic policy's lookups cost: exact hits, the same question spelled otherwise, a paraphrase.

    python benchmarks/bench_semantic_lookup.py [--model-path DIR] [--calls 3000]

All through one ``@cached_llm(semantic=True)`` function on the memory tier, in one run:

- an exact hit (the stored prompt again): the floor of this benchmark;
- the same question in other case, punctuation or fillers, asked again (its key is known);
- the same question spelled otherwise for the first time (its key computed, normal form included),
  beside an exact hit on a prompt whose key is computed for the first time too;
- a paraphrase served by the semantic tier (embedding, search, the rules and the verifier),
  beside the embedding alone.

Run it with ``PYTHONPATH=<another checkout>`` to measure that code in the same way. Quote ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import memollm
from memollm.backends import MemoryBackend

ROOT = Path(__file__).resolve().parent.parent
TOPICS = [
    f"topic number {i} of the {w} kind" for i in range(60) for w in ("red", "green", "blue", "gold", "grey")
]


def per_call(fn: Any, args: list[str], rounds: int = 5) -> float:
    """Median over rounds of the mean seconds per call."""
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        for a in args:
            fn(a)
        out.append((time.perf_counter() - start) / len(args))
    return statistics.median(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", default=str(ROOT / ".models" / "all-MiniLM-L6-v2"))
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    from memollm.semantic.embedder import FastEmbedder

    embedder = FastEmbedder(path=args.model_path, background=False)
    embedder.load()

    @memollm.cached_llm(semantic=True, embedder=embedder, tiers=[MemoryBackend(max_entries=100_000)])
    def ask(question: str) -> str:
        return f"the answer to {question}"

    stored = [f"What is {t}?" for t in TOPICS]
    for q in stored:
        ask(q)
    print(f"# memollm from {memollm.__file__}")
    exact = per_call(ask, [stored[0]] * args.calls)
    known = [f"Quick question: what is {TOPICS[0]}, please?"] * args.calls
    ask(known[0])
    repeat = per_call(ask, known)
    print(f"exact hit                                   {exact * 1e6:8.2f} us  1.00x")
    print(f"same question spelled otherwise, again      {repeat * 1e6:8.2f} us  {repeat / exact:.2f}x")
    # First sight of each spelling: no key memo can help (several thousand distinct strings).
    n = min(args.calls, len(TOPICS))
    fresh_exact = [f"What is {t}?" for t in TOPICS[:n]]
    first_exact = per_call(ask, fresh_exact, rounds=1)
    variants = [f"what is {t} please" for t in TOPICS[:n]]
    first_variant = per_call(ask, variants, rounds=1)
    print(f"exact hit, its key computed                 {first_exact * 1e6:8.2f} us  1.00x")
    print(f"same question spelled otherwise, first time {first_variant * 1e6:8.2f} us  "
          f"{first_variant / first_exact:.2f}x")  # fmt: skip
    hits = ask.cache.stats().hits
    print(f"# hits so far: {dict(hits)}")
    originals = [f"Can you explain {t} to me in detail?" for t in TOPICS[:60]]
    for q in originals:
        ask(q)
    embed_only = per_call(lambda q: embedder.embed([q]), originals, rounds=3)
    lookup = per_call(ask, [f"Could you explain {t} to me in detail?" for t in TOPICS[:60]], rounds=1)
    print(f"embedding one prompt                        {embed_only * 1e3:8.2f} ms  1.00x")
    print(f"semantic lookup (a paraphrase, first time)  {lookup * 1e3:8.2f} ms  {lookup / embed_only:.2f}x")
    print(f"# final stats: {ask.cache.stats()}")


if __name__ == "__main__":
    main()
