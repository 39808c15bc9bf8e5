"""Scenario 3: semantic caching, memollm versus GPTCache (sqlite + faiss), one system per process.

    python semantic.py SYSTEM --mode speed --size N --out F
    python semantic.py SYSTEM --mode quality --out F

Both systems get the same embedding model (fastembed, the offline int8 all-MiniLM-L6-v2)
through the same function; stored prompts' vectors are computed once and looked up, so
filling 100k entries measures the caches, not the model.

speed: N entries (real questions, then near-duplicates of them), then 200 real paraphrases
looked up: latency with the query's embedding precomputed ("search") and computed by the
model ("with embedding"), and the share served.

quality: pairwise on 1,500 labeled pairs, as bench_semantic_quality.py does: each pair's
first question alone in the cache (memollm: a partition per pair; GPTCache: a cache per
pair), its second question looked up through the system's own get. Precision = served
paraphrases / served, recall = served paraphrases / paraphrase pairs. Measured at each
system's default threshold and at matched cosine thresholds (GPTCache's faiss scores
4 - squared L2 distance against a threshold of 4 x similarity_threshold; for unit vectors
that is cosine >= 2 s - 1).
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from common import guard_network, parser, record, version_of

SCENARIO = "semantic"
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PAIRS = ROOT.parent / "shared" / "data" / "en_pairs_dev.jsonl"
MODEL = ROOT / ".models" / "all-MiniLM-L6-v2"
CACHE = HERE / ".cache"
MEMOLLM_THRESHOLDS = (0.80, 0.84, 0.88, 0.92, 0.95)
GPTCACHE_DEFAULT = 0.8  # gptcache.Config().similarity_threshold


class Miss(Exception):
    """Raised by the function behind memollm: a lookup that found nothing."""


def load_pairs() -> list[dict[str, Any]]:
    if PAIRS.is_file():
        rows = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:  # no labeled data on this machine: the demo workload's paraphrases, labeled by topic
        from importlib import resources

        raw = json.loads(resources.files("memollm").joinpath("data/demo_workload.json").read_text("utf-8"))
        asks = [(i, a) for i, t in enumerate(raw["topics"]) for a in t["asks"]]
        rng = random.Random(1)
        rows = []
        for i, a in asks:
            for j, b in rng.sample(asks, 6):
                if a != b:
                    rows.append({"q1": a, "q2": b, "label": int(i == j)})
            rows += [{"q1": a, "q2": b, "label": 1} for k, b in asks if k == i and b != a]
    random.Random(7).shuffle(rows)
    return rows


class Vectors:
    """Embeddings of every text the run needs, computed once and kept on disk."""

    def __init__(self, texts: list[str]) -> None:
        from memollm.semantic.embedder import FastEmbedder

        self.model = FastEmbedder(path=str(MODEL) if MODEL.is_dir() else None, background=False)
        CACHE.mkdir(exist_ok=True)
        store = CACHE / "vectors.npz"
        known: dict[str, np.ndarray] = {}
        if store.is_file():
            data = np.load(store, allow_pickle=False)
            known = dict(zip(data["texts"].tolist(), data["vectors"], strict=True))
        missing = sorted(set(texts) - set(known))
        if missing:
            for start in range(0, len(missing), 256):
                batch = missing[start : start + 256]
                known.update(zip(batch, self.model.embed(batch), strict=True))
            names = list(known)
            np.savez(store, texts=np.array(names), vectors=np.stack([known[t] for t in names]))
        self.known = known

    def live(self, text: str) -> np.ndarray:
        return self.model.embed([text])[0]


def entries(vectors: Vectors, base: list[str], size: int) -> tuple[list[str], dict[str, np.ndarray]]:
    """``size`` stored prompts: the real questions, then near-duplicates of them (own vectors)."""
    rng = np.random.default_rng(3)
    texts = list(base[:size])
    extra: dict[str, np.ndarray] = {}
    for i in range(size - len(texts)):
        seed = vectors.known[base[i % len(base)]]
        v = seed + rng.normal(scale=0.05, size=seed.shape).astype(np.float32)
        text = f"{base[i % len(base)]} #{i}"
        extra[text] = (v / np.linalg.norm(v)).astype(np.float32)
        texts.append(text)
    return texts, extra


# -- the two systems --------------------------------------------------------------------


def memollm_system(
    lookup_vector: Callable[[str], np.ndarray], threshold: float, tmp: Path, capacity: int = 1000
) -> Any:
    import memollm
    from memollm.backends import MemoryBackend
    from memollm.backends.sqlite import SQLiteBackend

    memollm.register_tier("memory", MemoryBackend(max_entries=300_000, max_bytes=2**31))
    memollm.register_tier("sqlite", SQLiteBackend(tmp / f"m{threshold}.db"))

    def embed(texts: list[str]) -> np.ndarray:
        return np.stack([lookup_vector(t) for t in texts])

    @memollm.cached_llm(
        name=f"bench.semantic.{threshold}",
        tiers=("memory", "sqlite"),
        semantic=threshold,
        embedder=embed,
        semantic_max_entries=300_000,
        ttl=None,
    )
    def ask(question: str) -> str:
        raise Miss

    def put(texts: list[str], answers: list[str]) -> None:
        ask.cache.store_many(zip(texts, answers, strict=True))

    def get(text: str) -> str | None:
        try:
            return ask(text)
        except Miss:
            return None

    return put, get, None


def gptcache_system(
    lookup_vector: Callable[[str], np.ndarray],
    threshold: float,
    tmp: Path,
    *,
    in_memory: bool = False,
    capacity: int = 1000,
) -> Any:
    from gptcache import Cache, Config
    from gptcache.adapter.api import get
    from gptcache.manager import CacheBase, VectorBase, get_data_manager
    from gptcache.processor.pre import get_prompt
    from gptcache.similarity_evaluation.distance import SearchDistanceEvaluation

    manager = get_data_manager(
        CacheBase("sqlite", sql_url="sqlite://" if in_memory else f"sqlite:///{tmp}/gptcache.db"),
        VectorBase("faiss", dimension=384, index_path=str(tmp / "faiss.index")),
        max_size=capacity,  # the default keeps 1,000 entries and evicts the rest without a word
    )
    cache = Cache()
    cache.init(
        pre_embedding_func=get_prompt,
        embedding_func=lambda text, **_: lookup_vector(text),
        data_manager=manager,
        similarity_evaluation=SearchDistanceEvaluation(),
        config=Config(similarity_threshold=threshold),
    )

    def put(texts: list[str], answers: list[str]) -> None:
        cache.import_data(questions=texts, answers=answers)

    def fetch(text: str) -> str | None:
        found = get(text, cache_obj=cache)
        return None if found is None else str(found)

    return put, fetch, cache


SYSTEMS = {"memollm": memollm_system, "GPTCache sqlite+faiss": gptcache_system}


def speed(system: str, size: int, out: Path) -> None:
    pairs = [p for p in load_pairs() if p["label"] == 1]
    base = list(dict.fromkeys(p["q1"] for p in pairs))
    queries = [p["q2"] for p in pairs[:200] if p["q2"] not in set(base)]
    vectors = Vectors(base + queries)
    texts, extra = entries(vectors, base, size)
    table = {**vectors.known, **extra}
    live = {"on": False}

    def lookup(text: str) -> np.ndarray:
        if live["on"] and text in queries_set:
            return vectors.live(text)
        return table[text]

    queries_set = set(queries)
    threshold = 0.88 if system == "memollm" else (1 + 0.88) / 2
    if True:  # GPTCache writes its faiss index at exit: the folder must outlive the run
        tmp = tempfile.mkdtemp(dir=_scratch())
        put, get, _ = SYSTEMS[system](lookup, threshold, Path(tmp), capacity=size + 1000)
        started = time.perf_counter()
        put(texts, [f"answer {i}" for i in range(len(texts))])
        fill = time.perf_counter() - started
        results: dict[str, Any] = {}
        for mode in ("search", "with embedding"):
            live["on"] = mode == "with embedding"
            times, served = [], 0
            for q in queries:
                start = time.perf_counter()
                found = get(q)
                times.append((time.perf_counter() - start) * 1e3)
                served += found is not None
            times.sort()
            results[mode] = {
                "p50_ms": statistics.median(times),
                "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))],
                "served": served / len(queries),
            }
    record(
        out,
        SCENARIO,
        system,
        mode="speed",
        size=size,
        fill_s=fill,
        queries=len(queries),
        version=_version(system),
        **{f"{m}_{k}": v for m, r in results.items() for k, v in r.items()},
    )


def quality(system: str, out: Path) -> None:
    """Pairwise: each pair's first question alone in the cache, its second looked up."""
    rows = load_pairs()[:1500]
    vectors = Vectors([r["q1"] for r in rows] + [r["q2"] for r in rows])
    cosines = [0.60, *MEMOLLM_THRESHOLDS] if system != "memollm" else list(MEMOLLM_THRESHOLDS)
    served = {c: [] for c in cosines}
    if system == "memollm":
        for cosine in cosines:
            put, get = memollm_pairs(
                vectors.known.__getitem__, cosine, Path(tempfile.mkdtemp(dir=_scratch()))
            )
            for i, r in enumerate(rows):
                put(i, r["q1"])
                served[cosine].append(get(i, r["q2"]) == f"A{i}")
    else:
        for i, r in enumerate(rows):
            tmp = Path(tempfile.mkdtemp(dir=_scratch()))
            _, get, cache = gptcache_system(vectors.known.__getitem__, GPTCACHE_DEFAULT, tmp, in_memory=True)
            cache.import_data(questions=[r["q1"]], answers=[f"A{i}"])
            for cosine in cosines:
                cache.config.similarity_threshold = (1 + cosine) / 2
                served[cosine].append(get(r["q2"]) == f"A{i}")
    labels = [r["label"] == 1 for r in rows]
    for cosine in cosines:
        hits = served[cosine]
        correct = sum(h and y for h, y in zip(hits, labels, strict=True))
        default = (system == "memollm" and cosine == 0.88) or (system != "memollm" and cosine == 0.60)
        threshold = cosine if system == "memollm" else (1 + cosine) / 2
        record(
            out,
            SCENARIO,
            system,
            mode="quality",
            cosine=cosine,
            threshold=threshold,
            default=default,
            precision=correct / sum(hits) if any(hits) else float("nan"),
            recall=correct / sum(labels),
            served=sum(hits),
            pairs=len(rows),
            version=_version(system),
        )


def memollm_pairs(lookup_vector: Callable[[str], np.ndarray], threshold: float, tmp: Path) -> Any:
    """memollm with one exact partition per pair (the pair number is an argument)."""
    import memollm
    from memollm.backends import MemoryBackend

    memollm.register_tier("memory", MemoryBackend(max_entries=300_000, max_bytes=2**31))

    @memollm.cached_llm(
        name=f"bench.pairs.{threshold}",
        semantic=threshold,
        embedder=lambda ts: np.stack([lookup_vector(t) for t in ts]),
    )
    def ask(pair: int, question: str) -> str:
        raise Miss

    def get(pair: int, question: str) -> str | None:
        try:
            return ask(pair, question)
        except Miss:
            return None

    return (lambda pair, question: ask.cache.store(f"A{pair}", pair, question)), get


def _scratch() -> Path:
    folder = CACHE / "scratch"  # emptied by run.sh before each run
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _version(system: str) -> str:
    return (
        f"memollm {version_of('memollm-cache')}"
        if system == "memollm"
        else f"gptcache {version_of('gptcache')}"
    )


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("speed", "quality"), required=True)
    p.add_argument("--size", type=int, default=1000)
    args = p.parse_args()
    guard_network()
    try:
        if args.mode == "speed":
            speed(args.system, args.size, args.out)
        else:
            quality(args.system, args.out)
    except Exception as exc:  # a peer that cannot run here is reported, not hidden
        import traceback

        traceback.print_exc(file=sys.stderr)
        record(
            args.out,
            SCENARIO,
            args.system,
            mode=args.mode,
            size=args.size,
            error=f"{type(exc).__name__}: {exc}"[:300],
        )


if __name__ == "__main__":
    main()
