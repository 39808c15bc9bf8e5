"""What differs between two prompts, and what that means for serving one's answer for the other.

Similarity says how close two prompts are; the difference says whether they ask the same thing:

- only case, spacing, punctuation or fillers and openers ("please", "quick question", "how
  do I" / "how can I" / "steps to"): **same**;
- only known synonyms ("turn on" / "switch on" / "enable") or articles: **same**;
- an opposite anywhere, synonyms of either side included and phrasal particles apart from
  their verb ("switch dark mode on" / "turn dark mode off"), a different number, unit,
  entity or identifier, a reversed direction, a negation: **never** served;
- anything else (other content words): **open**, for the learned verifier and the similarity.

The word lists are data files (:mod:`memollm.semantic.lexicon`). Pure Python: the core
install judges pairs too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from .lexicon import Lexicon, Phrase, lemma, lexicon
from .normal import VERBATIM, has_cjk, normal_form, strip_fillers, tokens
from .verify import explain

__all__ = ["Difference", "compare", "opposites", "same_meaning"]

Kind = Literal["same", "never", "open"]
_PHRASAL = frozenset({"turn", "switch", "put", "set", "toggle", "flip", "power", "shut"})
_PARTICLES = frozenset({"on", "off", "up", "down", "in", "out"})
_SWITCHES = frozenset({"on", "off"})
# Question words that ask for one kind of answer: a reason, a place, a time, a person.
_KINDS = frozenset({"why", "where", "when", "who", "whom", "whose"})
_OPENING = _KINDS | frozenset({
    "what", "which", "how", "is", "are", "was", "were", "do", "does", "did", "can", "could", "should",
    "would", "will", "has", "have", "may", "might", "must", "shall",
})  # fmt: skip
# Left out when comparing content: they do not change what a short question asks.
_LIGHT = frozenset({"a", "an", "the", "some", "any", "my", "your", "our", "really", "actually", "just"})
_GAP = 4  # words a phrasal verb's particle may stand after it ("turn the dark mode on")
_ZH_NUMERALS = "零一二两三四五六七八九十百千万亿"


@dataclass(frozen=True, slots=True)
class Difference:
    """The verdict on two prompts' difference, and why."""

    kind: Kind
    reason: str


def _switches(found: list[str]) -> set[str]:
    """The "on"/"off" of a switch: a phrasal verb's particle, or the last word ("is dark mode on")."""
    out = {found[-1]} & _SWITCHES if found else set()
    for i, token in enumerate(found):
        if token in _PHRASAL:
            at = _particle(found, i)
            if at is not None and found[at] in _SWITCHES:
                out.add(found[at])
    return out


def _particle(found: list[str], verb: int) -> int | None:
    """Where the first particle after the verb at ``verb`` stands, a few words on at most."""
    for at in range(verb + 1, min(len(found), verb + 2 + _GAP)):
        if found[at] in _PARTICLES:
            return at
    return None


def _sides(found: tuple[str, ...]) -> dict[int, tuple[int, Phrase]]:
    """The opposite pairs a prompt touches: pair -> (1 left, 2 right, 3 both; a phrase found)."""
    return _sides_cached(found)


@lru_cache(maxsize=4096)
def _sides_cached(found: tuple[str, ...]) -> dict[int, tuple[int, Phrase]]:
    words = lexicon()
    tokens_ = list(found)
    switches = _switches(tokens_)
    out: dict[int, tuple[int, Phrase]] = {}
    for i, token in enumerate(tokens_):
        for number, side, phrase in words.opposite_index.get(_lemma(token), ()):
            if len(phrase) == 1:
                if phrase[0] in _SWITCHES and phrase[0] not in switches:
                    continue  # "on Windows" is a preposition, not a switch
            elif _phrase_end(tokens_, i, phrase) is None:
                continue
            seen, _ = out.get(number, (0, phrase))
            out[number] = (seen | (1 << side), phrase)
    return out


def opposites(query: list[str], cached: list[str]) -> str | None:
    """An opposite pair split between the two prompts (each one side only), as "a/b"; None if none."""
    q, c = _sides(tuple(query)), _sides(tuple(cached))
    for number, (side, phrase) in q.items():
        other = c.get(number)
        if side != 3 and other is not None and other[0] == 3 - side:
            return f"{' '.join(phrase)}/{' '.join(other[1])}"
    return None


_OPERATORS = frozenset("<>=+*^\u00d7\u00f7\u2264\u2265\u2260")  # and times, divide, <=, >=, !=
_NEGATING = ("un", "dis", "de", "non", "in", "im", "il", "ir")


def _prefixed(query: list[str], cached: list[str]) -> str | None:
    """A word in one and its negated form in the other only: block/unblock, connect/disconnect."""
    q, c = set(query) - set(cached), set(cached) - set(query)
    for one, other in ((q, c), (c, q)):
        for word in one:
            for prefix in _NEGATING:
                if len(word) >= 4 and word.isalpha() and prefix + word in other:
                    return f"{word}/{prefix}{word}"
    return None


def _reversed(query: list[str], cached: list[str]) -> str | None:
    """One asks "A to B", the other "B to A" (converting, translating, travelling)."""
    ends = {(query[i - 1], query[i + 1]) for i in range(1, len(query) - 1) if query[i] in ("to", "into")}
    for i in range(1, len(cached) - 1):
        a, b = cached[i - 1], cached[i + 1]
        if cached[i] in ("to", "into") and a != b and (b, a) in ends and (a, b) not in ends:
            return f"{a} to {b} / {b} to {a}"
    return None


def _asks(query: list[str], cached: list[str]) -> str | None:
    """Whether the questions open asking for different kinds of answer: a reason, place, time or person."""
    q, c = (strip_fillers(query)[:1] or [""])[0], (strip_fillers(cached)[:1] or [""])[0]
    if q != c and (q in _KINDS or c in _KINDS) and q in _OPENING and c in _OPENING:
        return f"one asks {q!r}, the other {c!r}"
    return None


def _canonical(found: list[str], words: Lexicon) -> list[str]:
    """Synonyms as their group's name; articles, possessives and light words left out; plurals singular."""
    out = [_singular(_lemma(t)) for t in found if t not in _LIGHT]
    i = 0
    while i < len(out):
        for phrase, group in words.synonym_index.get(out[i], ()):
            end = _phrase_end(out, i, phrase)
            if end is not None:
                out[i : end + 1] = [f"<{group}>", *(t for t in out[i + 1 : end + 1] if t not in phrase)]
                break
        i += 1
    return out


@lru_cache(maxsize=65536)
def _lemma(word: str) -> str:
    return lemma(word, lexicon().vocabulary)


def _singular(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")) and word.isalpha():
        return word[:-1]
    return word


def _phrase_end(found: list[str], start: int, phrase: Phrase) -> int | None:
    """Where ``phrase`` starting at ``start`` ends: its words in order, a particle a few words on.

    The particle is the first one after its verb: "turn off notifications on Windows" is "turn
    off", never "turn ... on".
    """
    at = start
    for part in phrase[1:]:
        if part in _PARTICLES:
            found_at = _particle(found, at)
            if found_at is None or found[found_at] != part:
                return None
            at = found_at
        elif at + 1 < len(found) and found[at + 1] == part:
            at += 1
        else:
            return None
    return at


def _zh_same(query: str, cached: str) -> bool:
    """Chinese: the same normal form once synonyms (怎么/如何, 什么/啥, ...) are one."""
    q, c = normal_form(query), normal_form(cached)
    if q is None or c is None:
        return False
    q, c = q.replace(" ", ""), c.replace(" ", "")
    for member, group in lexicon().zh_synonyms:
        q, c = q.replace(member, group), c.replace(member, group)
    return q == c


def same_meaning(query: str, cached: str) -> bool:
    """Whether two prompts differ only in synonyms and articles (after their normal forms)."""
    if has_cjk(query) or has_cjk(cached):
        return _zh_same(query, cached)
    words = lexicon()
    q, c = strip_fillers(tokens(query), words), strip_fillers(tokens(cached), words)
    return _canonical(q, words) == _canonical(c, words)


def _zh(query: str, cached: str) -> str | None:
    """Chinese look-alikes: negation, numbers, opposites."""
    words = lexicon()
    negations = words.zh_negations
    if sum(map(query.count, negations)) % 2 != sum(map(cached.count, negations)) % 2:
        return "negation differs (不/没/...)"
    if sorted(c for c in query if c in _ZH_NUMERALS) != sorted(c for c in cached if c in _ZH_NUMERALS):
        return "numbers differ"
    for left, right in words.zh_opposites:
        q = (any(w in query for w in left), any(w in query for w in right))
        c = (any(w in cached for w in left), any(w in cached for w in right))
        if q != c and any(q) and any(c):
            return f"opposites {min(left)}/{min(right)}"
    return None


def _verbatim(query: list[str], cached: list[str]) -> str | None:
    """Code, quoted text, identifiers and operators (``<``, ``+``, ``=``) count as written."""
    kept = [[t for t in side if t[:1] == VERBATIM] for side in (query, cached)]
    if sorted(kept[0]) != sorted(kept[1]):
        return "code, quoted text or identifiers differ"
    signs = [[t for t in side if t in _OPERATORS] for side in (query, cached)]
    if sorted(signs[0]) != sorted(signs[1]):
        return "symbols differ"
    return None


def _veto(query: list[str], cached: list[str]) -> str | None:
    """What the word lists and the order of words refuse (English): opposites, direction, kind."""
    found = _verbatim(query, cached)
    if found is not None:
        return found
    found = opposites(query, cached) or _prefixed(query, cached)
    if found is not None:
        return f"opposites {found}"
    found = _reversed(*([t for t in strip_fillers(side) if t not in _LIGHT] for side in (query, cached)))
    if found is not None:
        return f"reversed: {found}"
    return _asks(query, cached)


def compare(query: str, cached: str) -> Difference:
    """Whether ``cached``'s answer may be served for ``query``, judged from what differs."""
    q_normal = normal_form(query)
    if q_normal is not None and q_normal == normal_form(cached):
        return Difference("same", "only case, spacing, punctuation or filler words differ")
    cjk = bool(has_cjk(query) or has_cjk(cached))
    veto = _zh(query, cached) if cjk else None
    if veto is None and not cjk:
        veto = explain(query, cached)
    if veto is None:
        q, c = tokens(query), tokens(cached)
        veto = _veto(q, c)
    if veto is not None:
        return Difference("never", veto)
    if same_meaning(query, cached):
        return Difference("same", "only synonyms or articles differ")
    return Difference("open", "other words differ")
