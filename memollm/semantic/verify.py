"""Cheap checks a semantic candidate must pass before its answer is served.

Cosine similarity alone cannot tell "enable 2FA" from "disable 2FA", "1+1" from
"21+1" or "Boston to Denver" from "Denver to Boston": those pairs sit at cosine near 1.
These vetoes turn such a candidate into a miss whatever its similarity:

- negation parity differs (not, no, never, ..., with n't expanded);
- the numbers differ (digits, leading zeros stripped, and number words);
- a pair of antonyms splits the two texts (enable/disable, before/after, ...);
- a named entity or identifier (a capitalised word inside a sentence, ``os.path``,
  ``python3``, ``snake_case``, a quoted string) is in one text only;
- shared entities, or the ends of "from X to Y", come in the opposite order;
- either text is mostly CJK (the default English model cannot compare them).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "ANTONYMS", "NEGATIONS", "default_verifier", "entities", "explain", "normalise", "numbers", "order_flips",
]  # fmt: skip

NEGATIONS = frozenset(
    {"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "cannot", "without"}
)
_NOT_ENTITIES = frozenset({"i", "i'm", "i've", "i'd", "i'll", "ok", "okay"})
_CONTRACTIONS = (("can't", "can not"), ("won't", "will not"), ("n't", " not"), ("cannot", "can not"))
_SMALL_NUMBERS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
)  # fmt: skip
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(_SMALL_NUMBERS)} | {
    "thirty": "30", "forty": "40", "fifty": "50", "hundred": "100", "thousand": "1000",
    "million": "1000000", "first": "1st", "second": "2nd", "third": "3rd", "half": "0.5",
    "double": "x2", "twice": "x2",
}  # fmt: skip
ANTONYMS = (
    ("enable", "disable"), ("enabled", "disabled"), ("before", "after"), ("upload", "download"),
    ("ascending", "descending"), ("increase", "decrease"), ("add", "remove"), ("encrypt", "decrypt"),
    ("start", "stop"), ("open", "close"), ("max", "min"), ("maximum", "minimum"), ("buy", "sell"),
    ("import", "export"), ("push", "pull"), ("true", "false"), ("allow", "deny"), ("install", "uninstall"),
    ("include", "exclude"), ("lock", "unlock"), ("input", "output"), ("inside", "outside"),
    ("above", "below"), ("more", "less"), ("positive", "negative"), ("compress", "decompress"),
    ("serialize", "deserialize"), ("connect", "disconnect"), ("show", "hide"), ("first", "last"),
    ("left", "right"), ("login", "logout"), ("encode", "decode"), ("higher", "lower"), ("larger", "smaller"),
    ("faster", "slower"), ("best", "worst"), ("pros", "cons"), ("advantages", "disadvantages"),
    ("safe", "unsafe"), ("legal", "illegal"), ("possible", "impossible"), ("sync", "async"),
    ("synchronous", "asynchronous"), ("client", "server"), ("send", "receive"), ("read", "write"),
)  # fmt: skip
_WORD = re.compile(r"[A-Za-z][\w'.+#-]*[\w+#]|[A-Za-z]|\d[\d.,:]*")
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_QUOTED = re.compile(r"[\"'`]([^\"'`]{1,60})[\"'`]")
_FROM_TO = re.compile(r"\bfrom\s+([\w.-]+)\s+(?:to|into)\s+([\w.-]+)", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?]\s+")


def normalise(text: str) -> str:
    """NFKC, typographic apostrophes straightened, lower case, contractions expanded (n't -> not)."""
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'")
    lowered = text.lower()
    for short, long in _CONTRACTIONS:
        lowered = lowered.replace(short, long)
    return lowered


def _words(text: str) -> list[str]:
    return [w.strip(".,") for w in _WORD.findall(normalise(text))]


def numbers(text: str) -> set[str]:
    """The numbers in ``text``: digits (leading zeros dropped) and number words, as digits."""
    found = {n.replace(",", "").lstrip("0") or "0" for n in _NUMBER.findall(text)}
    found |= {_NUMBER_WORDS[w] for w in _words(text) if w in _NUMBER_WORDS}
    return found


def _negations(words: list[str]) -> int:
    return sum(w in NEGATIONS for w in words) % 2


def entities(text: str) -> list[str]:
    """Capitalised words inside a sentence, identifiers and quoted strings, in order, case-folded."""
    out: list[str] = []
    for sentence in _SENTENCE_END.split(unicodedata.normalize("NFKC", text)):
        tokens = [t.strip(".,") for t in _WORD.findall(sentence)]
        for i, token in enumerate(tokens):
            identifier = any(c.isdigit() for c in token) and any(c.isalpha() for c in token)
            identifier = identifier or "_" in token or ("." in token and not token.endswith("."))
            camel = any(c.isupper() for c in token[1:]) and any(c.islower() for c in token)
            capital = i > 0 and token[:1].isupper() and token.lower() not in NEGATIONS
            if (identifier or camel or capital) and token.lower() not in _NOT_ENTITIES:
                out.append(token.lower())
    out += [q.lower() for q in _QUOTED.findall(text)]
    return out


def _cjk_share(text: str) -> float:
    letters = [c for c in text if not c.isspace()]
    if not letters:
        return 0.0
    cjk = sum(
        "\u3040" <= c <= "\u30ff" or "\u3400" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af" for c in letters
    )
    return cjk / len(letters)


def order_flips(a: list[str], b: list[str]) -> bool:
    """Whether tokens found once in each list come in a different order."""
    shared = [t for t in dict.fromkeys(a) if a.count(t) == 1 and b.count(t) == 1]
    pos = [b.index(t) for t in shared]
    return any(pos[i] > pos[j] for i in range(len(pos)) for j in range(i + 1, len(pos)))


def explain(query: str, cached: str) -> str | None:  # noqa: PLR0911 - one return per veto
    """Why ``cached``'s answer must not be served for ``query`` (None if no veto applies)."""
    if _cjk_share(query) > 0.3 or _cjk_share(cached) > 0.3:
        return "mostly CJK text: the default English model cannot compare it"
    qw, cw = _words(query), _words(cached)
    if _negations(qw) != _negations(cw):
        return "negation differs"
    if numbers(query) != numbers(cached):
        return "numbers differ"
    qs, cs = set(qw), set(cw)
    for x, y in ANTONYMS:
        if (x in qs and y in cs and y not in qs) or (y in qs and x in cs and x not in qs):
            return f"antonyms {x}/{y}"
    qe, ce = entities(query), entities(cached)
    only = {e for e in set(qe) ^ set(ce) if not (e in qs and e in cs)}
    if only:
        return f"entity in one text only: {sorted(only)[0]!r}"
    if order_flips(qe, ce):
        return "entities in the opposite order"
    q_route, c_route = _FROM_TO.search(normalise(query)), _FROM_TO.search(normalise(cached))
    if q_route and c_route and q_route.groups() == c_route.groups()[::-1]:
        return "from/to reversed"
    return None


def default_verifier(query: str, cached: str, similarity: float) -> bool:
    """Whether the answer cached for ``cached`` may be served for ``query``."""
    return explain(query, cached) is None
