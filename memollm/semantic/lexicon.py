"""The word lists the semantic tier decides with: fillers, openers, synonyms, opposites (data files).

The lists live in ``words/`` beside this module, one phrase or pair per line, each file naming
its source; this module reads them once. Phrases are tuples of tokens as
:func:`memollm.semantic.normal.tokens` makes them. Pure Python: the core install uses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = ["Lexicon", "lemma", "lexicon"]

_WORDS = Path(__file__).with_name("words")
Phrase = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Lexicon:
    """The word lists, ready to match token sequences against (longest phrases first)."""

    fillers_start: tuple[Phrase, ...]
    fillers_end: tuple[Phrase, ...]
    fillers_any: frozenset[str]
    openers: tuple[Phrase, ...]
    synonyms: tuple[tuple[Phrase, str], ...]  # a phrase (its words may stand apart) and its group
    opposites: tuple[tuple[frozenset[Phrase], frozenset[Phrase]], ...]
    zh_negations: frozenset[str]
    zh_opposites: tuple[tuple[frozenset[str], frozenset[str]], ...]
    zh_synonyms: tuple[tuple[str, str], ...]  # a member and its group's first member, longest first
    vocabulary: frozenset[str]  # every word of the synonyms and opposites, for lemma()
    synonym_index: dict[str, tuple[tuple[Phrase, str], ...]]  # the synonyms by their first word
    # Fillers by their first word, by their last, and openers by their first (longest first).
    starting: dict[str, tuple[Phrase, ...]]
    ending: dict[str, tuple[Phrase, ...]]
    opening: dict[str, tuple[Phrase, ...]]
    # A phrase's first word -> (opposite pair, side 0 or 1, phrase): what a word may start.
    opposite_index: dict[str, tuple[tuple[int, int, Phrase], ...]]


def _lines(name: str) -> list[str]:
    text = (_WORDS / name).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _phrase(text: str) -> Phrase:
    """A phrase as tokens: words, and CJK characters one by one (as the tokenizer makes them)."""
    return tuple(w for part in text.split() for w in (list(part) if part[:1] > "\u3000" else [part]))


def _sides(line: str) -> tuple[list[str], list[str]]:
    left, _, right = line.partition(" <> ")
    if not right:
        raise ValueError(f"an opposite pair needs ' <> ': {line!r}")
    return [m.strip() for m in left.split("|")], [m.strip() for m in right.split("|")]


def _longest_first(phrases: list[Phrase]) -> tuple[Phrase, ...]:
    return tuple(sorted(set(phrases), key=lambda p: (-len(p), p)))


@cache
def lexicon() -> Lexicon:
    """The shipped word lists (read once)."""
    where: dict[str, list[Phrase]] = {"start": [], "end": [], "any": []}
    for line in _lines("fillers.txt"):
        position, _, text = line.partition("\t")
        where[position].append(_phrase(text))
    synonyms: list[tuple[Phrase, str]] = []
    for line in _lines("synonyms.txt"):
        group, _, members = line.partition(":")
        synonyms += [(_phrase(m.strip()), group.strip()) for m in members.split("|")]
    opposites = []
    for name in ("opposites.txt", "wordnet_antonyms.txt"):
        for line in _lines(name):
            left, right = _sides(line)
            opposites.append((frozenset(map(_phrase, left)), frozenset(map(_phrase, right))))
    negations: frozenset[str] = frozenset()
    zh_opposites: list[tuple[frozenset[str], frozenset[str]]] = []
    zh_synonyms: list[tuple[str, str]] = []
    for line in _lines("zh.txt"):
        if line.startswith("negation:"):
            negations = frozenset(m.strip() for m in line.removeprefix("negation:").split("|"))
        elif line.startswith("synonym:"):
            same = [m.strip() for m in line.removeprefix("synonym:").split("|")]
            zh_synonyms += [(m, same[0]) for m in same]
        else:
            left, right = _sides(line)
            zh_opposites.append((frozenset(left), frozenset(right)))
    index: dict[str, list[tuple[int, int, Phrase]]] = {}
    for number, pair in enumerate(opposites):
        for side, phrases in enumerate(pair):
            for member in phrases:
                index.setdefault(member[0], []).append((number, side, member))
    vocabulary = {w for phrase, _ in synonyms for w in phrase}
    vocabulary |= {w for pair in opposites for side in pair for phrase in side for w in phrase}
    return Lexicon(
        fillers_start=_longest_first(where["start"]),
        fillers_end=_longest_first(where["end"]),
        fillers_any=frozenset(p[0] for p in where["any"]),
        openers=_longest_first([_phrase(line) for line in _lines("openers.txt")]),
        synonyms=tuple(sorted(synonyms, key=lambda s: -len(s[0]))),
        opposites=tuple(opposites),
        zh_negations=negations,
        zh_opposites=tuple(zh_opposites),
        zh_synonyms=tuple(sorted(zh_synonyms, key=lambda s: -len(s[0]))),
        vocabulary=frozenset(vocabulary),
        opposite_index={word: tuple(entries) for word, entries in index.items()},
        synonym_index=_synonyms_by_first(synonyms),
        starting=_by(where["start"], 0),
        ending=_by(where["end"], -1),
        opening=_by([_phrase(line) for line in _lines("openers.txt")], 0),
    )


def _synonyms_by_first(synonyms: list[tuple[Phrase, str]]) -> dict[str, tuple[tuple[Phrase, str], ...]]:
    out: dict[str, list[tuple[Phrase, str]]] = {}
    for phrase, group in sorted(synonyms, key=lambda s: -len(s[0])):
        out.setdefault(phrase[0], []).append((phrase, group))
    return {word: tuple(found) for word, found in out.items()}


def _by(phrases: list[Phrase], at: int) -> dict[str, tuple[Phrase, ...]]:
    """Phrases by their word at ``at`` (longest first): only those can match a given word there."""
    out: dict[str, list[Phrase]] = {}
    for phrase in _longest_first(phrases):
        out.setdefault(phrase[at], []).append(phrase)
    return {word: tuple(found) for word, found in out.items()}


_SUFFIXES = (("ies", "y"), ("ied", "y"), ("ing", ""), ("ing", "e"), ("ed", ""), ("ed", "e"), ("es", ""),
             ("s", ""), ("er", ""), ("er", "e"), ("est", ""), ("est", "e"))  # fmt: skip


def lemma(word: str, vocabulary: frozenset[str]) -> str:
    """``word`` as its entry in ``vocabulary`` when it is an inflection of one ("disabled" -> "disable").

    Regular English endings only, a doubled final consonant included ("stopped", "bigger");
    a word that is no inflection of a listed one comes back as it is.
    """
    if word in vocabulary:
        return word
    for suffix, ending in _SUFFIXES:
        if word.endswith(suffix) and len(word) > len(suffix) + 1:
            stem = word[: -len(suffix)]
            if stem + ending in vocabulary:
                return stem + ending
            if not ending and len(stem) > 2 and stem[-1] == stem[-2] and stem[:-1] in vocabulary:
                return stem[:-1]
    return word
