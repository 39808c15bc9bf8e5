"""Measure semantic verifiers on the labeled dev pairs: precision and recall per source and pooled.

    python scripts/eval_verifier.py [--pairs ../shared/data/en_pairs_dev.jsonl] [--model DIR]

A developer tool (the dev pairs stay outside the package). Every pair is scored as a cache
lookup would score it: the query ``q2`` against the cached prompt ``q1``, with the cosine of
the runtime embedding model (``.models/all-MiniLM-L6-v2``, as the tests use it). Verifiers:

- ``cosine``: the threshold alone;
- ``learned``: the tree model over lexical features (``memollm.semantic.learned``), hard vetoes first;
- ``cross``: the cross-encoder in ``--model`` (``verifier.onnx`` + ``verifier.json``), hard vetoes first.

Sources are reported separately and as "unseen" (Quora, MRPC, medical: never fitted by any
shipped model) and "all". Also scores the look-alike families of issue 17.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from memollm.semantic.embedder import FastEmbedder
from memollm.semantic.learned import learned_verifier
from memollm.semantic.verify import explain

ROOT = Path(__file__).resolve().parent.parent
SOURCE_NAMES = {"zilliztech/GPTCache": "quora", "MorvanZhou/NLP-Tutorials": "mrpc",
                "curai/medical-question-pair-dataset": "medical", "hoangdzung/simmat": "paws",
                "shibing624/text2vec": "stsb"}  # fmt: skip
# (cached, query): look-alikes that must never be served, and paraphrases that should be.
LOOKALIKES = [
    ("How do I turn off dark mode in Windows 11?", "How do I turn on dark mode in Windows 11?"),
    ("How many feet are in a mile?", "How many meters are in a mile?"),
    ("Convert 10 kilometers to miles", "Convert 10 kilometers to meters"),
    ("How do I enable 2FA on my account?", "How do I disable 2FA on my account?"),
    ("Find flights from Boston to Denver", "Find flights from Denver to Boston"),
    ("What is 1+1?", "What is 21+1?"),
    ("Is it safe to take ibuprofen while pregnant?", "Is it not safe to take ibuprofen while pregnant?"),
    (
        "How do I sort a list in ascending order in Python?",
        "How do I sort a list in descending order in Python?",
    ),
    ("How do I read a CSV file in Python?", "How do I read a CSV file in Java?"),
    ("What is the capital of France?", "What is the capital of Germany?"),
    ("How long should I boil an egg?", "How long should I boil a potato?"),
    ("How do I install Docker on Ubuntu?", "How do I uninstall Docker on Ubuntu?"),
    ("What time is it in Tokyo?", "What time is it in London?"),
    ("How do I convert Celsius to Fahrenheit?", "How do I convert Fahrenheit to Celsius?"),
]
PARAPHRASES = [
    ("How do I create a list in Python?", "What's the way to make a Python list?"),
    ("How do I reverse a string in Python?", "How can I reverse a string in Python?"),
    ("What is the capital of France?", "Which city is the capital of France?"),
    ("How do I turn off dark mode in Windows 11?", "How can I disable dark mode on Windows 11?"),
    ("How many feet are in a mile?", "How many feet does a mile have?"),
    ("What's the best way to learn Spanish?", "How can I learn Spanish most effectively?"),
]


def source_of(row: dict[str, object]) -> str:
    src = str(row["source"])
    name = SOURCE_NAMES.get(src.split(":", maxsplit=1)[0], src.split(":", maxsplit=1)[0])
    return "gptcache-mock" if "mock_data" in src else name


class CrossScorer:
    """The exported cross-encoder run with onnxruntime, as the runtime would."""

    def __init__(self, folder: Path, threads: int = 1) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.spec = json.loads((folder / "verifier.json").read_text())
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(folder / "verifier.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self.tok = Tokenizer.from_file(str(ROOT / ".models/all-MiniLM-L6-v2/tokenizer.json"))
        self.tok.no_padding()
        self.tok.enable_truncation(int(self.spec.get("max_len", 128)))

    def logits(self, pairs: list[tuple[str, str]], batch: int = 64) -> np.ndarray:
        """The cross-encoder's own logit for each (query, cached) pair."""
        out = []
        for start in range(0, len(pairs), batch):
            enc = self.tok.encode_batch(pairs[start : start + batch])
            width = max(len(e.ids) for e in enc)
            ids = np.zeros((len(enc), width), dtype=np.int64)
            mask, types = np.zeros_like(ids), np.zeros_like(ids)
            for i, e in enumerate(enc):
                ids[i, : len(e.ids)], mask[i, : len(e.ids)], types[i, : len(e.ids)] = (
                    e.ids,
                    e.attention_mask,
                    e.type_ids,
                )
            out.append(
                self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
            )
        return np.concatenate(out)

    def probability(self, logits: np.ndarray, cos: np.ndarray) -> np.ndarray:
        """The probability that serving is right: the logit on top of the cosine."""
        return 1 / (1 + np.exp(-(logits + self.spec["w"] * cos + self.spec["b"])))


def cosines(texts_a: list[str], texts_b: list[str], cache: Path | None = None) -> np.ndarray:
    if cache is not None and cache.exists():
        found = np.load(cache)
        if len(found) == len(texts_a):
            return found
    emb = FastEmbedder(path=str(ROOT / ".models/all-MiniLM-L6-v2"))
    texts = sorted(set(texts_a) | set(texts_b))
    vec = np.concatenate([emb.embed(texts[i : i + 256]) for i in range(0, len(texts), 256)])
    at = {t: i for i, t in enumerate(texts)}
    cos = np.array([float(vec[at[a]] @ vec[at[b]]) for a, b in zip(texts_a, texts_b, strict=True)])
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, cos)
    return cos


def report(name: str, served: np.ndarray, labels: np.ndarray, groups: dict[str, np.ndarray]) -> str:
    parts = []
    for group, sel in groups.items():
        tp = int((served & sel & (labels == 1)).sum())
        fp = int((served & sel & (labels == 0)).sum())
        pos = int((sel & (labels == 1)).sum())
        p = tp / (tp + fp) if tp + fp else math.nan
        parts.append(f"{group} P {p:.3f} R {tp / pos if pos else math.nan:.3f} n{tp + fp}")
    return f"{name:34s} " + " | ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", default=str(ROOT.parent / "shared/data/en_pairs_dev.jsonl"))
    parser.add_argument("--model", action="append", default=[], help="a folder with verifier.onnx and .json")
    parser.add_argument("--no-learned", action="store_true")
    args = parser.parse_args()
    rows = [json.loads(x) for x in Path(args.pairs).read_text().splitlines() if x.strip()]
    cached, query = [str(r["q1"]) for r in rows], [str(r["q2"]) for r in rows]
    labels = np.array([int(r["label"]) for r in rows])
    cos = cosines(cached, query, ROOT / "build/verifier/dev_cos.npy")
    sources = [source_of(r) for r in rows]
    groups: dict[str, np.ndarray] = {"unseen": np.array([s in ("quora", "mrpc", "medical") for s in sources])}
    for name in ("quora", "mrpc", "medical"):
        groups[name] = np.array([s == name for s in sources])
    groups["all"] = np.ones(len(rows), bool)
    vetoed = np.array([explain(q, c) is not None for q, c in zip(query, cached, strict=True)])
    lines = []
    for t in (0.80, 0.85, 0.88, 0.90, 0.92, 0.95):
        lines.append(report(f"cosine >= {t}", cos >= t, labels, groups))
    if not args.no_learned:
        learned = np.array(
            [
                c >= 0.8 and learned_verifier(q, k, float(c))
                for q, k, c in zip(query, cached, cos, strict=True)
            ]
        )
        for t in (0.85, 0.88, 0.90, 0.92):
            lines.append(report(f"learned, cosine >= {t}", learned & (cos >= t), labels, groups))
    for folder in map(Path, args.model):
        scorer = CrossScorer(folder, threads=2)
        logits = scorer.logits(list(zip(query, cached, strict=True)))
        back = scorer.logits(list(zip(cached, query, strict=True)))
        for order, lg in (("q>c", logits), ("both", (logits + back) / 2)):
            prob = scorer.probability(lg, cos)
            auc = _auc(prob[groups["unseen"]], labels[groups["unseen"]])
            base = _auc(cos[groups["unseen"]], labels[groups["unseen"]])
            lines.append(f"--- {folder.name} ({order}) unseen AUC {auc:.3f} (cosine {base:.3f})")
            for gate in (0.80, 0.85, 0.88):
                for t in (0.5, 0.7, 0.8, 0.9, 0.95):
                    served = (cos >= gate) & (prob >= t) & ~vetoed
                    lines.append(report(f"cross gate {gate} p >= {t}", served, labels, groups))
        probe(scorer)
    print("\n".join(lines))


def probe(scorer: CrossScorer) -> None:
    for title, pairs in (
        ("look-alikes (must be low)", LOOKALIKES),
        ("paraphrases (should be high)", PARAPHRASES),
    ):
        cached, query = [a for a, _ in pairs], [b for _, b in pairs]
        cos = cosines(cached, query)
        prob = scorer.probability(scorer.logits(list(zip(query, cached, strict=True))), cos)
        print(title)
        for (a, b), c, p in zip(pairs, cos, prob, strict=True):
            veto = explain(b, a)
            print(f"  cos {c:.3f} p {p:.3f} {'VETO ' + veto if veto else ''}  {b!r} ~ {a!r}")


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    pos = labels == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


if __name__ == "__main__":
    main()
