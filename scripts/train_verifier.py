"""Fit the learned semantic verifier on permissively licensed pairs and export the JSON memollm ships.

    python scripts/train_verifier.py [--pairs build/verifier/pairs.jsonl]
        [--dev ../shared/data/en_pairs_dev.jsonl] [--extra PAIRS.jsonl] [--out memollm/semantic/verifier.json]

A developer tool (needs scikit-learn, which memollm does not depend on). It fits a
gradient-boosted tree model over ``memollm.semantic.features`` (lexical and word-order
features plus the cosine) on the pairs ``scripts/verifier_pairs.py`` builds from sources
whose licence allows shipping a model fitted on them. No pair of the dev file is fitted: all
of it is held out, and the report (per source and pooled, per threshold) measures the model
on it. ``--extra`` adds a team's own labeled pairs (its would-be hits, say) to the fit.

Cosines come from the runtime embedding model (``.models/all-MiniLM-L6-v2``), so the
features match what the tier computes. The runtime scorer is the pure-Python one in
``memollm.semantic.learned``; this script checks it reproduces scikit-learn's scores.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier

from memollm.semantic.embedder import FastEmbedder
from memollm.semantic.features import FEATURES, features
from memollm.semantic.learned import LearnedModel
from memollm.semantic.verify import explain

ROOT = Path(__file__).resolve().parent.parent
GATE = 0.80  # candidates below this cosine are never considered
UNSEEN = ("quora", "mrpc", "medical")


def read(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def cosines(rows: list[dict[str, object]], model: str, cache: Path | None) -> np.ndarray:
    """The runtime model's cosine of each pair (cached next to the pairs)."""
    if cache is not None and cache.exists():
        found = np.load(cache)
        if len(found) == len(rows):
            return found
    embedder = FastEmbedder(path=model)
    texts = sorted({str(r["q1"]) for r in rows} | {str(r["q2"]) for r in rows})
    vectors = np.concatenate([embedder.embed(texts[i : i + 512]) for i in range(0, len(texts), 512)])
    at = {t: i for i, t in enumerate(texts)}
    cos = np.array([float(vectors[at[str(r["q1"])]] @ vectors[at[str(r["q2"])]]) for r in rows])
    if cache is not None:
        np.save(cache, cos)
    return cos


def matrix(rows: list[dict[str, object]], cos: np.ndarray) -> np.ndarray:
    # The query is q2, the cached prompt q1: as the tier asks.
    return np.array([features(str(r["q2"]), str(r["q1"]), float(c)) for r, c in zip(rows, cos, strict=True)])


def export(
    clf: GradientBoostingClassifier, threshold: float, gate: float, notes: dict[str, object]
) -> dict[str, object]:
    trees = []
    for (estimator,) in clf.estimators_:
        t = estimator.tree_
        trees.append({
            "f": t.feature.tolist(),
            "t": t.threshold.tolist(),  # full doubles: rounding to float32 changes decisions
            "l": t.children_left.tolist(),
            "r": t.children_right.tolist(),
            "v": [float(v[0][0]) for v in t.value],
        })  # fmt: skip
    return {
        "features": list(FEATURES),
        "init": float(clf._raw_predict_init(np.zeros((1, len(FEATURES))))[0, 0]),
        "rate": clf.learning_rate,
        "threshold": threshold,
        "gate": gate,
        **notes,
        "trees": trees,
    }


def source_of(row: dict[str, object]) -> str:
    src = str(row["source"])
    if "mock_data" in src:
        return "gptcache-mock"
    return {"zilliztech/GPTCache": "quora", "MorvanZhou/NLP-Tutorials": "mrpc",
            "curai/medical-question-pair-dataset": "medical", "hoangdzung/simmat": "paws",
            "shibing624/text2vec": "stsb"}.get(src.split(":", maxsplit=1)[0], src)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", default=str(ROOT / "build/verifier/pairs.jsonl"))
    parser.add_argument("--dev", default=str(ROOT.parent / "shared/data/en_pairs_dev.jsonl"))
    parser.add_argument("--model-path", default=str(ROOT / ".models/all-MiniLM-L6-v2"))
    parser.add_argument("--extra", help="more pairs to fit, e.g. a team's own labeled would-be hits")
    parser.add_argument("--target", type=float, default=0.95, help="whole-dev-file precision to choose for")
    parser.add_argument("--out", default=str(ROOT / "memollm/semantic/verifier.json"))
    args = parser.parse_args()
    train = read(Path(args.pairs)) + (read(Path(args.extra)) if args.extra else [])
    tcos = cosines(
        train, args.model_path, Path(args.pairs).with_suffix(".runtime-cos.npy") if not args.extra else None
    )
    keep = [i for i, r in enumerate(train) if tcos[i] >= GATE and explain(str(r["q2"]), str(r["q1"])) is None]
    x, y = matrix([train[i] for i in keep], tcos[keep]), np.array([int(train[i]["label"]) for i in keep])
    w = np.array([float(train[i].get("weight", 1.0)) for i in keep])  # type: ignore[arg-type]
    print(f"fitting on {len(keep)} of {len(train)} pairs (cosine >= {GATE}, past the vetoes)")
    clf = GradientBoostingClassifier(
        n_estimators=200, max_depth=3, learning_rate=0.08, subsample=0.8, random_state=0
    )
    clf.fit(x, y, sample_weight=w)

    dev = read(Path(args.dev))
    dcos = cosines(dev, args.model_path, ROOT / "build/verifier/dev_cos.npy")
    dy = np.array([int(r["label"]) for r in dev])
    vetoed = np.array([explain(str(r["q2"]), str(r["q1"])) is not None for r in dev])
    dx = matrix(dev, dcos)
    score = clf.predict_proba(dx)[:, 1]
    sources = np.array([source_of(r) for r in dev])
    groups = {
        "unseen": np.isin(sources, UNSEEN),
        **{s: sources == s for s in UNSEEN},
        "all": np.ones(len(dev), bool),
    }

    def measure(sel: np.ndarray, group: np.ndarray) -> tuple[float, float, int]:
        tp, fp = int((sel & group & (dy == 1)).sum()), int((sel & group & (dy == 0)).sum())
        return tp / max(1, tp + fp), tp / max(1, int((group & (dy == 1)).sum())), tp + fp

    best: tuple[float, float, float] | None = None
    print("cosine  score   " + "   ".join(f"{g:>22s}" for g in groups))
    for gate in (0.80, 0.84, 0.86, 0.88, 0.90, 0.92):
        for t in (0.5, 0.7, 0.8, 0.85, 0.9, 0.95):
            sel = (dcos >= gate) & ~vetoed & (score >= t)
            cells = [measure(sel, g) for g in groups.values()]
            print(
                f"{gate:.2f}    {t:.2f}    "
                + "   ".join(f"P {p:.3f} R {r:.3f} n{n:<5d}" for p, r, n in cells)
            )
            p_all, r_all, _ = cells[-1]
            if p_all >= args.target and (best is None or r_all > best[2]):
                best = (gate, t, r_all)
    gate, threshold = (best[0], best[1]) if best else (0.92, 0.95)
    print(f"chosen: cosine >= {gate}, score >= {threshold} (whole-file precision target {args.target})")
    notes = {"trained_on": "scripts/verifier_pairs.py (see scripts/data/verifier_manifest.json)"
             + (" + --extra" if args.extra else ""), "default_cosine": gate}  # fmt: skip
    spec = export(clf, threshold, GATE, notes)
    Path(args.out).write_text(json.dumps(spec, separators=(",", ":")))
    scorer = LearnedModel(spec)
    ours = np.array([scorer.score(list(row)) for row in dx[:300]])
    assert np.allclose(ours, score[:300], atol=1e-6), float(np.abs(ours - score[:300]).max())
    print("wrote", args.out)


if __name__ == "__main__":
    main()
