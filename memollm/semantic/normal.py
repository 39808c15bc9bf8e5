"""A prompt as tokens, and its normal form: what is left once case, spacing, punctuation and fillers go.

Two prompts with the same normal form ask the same question ("What is the capital of
Germany?" and "what is the capital of germany please"), so a semantic policy keys them alike
(:mod:`memollm.keys`) and the model is asked once, with no embedding model needed.

Tokens are words (case-folded, contractions expanded), numbers as written (``-5``, ``3.5``,
``7%``, ``1,000``), CJK characters one by one, and other symbols one by one (``+``, ``<``,
``(``); sentence punctuation (``? ! . , ; :``) is dropped. What case and spelling matter in is
kept verbatim: code spans in backticks, quoted strings, and identifiers (``os.path``,
``snake_case``, ``getElementById``); such a token starts with :data:`VERBATIM`. Fillers and
openers come from the word lists (:mod:`memollm.semantic.lexicon`). Pure Python.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from .lexicon import Lexicon, lexicon

__all__ = ["MAX_CHARS", "VERBATIM", "cjk_share", "has_cjk", "normal_form", "strip_fillers", "tokens"]

VERBATIM = "\x01"  # marks a token kept as written; no case-folded word starts with it
MAX_CHARS = 2000  # longer prompts are never normalised (nor semantic)
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN = re.compile(
    r"`(?P<code>[^`\n]{1,200})`"
    r'|"(?P<double>[^"\n]{1,200})"'
    r"|(?<!\w)'(?P<single>[^'\n]{1,200})'(?!\w)"
    rf"|(?P<cjk>[{_CJK}])"
    rf"|(?P<number>(?:(?<![\w.])[-+])?\d+(?:[.,:/]\d+)*(?:%|[^\W\d_{_CJK}][^\W{_CJK}]*)?)"
    rf"|(?P<word>[^\W\d_{_CJK}](?:(?:[^\W{_CJK}]|['+#/.-])*(?:[^\W{_CJK}]|[+#]))?)"
    r"|(?P<symbol>\S)"
)
_DROPPED = frozenset("?!.,;:…¿¡'\"`")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00b4": "'"})
_CAMEL = re.compile(r"[a-z][A-Z]")
_IDENTIFIER = re.compile(r"_|\w\.\w|\w/\w\w|\(")
_IS = ("what", "that", "it", "he", "she", "there", "here", "who", "where", "how", "when", "why")
_EXPANDED = {f"{w}'s": (w, "is") for w in _IS} | {
    "let's": ("let", "us"), "can't": ("can", "not"), "won't": ("will", "not"), "cannot": ("can", "not"),
    "i'm": ("i", "am"), "shan't": ("shall", "not"),
}  # fmt: skip
_SUFFIXES = (("n't", ("not",)), ("'re", ("are",)), ("'ve", ("have",)), ("'ll", ("will",)), ("'d", ("would",)))


def _word(word: str) -> list[str]:
    """A word token: verbatim if an identifier, else case-folded with its contraction expanded."""
    if word.isalpha() and (word.islower() or word[1:].islower() or word.isupper()):
        return [word.casefold()]  # the common case: a plain word, no identifier, no apostrophe
    if _IDENTIFIER.search(word) or (word[0].islower() and _CAMEL.search(word)):
        return [VERBATIM + word]
    folded = word.casefold()
    expanded = _EXPANDED.get(folded)
    if expanded is not None:
        return list(expanded)
    for suffix, rest in _SUFFIXES:
        if folded.endswith(suffix) and len(folded) > len(suffix):
            return [folded[: -len(suffix)], *rest]
    return [folded]


def tokens(text: str) -> list[str]:
    """``text`` as tokens (see the module docstring)."""
    return list(_tokens(text))


@lru_cache(maxsize=4096)
def _tokens(text: str) -> tuple[str, ...]:
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    out: list[str] = []
    for found in _TOKEN.finditer(text):
        kind = found.lastgroup
        value = found.group(kind or 0)
        if kind in ("code", "double", "single"):
            out.append(VERBATIM + value)
        elif kind == "word":
            out += _word(value)
        elif kind == "symbol":
            if value not in _DROPPED:
                out.append(value)
        else:
            out.append(value.casefold())
    return tuple(out)


def strip_fillers(found: list[str], words: Lexicon | None = None) -> list[str]:
    """``found`` without fillers, with a "how to" opener in place of its variants."""
    words = words or lexicon()
    found = [t for t in found if t not in words.fillers_any]
    changed = True
    while changed and found:
        changed = False
        for phrase in words.starting.get(found[0], ()):
            if len(found) > len(phrase) and tuple(found[: len(phrase)]) == phrase:
                found, changed = found[len(phrase) :], True
                break
        for phrase in words.ending.get(found[-1], ()):
            if len(found) > len(phrase) and tuple(found[-len(phrase) :]) == phrase:
                found, changed = found[: -len(phrase)], True
                break
    if found:
        for phrase in words.opening.get(found[0], ()):
            if tuple(found[: len(phrase)]) == phrase:
                return ["how", "to", *found[len(phrase) :]]
    return found


@lru_cache(maxsize=4096)
def normal_form(text: str) -> str | None:
    """The normal form of a prompt; None when it is too long or nothing but fillers."""
    if len(text) > MAX_CHARS:
        return None
    found = strip_fillers(tokens(text))
    return " ".join(found) if found else None


_HAS_CJK = re.compile(f"[{_CJK}]")


def has_cjk(text: str) -> bool:
    """Whether ``text`` holds a Chinese, Japanese or Korean character."""
    return _HAS_CJK.search(text) is not None


def cjk_share(text: str) -> float:
    """The share of a text's non-space characters that are Chinese, Japanese or Korean."""
    letters = [c for c in text if not c.isspace()]
    return sum(bool(_HAS_CJK.match(c)) for c in letters) / len(letters) if letters else 0.0
