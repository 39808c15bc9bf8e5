"""Speed of the semantic tier: search at 1k-1M entries (exact vs HNSW), embedding, whole lookups.

    python benchmarks/bench_semantic.py [--sizes 1000,10000,100000,1000000] [--queries 200]
    python benchmarks/bench_semantic.py --server [--sizes 10000,100000,1000000]

``--server`` compares the in-process index with the index in a Redis server with vector
search (Redis 7.4 + RediSearch, assembled by scripts/fetch_redis_stack.py and started on a
free port): fill rate (the process index alone, and with the shared-log write that its
``store_many`` also does with a Redis tier), lookup p50/p99 with recall@1 against exact search, the client
process's memory (RSS) growth, the server's memory, and what a new process must do before
its first semantic hit (replay the shared log into its own index, or nothing).

Stored prompts are near-duplicates clustered around real questions embedded with the
offline model (questions from ../shared/data/en_pairs_dev.jsonl when present, else
generated ones); queries are near-duplicates of stored prompts, not random vectors, so
recall@1 of the approximate index against exact search means something. Times are this
machine's; compare ratios. Targets: p50 search <= 1 ms at 1M entries with recall@1 >= 0.99;
a whole semantic lookup <= 1.3x the embedding time alone at 100k entries; verifying one
candidate <= 3 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from memollm.semantic.embedder import BatchingEmbedder, FastEmbedder
from memollm.semantic.index import SemanticIndex
from memollm.semantic.learned import learned_verifier

ROOT = Path(__file__).resolve().parent.parent
PAIRS = ROOT.parent / "shared" / "data" / "en_pairs_dev.jsonl"


def base_questions(n: int) -> list[str]:
    if PAIRS.is_file():
        seen = dict.fromkeys(
            json.loads(line)["q1"] for line in PAIRS.read_text().splitlines() if line.strip()
        )
        return list(seen)[:n]
    topics = ["a list", "a dictionary", "a file", "a thread", "a class", "a test", "a string", "a date"]
    verbs = ["create", "sort", "read", "copy", "print", "compare", "reverse", "format"]
    return [f"How do I {v} {t} in Python, case {i}?" for i in range(n) for v in verbs for t in topics][:n]


def near(rng: np.random.Generator, vectors: np.ndarray, sigma: float) -> np.ndarray:
    out = vectors + rng.normal(scale=sigma, size=vectors.shape).astype(np.float32)
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def timed(fn, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def pct(xs: list[float], q: float) -> float:
    return sorted(xs)[min(len(xs) - 1, int(len(xs) * q))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--model-path", default=str(ROOT / ".models" / "all-MiniLM-L6-v2"))
    parser.add_argument("--server", action="store_true", help="the Redis server index, side by side")
    args = parser.parse_args()
    if args.server:
        from bench_semantic_server import compare

        compare([int(s) for s in args.sizes.split(",")], args.queries, args.model_path)
        return
    rng = np.random.default_rng(0)
    model = FastEmbedder(path=args.model_path)
    questions = base_questions(3000)
    base = np.concatenate([model.embed(questions[i : i + 256]) for i in range(0, len(questions), 256)])
    print(f"# semantic tier speed; {len(questions)} real questions embedded as cluster centres")
    print("# times are this machine's: compare ratios")

    print(f"\n## search, excluding embedding ({args.queries} near-duplicate queries per size)")
    print(
        f"{'entries':>9} | {'exact p50':>10} {'p99':>9} | {'HNSW p50':>9} {'p99':>9} {'build':>7} | recall@1"
    )
    lookup_index = None
    for size in [int(s) for s in args.sizes.split(",")]:
        stored = near(rng, base[np.arange(size) % len(base)], 0.03)
        keys, texts = [f"k{i}" for i in range(size)], [""] * size
        exact = SemanticIndex(max_entries=size + 1, max_bytes=2**40, ann_threshold=10**12)
        exact.add_many("p", keys, stored, texts)
        started = time.perf_counter()
        approx = SemanticIndex(max_entries=size + 1, max_bytes=2**40, ann_threshold=0)
        approx.add_many("p", keys, stored, texts)
        build = time.perf_counter() - started
        picks = rng.choice(size, size=args.queries, replace=False)
        queries = near(rng, stored[picks], 0.01)
        ex_t, ap_t, agree = [], [], 0
        for q in queries:
            start = time.perf_counter()
            a = exact.search("p", q, k=1, threshold=0.0)
            ex_t.append(time.perf_counter() - start)
            start = time.perf_counter()
            b = approx.search("p", q, k=1, threshold=0.0)
            ap_t.append(time.perf_counter() - start)
            agree += bool(a and b and a[0].key == b[0].key)
        print(f"{size:9d} | {statistics.median(ex_t) * 1e3:8.3f}ms {pct(ex_t, .99) * 1e3:7.3f}ms | "
              f"{statistics.median(ap_t) * 1e3:7.3f}ms {pct(ap_t, .99) * 1e3:7.3f}ms {build:6.1f}s | "
              f"{agree / len(queries):.3f}")  # fmt: skip
        if size == 100_000:
            lookup_index = exact if statistics.median(ex_t) <= statistics.median(ap_t) else approx
        del exact, approx

    print("\n## embedding (one prompt of ~10 words)")
    verbs = ("sorting", "filtering", "copying", "printing", "merging", "inverting", "hashing", "saving")
    texts = [f"How would I go about {w} a Python dictionary by its values?" for w in verbs]
    single = timed(lambda: model.embed([texts[0]]), 50)
    batch = timed(lambda: model.embed(texts * 4), 10)
    batching = BatchingEmbedder(model)
    pool = ThreadPoolExecutor(max_workers=8)  # eight concurrent callers, threads already running

    def burst() -> None:
        list(pool.map(batching.embed_one, texts * 4))

    concurrent = timed(burst, 10)
    per_single = statistics.median(single)
    print(f"single             {per_single * 1e3:7.2f} ms per prompt")
    per_batch = statistics.median(batch) / 32
    print(f"batch of 32        {per_batch * 1e3:7.2f} ms per prompt ({per_single / per_batch:.1f}x)")
    per_call = statistics.median(concurrent) / 32
    print(f"8 callers at once  {per_call * 1e3:7.2f} ms per prompt ({per_single / per_call:.1f}x), "
          f"{batching.batches} model calls")  # fmt: skip

    print("\n## verifying one candidate pair (vetoes, features, trees; pure Python, one core)")
    pairs = [(texts[i], texts[(i + 1) % len(texts)]) for i in range(min(200, len(texts)))]
    started = time.perf_counter()
    for query, cached in pairs:
        learned_verifier(query, cached, 0.95)
    print(f"{(time.perf_counter() - started) / len(pairs) * 1e3:.3f} ms per pair (target <= 3 ms)")

    if lookup_index is not None:
        print("\n## whole semantic lookup at 100k entries vs embedding alone")
        prompt = texts[1]

        def whole() -> None:
            # As a lookup does: the most similar candidates first, verified until one passes.
            vector = model.embed([prompt])[0]
            for candidate in lookup_index.search("p", vector, k=5, threshold=0.8):
                if learned_verifier(prompt, candidate.text, candidate.similarity):
                    break

        embed_only = statistics.median(timed(lambda: model.embed([prompt]), 50))
        lookup = statistics.median(timed(whole, 50))
        print(f"embedding alone {embed_only * 1e3:.2f} ms; whole lookup {lookup * 1e3:.2f} ms; "
              f"ratio {lookup / embed_only:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
