"""Precision and recall of semantic matching on labeled pairs: raw cosine versus the default guards.

    python benchmarks/bench_semantic_quality.py [PAIRS.jsonl] [--model-path DIR] [--limit N]

PAIRS.jsonl has lines {"q1": ..., "q2": ..., "label": 0|1[, "source": ...]}; by default
../shared/data/en_pairs_dev.jsonl when present. label 1 means serving q1's answer for
q2 is correct. Prints, per threshold, precision and recall of raw cosine and of cosine
plus the default verifier, then per source at the default threshold.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from memollm.semantic.embedder import FastEmbedder
from memollm.semantic.learned import learned_verifier
from memollm.semantic.verify import default_verifier

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PAIRS = ROOT.parent / "shared" / "data" / "en_pairs_dev.jsonl"
DEFAULT_MODEL_PATH = ROOT / ".models" / "all-MiniLM-L6-v2"
THRESHOLDS = [0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.96, 0.98]


def pr(pred: np.ndarray, labels: np.ndarray) -> tuple[float, float, int]:
    tp = int((pred & labels).sum())
    fp = int((pred & ~labels).sum())
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / int(labels.sum()) if labels.sum() else float("nan")
    return precision, recall, tp + fp


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pairs", nargs="?", default=str(DEFAULT_PAIRS))
    parser.add_argument("--model-path", default=str(DEFAULT_MODEL_PATH))
    parser.add_argument("--threshold", type=float, default=0.90, help="the default configuration's threshold")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument(
        "--cosines", help="a .npy of the pairs' cosines from an earlier run (skips embedding)"
    )
    args = parser.parse_args()
    path = Path(args.pairs)
    if not path.is_file():
        raise SystemExit(f"no pairs file at {path}")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if args.limit:
        rows = rows[: args.limit]
    embedder = FastEmbedder(path=args.model_path)
    started = time.perf_counter()
    texts = sorted({r["q1"] for r in rows} | {r["q2"] for r in rows})
    if args.cosines:
        vectors = None
    else:
        vectors = np.concatenate([embedder.embed(texts[i : i + 512]) for i in range(0, len(texts), 512)])
    index = {t: i for i, t in enumerate(texts)}
    print(
        f"# {path.name}: {len(rows)} pairs, {len(texts)} texts embedded "
        f"in {time.perf_counter() - started:.0f}s "
        f"with {embedder.model} ({args.model_path})",
        file=sys.stderr,
    )
    if vectors is None:
        cos = np.load(args.cosines)
    else:
        cos = np.array([float(vectors[index[r["q1"]]] @ vectors[index[r["q2"]]]) for r in rows])
    labels = np.array([bool(r["label"]) for r in rows])
    guarded = np.array([default_verifier(r["q2"], r["q1"], 1.0) for r in rows])
    learned = np.array([learned_verifier(r["q2"], r["q1"], float(c)) for r, c in zip(rows, cos, strict=True)])
    print(f"\n{path.name}: positives {labels.mean():.3f}")
    print("(default = guards + the learned verifier; the learned model was fitted on PAWS, GPTCache's")
    print(" mock pairs and STS-B, so its numbers on those sources are in-sample: see per source)")
    columns = f"{'cosine P':>8} {'R':>6} | {'guards P':>8} {'R':>6} | {'default P':>9} {'R':>6} {'n':>5}"
    print(f"{'threshold':>9} | {columns}")
    for t in THRESHOLDS:
        p1, r1, _ = pr(cos >= t, labels)
        p2, r2, _ = pr((cos >= t) & guarded, labels)
        p3, r3, n3 = pr((cos >= t) & learned, labels)
        print(f"{t:9.2f} | {p1:8.3f} {r1:6.3f} | {p2:8.3f} {r2:6.3f} | {p3:9.3f} {r3:6.3f} {n3:5d}")
    by_source: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        source = r.get("source", "?")
        by_source[source.split(":")[0] + (" (mock)" if "mock_data" in source else "")].append(i)
    # The honest headline: the learned model never saw these sources (their licences forbid it).
    trained_on = ("hoangdzung/simmat", "mock_data", "English-STS-B")
    unseen = np.array([not any(t in r.get("source", "") for t in trained_on) for r in rows])
    if unseen.any() and not unseen.all():
        print(f"\nonly the {int(unseen.sum())} pairs of sources the learned model was never fitted on:")
        for t in THRESHOLDS:
            p, r, n = pr((cos[unseen] >= t) & learned[unseen], labels[unseen])
            print(f"{t:9.2f} | default P {p:6.3f}  R {r:6.3f}  served {n}")
    print(f"\nper source at threshold {args.threshold} (default configuration):")
    for source, idx in sorted(by_source.items()):
        sel = np.array(idx)
        p, r, n = pr((cos[sel] >= args.threshold) & learned[sel], labels[sel])
        print(f"  {source:45s} pairs {len(sel):5d}  P {p:6.3f}  R {r:6.3f}  served {n}")


if __name__ == "__main__":
    main()
