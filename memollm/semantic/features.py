"""Cheap lexical and word-order features of a (query, cached prompt) pair, for the learned verifier.

About 30 numbers per pair, computed in pure Python in well under a millisecond:
lengths, word and n-gram overlap, word order (longest common subsequence, inverted
pairs), character similarity, and the guards of ``verify`` as graded features.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Hashable
from collections.abc import Set as AbstractSet

from . import verify as guards

__all__ = ["FEATURES", "features"]

_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "do",
        "does",
        "did",
        "doing",
        "have",
        "has",
        "had",
        "having",
        "i",
        "me",
        "my",
        "we",
        "our",
        "you",
        "your",
        "he",
        "she",
        "it",
        "its",
        "they",
        "them",
        "their",
        "this",
        "that",
        "these",
        "those",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "of",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "about",
        "against",
        "between",
        "into",
        "through",
        "during",
        "to",
        "from",
        "up",
        "down",
        "out",
        "over",
        "under",
        "again",
        "further",
        "then",
        "once",
        "here",
        "there",
        "all",
        "any",
        "both",
        "each",
        "few",
        "more",
        "most",
        "other",
        "some",
        "such",
        "only",
        "own",
        "same",
        "so",
        "than",
        "too",
        "very",
        "s",
        "t",
        "can",
        "will",
        "just",
        "should",
        "now",
        "would",
        "could",
        "may",
        "might",
        "must",
        "shall",
        "or",
        "and",
        "but",
        "if",
        "because",
        "as",
        "until",
        "while",
        "get",
        "got",
        "make",
        "made",
        "way",
        "use",
        "using",
        "used",
        "there's",
        "what's",
        "it's",
    ]
)
_WH = ("what", "which", "who", "whom", "whose", "when", "where", "why", "how")


def _stemmer() -> Callable[[str], str]:
    try:
        from py_rust_stemmers import SnowballStemmer  # type: ignore[import-untyped]

        snowball = SnowballStemmer("english")
        return snowball.stem_word  # type: ignore[no-any-return]
    except Exception:  # noqa: BLE001 - any stemmer failure falls back to suffix stripping
        suffixes = ("ingly", "edly", "ness", "ment", "ing", "ies", "ied", "ed", "es", "ly", "s")

        def strip(word: str) -> str:
            for suffix in suffixes:
                if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                    return word[: -len(suffix)]
            return word

        return strip


_stem = _stemmer()
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _jaccard(a: AbstractSet[Hashable], b: AbstractSet[Hashable]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def _lcs(a: list[str], b: list[str]) -> int:
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def _inversions(a: list[str], b: list[str]) -> tuple[int, int]:
    shared = [t for t in a if a.count(t) == 1 and b.count(t) == 1]
    pos = [b.index(t) for t in shared]
    pairs = len(pos) * (len(pos) - 1) // 2
    flips = sum(pos[i] > pos[j] for i in range(len(pos)) for j in range(i + 1, len(pos)))
    return flips, pairs


def _grams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def _chars(text: str) -> set[str]:
    t = f"  {text}  "
    return {t[i : i + 3] for i in range(len(t) - 2)}


FEATURES = (
    "cosine", "len_min", "len_max", "len_rel_diff", "jaccard", "jaccard_content", "only_q", "only_c",
    "only_frac", "bigram_jaccard", "trigram_jaccard", "lcs_min", "lcs_max", "discordant_frac",
    "discordant", "swap", "char_ratio", "char3_jaccard", "numbers_present", "numbers_differ",
    "numbers_one_side", "negation_differs", "negation_diff", "antonym", "wh_first_differs",
    "wh_set_differs", "entities_one_side", "entities_frac", "entity_order_flip",
)  # fmt: skip


def features(query: str, cached: str, cosine: float) -> list[float]:
    """The feature vector of a pair (in the order of ``FEATURES``)."""
    ql, cl = guards.normalise(query), guards.normalise(cached)
    qt, ct = _TOKEN.findall(ql), _TOKEN.findall(cl)
    qs, cs = [_stem(t) for t in qt], [_stem(t) for t in ct]
    qc = [s for t, s in zip(qt, qs, strict=True) if t not in _STOP and t not in guards.NEGATIONS]
    cc = [s for t, s in zip(ct, cs, strict=True) if t not in _STOP and t not in guards.NEGATIONS]
    qcs, ccs = set(qc), set(cc)
    n_min, n_max = min(len(qt), len(ct)), max(len(qt), len(ct))
    only_q, only_c = len(qcs - ccs), len(ccs - qcs)
    lcs = _lcs(qc, cc)
    flips, pairs = _inversions(qc, cc)
    content_j = _jaccard(qcs, ccs)
    qn, cn = guards.numbers(query), guards.numbers(cached)
    qneg, cneg = sum(t in guards.NEGATIONS for t in qt), sum(t in guards.NEGATIONS for t in ct)
    qset, cset = set(qt), set(ct)
    antonym = any(
        (x in qset and y in cset and y not in qset) or (y in qset and x in cset and x not in qset)
        for x, y in guards.ANTONYMS
    )
    q_wh = [t for t in qt if t in _WH]
    c_wh = [t for t in ct if t in _WH]
    qe, ce = guards.entities(query), guards.entities(cached)
    one_side = {e for e in set(qe) ^ set(ce) if not (e in qset and e in cset)}
    return [
        cosine,
        float(n_min),
        float(n_max),
        (n_max - n_min) / n_max if n_max else 0.0,
        _jaccard(set(qs), set(cs)),
        content_j,
        float(only_q),
        float(only_c),
        (only_q + only_c) / len(qcs | ccs) if qcs | ccs else 0.0,
        _jaccard(_grams(qs, 2), _grams(cs, 2)),
        _jaccard(_grams(qs, 3), _grams(cs, 3)),
        lcs / min(len(qc), len(cc)) if qc and cc else 0.0,
        lcs / max(len(qc), len(cc)) if qc or cc else 0.0,
        flips / pairs if pairs else 0.0,
        float(flips),
        float(content_j >= 0.8 and flips > 0),
        difflib.SequenceMatcher(None, ql, cl).ratio(),
        _jaccard(_chars(ql), _chars(cl)),
        float(bool(qn or cn)),
        float(qn != cn),
        float(bool(qn) != bool(cn)),
        float(qneg % 2 != cneg % 2),
        float(abs(qneg - cneg)),
        float(antonym),
        float((q_wh[:1] or [""]) != (c_wh[:1] or [""])),
        float(set(q_wh) != set(c_wh)),
        float(len(one_side)),
        len(one_side) / len(set(qe) | set(ce)) if set(qe) | set(ce) else 0.0,
        float(guards.order_flips(qe, ce)),
    ]
