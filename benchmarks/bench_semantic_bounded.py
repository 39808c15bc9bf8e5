"""Error-bounded semantic hits against static thresholds, on streams of questions with known answers.

    python benchmarks/bench_semantic_bounded.py [--stream dev|intent|FILE.jsonl ...] [--limit N]

A stream is a sequence of questions in which groups of questions share one right answer. It is
replayed, once per configuration, through a cached function whose simulated model answers
every question with its group's answer; a question that reaches the model pays for a call.
Compared on the same stream: static cosine thresholds (0.80 to 0.95) with the default verifier
and without any, and ``Semantic(max_error=...)`` at 0.01, 0.02 and 0.05.

Streams:

- ``dev``: every text of ``../shared/data/en_pairs_dev.jsonl``, in a seeded random order. Texts
  joined by label-1 pairs share a group (one answer); a label-0 pair is a look-alike that must
  miss. A semantic hit is judged only where the data says something: right if the answer is
  the question's own group's, wrong if it is the group of a text labeled 0 against the
  question, else unjudged (near-duplicates from different pairs carry no label).
- ``intent``: the intent files of ``../shared/data/train/`` (one stream each): same intent, same
  answer. Coarse: a real assistant's answer to two questions of one intent may differ. Groups
  are the label-1 components of at least 30 texts (about one per intent: 74 for banking77's 77
  intents; smaller ones are fragments, left out), and every hit is judged: another intent's
  answer is wrong whether or not a pair says so.
- ``FILE.jsonl``: lines ``{"text": ..., "group": ...[, "against": [group, ...]]}``, judged the
  same way: right if the answer is the group's, wrong if it is an ``against`` group's, or of any
  other group when a line has no ``against`` key.

Printed per configuration: hit rate (semantic answers / questions), realised error (wrong answers
served / judged answers served), the same after the warm-up (the first ``--warmup`` questions),
the simulated model's own view of the error (answers served that differ from what the model
would have said), and model calls (explorations included). Embeddings are computed once per
stream with the offline MiniLM model (``.models/all-MiniLM-L6-v2``, see
``scripts/fetch_test_model.py``) and memoised in ``benchmarks/.cache``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
MODEL_PATH = ROOT / ".models" / "all-MiniLM-L6-v2"
CACHE = Path(__file__).resolve().parent / ".cache"
STATIC = [0.80, 0.85, 0.88, 0.90, 0.92, 0.95]
BOUNDS = [0.01, 0.02, 0.05]
MIN_INTENT_GROUP = 30  # texts: smaller groups are mostly fragments of an intent
# nlupp and slurp have no (or one) group of 30 texts: too few whole intents to replay.
INTENTS = ["banking77", "clinc150", "hwu64"]


@dataclass(frozen=True)
class Question:
    text: str
    group: int
    against: frozenset[int] | None  # groups whose answer is wrong for it; None: every other group


@dataclass
class Result:
    name: str
    questions: int = 0
    hits: int = 0
    judged: int = 0
    wrong: int = 0
    judged_late: int = 0
    wrong_late: int = 0
    model_wrong: int = 0
    calls: int = 0
    explorations: int = 0
    seconds: float = 0.0


def same_text(text: str) -> str:
    """What two texts that are the same question share: no case, spacing or punctuation."""
    return re.sub(r"[\W_]+", "", text.casefold())


def from_pairs(path: Path, *, min_group: int = 1, whole_groups: bool = False) -> list[Question]:
    """Questions from labeled pairs: label 1 joins two texts' groups, label 0 marks a look-alike.

    Texts equal but for case, spacing and punctuation are one question (PAWS and MRPC repeat
    sentences tokenised differently). ``min_group`` keeps only groups at least that large: in an
    intent file, a text seen only in label-0 pairs has some intent, just not one the file says,
    and small groups are mostly fragments of an intent whose other texts no pair joins them to.
    ``whole_groups``: the groups left are whole intents, so an answer of any other group is
    wrong, whether or not a pair labels it.
    """
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first: dict[str, str] = {}
    for r in rows:
        for text in (r["q1"], r["q2"]):
            parent[find(text)] = find(first.setdefault(same_text(text), text))
        if r["label"] == 1:
            parent[find(r["q1"])] = find(r["q2"])
    roots: dict[str, int] = {}
    group = {t: roots.setdefault(find(t), len(roots)) for t in sorted(parent)}
    against: dict[str, set[int]] = {t: set() for t in group}
    for r in rows:
        if r["label"] == 0:
            against[r["q1"]].add(group[r["q2"]])
            against[r["q2"]].add(group[r["q1"]])
    size: dict[int, int] = {}
    for g in group.values():
        size[g] = size.get(g, 0) + 1
    return [
        Question(t, group[t], None if whole_groups else frozenset(against[t] - {group[t]}))
        for t in sorted(group)
        if size[group[t]] >= min_group
    ]


def from_groups(path: Path) -> list[Question]:
    """Questions from ``{"text", "group"[, "against"]}`` lines (groups: any JSON scalars)."""
    ids: dict[str, int] = {}
    out: dict[str, Question] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        gid = ids.setdefault(json.dumps(row["group"]), len(ids))
        against = row.get("against")
        bad = None if against is None else frozenset(ids.setdefault(json.dumps(g), len(ids)) for g in against)
        out.setdefault(row["text"], Question(row["text"], gid, bad))
    return list(out.values())


def streams(names: list[str]) -> dict[str, list[Question]]:
    found: dict[str, list[Question]] = {}
    for name in names:
        if name == "dev":
            found["dev"] = from_pairs(DATA / "en_pairs_dev.jsonl")
        elif name == "intent" or name in INTENTS:
            for intent in INTENTS if name == "intent" else [name]:
                found[intent] = from_pairs(
                    DATA / "train" / f"en_{intent}_intent.jsonl",
                    min_group=MIN_INTENT_GROUP,
                    whole_groups=True,
                )
        else:
            path = Path(name)
            found[path.stem] = from_groups(path) if "group" in path.read_text()[:2000] else from_pairs(path)
    return found


def vectors_for(texts: list[str]) -> dict[str, np.ndarray]:
    """Each text's embedding, memoised on disk by the texts' digest."""
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"vectors-{digest}.npy"
    if path.exists():
        matrix = np.load(path)
    else:
        from memollm.semantic.embedder import FastEmbedder

        embedder = FastEmbedder(path=str(MODEL_PATH))
        matrix = np.concatenate([embedder.embed(texts[i : i + 256]) for i in range(0, len(texts), 256)])
        np.save(path, matrix)
    return dict(zip(texts, matrix.astype(np.float32), strict=True))


def configurations() -> list[tuple[str, Any, Any]]:
    """(name, semantic=, verify=) for each configuration compared."""
    from memollm import Semantic

    out: list[tuple[str, Any, Any]] = []
    for t in STATIC:
        out.append((f"static {t:.2f} + verifier", t, None))
        out.append((f"static {t:.2f}, no verifier", t, False))
    for e in BOUNDS:
        out.append((f"max_error {e:.2f}", Semantic(max_error=e), None))
    return out


def replay(job: tuple[str, list[Question], int, int]) -> Result:
    """One configuration over one stream, in a fresh cache."""
    _stream_name, stream, which, warmup = job
    import memollm
    from memollm.backends.memory import MemoryBackend

    name, semantic, verify = configurations()[which]
    vectors = vectors_for(sorted(q.text for q in stream))
    answers = {q.text: f"answer {q.group}" for q in stream}
    calls = 0

    def embed(texts: list[str]) -> np.ndarray:
        return np.stack([vectors[t] for t in texts])

    @memollm.cached_llm(
        ttl=None,
        semantic=semantic,
        verify=verify,
        embedder=embed,
        tiers=(MemoryBackend(max_entries=1_000_000, max_bytes=1 << 30),),
        semantic_max_entries=1_000_000,
        namespace=f"bench-{which}",
    )
    def ask(question: str) -> str:
        nonlocal calls
        calls += 1
        return answers[question]

    result = Result(name, questions=len(stream))
    started = time.perf_counter()
    for i, q in enumerate(stream):
        before = calls
        answer = ask(q.text)
        if calls != before:
            continue
        result.hits += 1
        served = int(answer.split()[1])
        result.model_wrong += served != q.group
        if served == q.group:
            verdict: bool | None = True
        elif q.against is None or served in q.against:
            verdict = False
        else:
            verdict = None
        if verdict is not None:
            result.judged += 1
            result.wrong += not verdict
            if i >= warmup:
                result.judged_late += 1
                result.wrong_late += not verdict
    result.seconds = time.perf_counter() - started
    result.calls = calls
    result.explorations = ask.cache.stats().explorations
    return result


def report(stream: str, n: int, warmup: int, results: list[Result]) -> None:
    print(f"\n## {stream}: {n} questions (warm-up: the first {warmup})")
    print(f"{'configuration':28} {'hit rate':>8} {'error':>7} {'judged':>6} {'late err':>8} "
          f"{'model err':>9} {'calls':>6} {'explored':>8}")  # fmt: skip
    for r in results:
        err = r.wrong / r.judged if r.judged else 0.0
        late = r.wrong_late / r.judged_late if r.judged_late else 0.0
        model = r.model_wrong / r.hits if r.hits else 0.0
        print(f"{r.name:28} {r.hits / r.questions:8.3f} {err:7.3f} {r.judged:6d} {late:8.3f} "
              f"{model:9.3f} {r.calls:6d} {r.explorations:8d}")  # fmt: skip
    for e in BOUNDS:
        bounded = next((r for r in results if r.name == f"max_error {e:.2f}"), None)
        if bounded is None:
            continue
        meeting = [r for r in results if r.name.startswith("static") and r.judged and r.wrong / r.judged <= e]
        best = max(meeting, key=lambda r: r.hits, default=None)
        line = f"max_error {e:.2f}: hit rate {bounded.hits / n:.3f}"
        if best is None:
            line += "; no static threshold keeps the error within it"
        else:
            ratio = bounded.hits / best.hits if best.hits else float("inf")
            line += f" vs {best.hits / n:.3f} for the best static one within it ({best.name}): {ratio:.2f}x"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stream", action="append", help="dev, intent or a .jsonl file (repeatable)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many questions per stream")
    parser.add_argument("--warmup", type=int, default=1000, help="questions before the 'late' error counts")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", help="only configurations whose name contains this")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not MODEL_PATH.exists():
        raise SystemExit(f"no embedding model at {MODEL_PATH}: run scripts/fetch_test_model.py")
    chosen = [i for i, (name, _, _) in enumerate(configurations()) if not args.only or args.only in name]
    for stream_name, questions in streams(args.stream or ["dev", "intent"]).items():
        random.Random(args.seed).shuffle(questions)
        stream = questions[: args.limit or None]
        vectors_for(sorted(q.text for q in stream))  # embed once, before the workers start
        print(f"# {stream_name}: replaying {len(chosen)} configurations", file=sys.stderr)
        with ProcessPoolExecutor(args.jobs) as pool:
            jobs = [(stream_name, stream, i, args.warmup) for i in chosen]
            results = list(pool.map(replay, jobs))
        report(stream_name, len(stream), args.warmup, results)


if __name__ == "__main__":
    main()
