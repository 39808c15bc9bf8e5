"""Cheap checks a semantic candidate must pass before its answer is served.

Cosine similarity alone cannot tell "enable 2FA" from "disable 2FA", "1+1" from
"21+1" or "Boston to Denver" from "Denver to Boston": those pairs sit at cosine near 1.
These vetoes turn such a candidate into a miss whatever its similarity:

- negation parity differs (not, no, never, ..., with n't expanded);
- the numbers differ (digits, leading zeros stripped, and number words);
- a pair of antonyms splits the two texts (enable/disable, before/after, turn on/turn off, ...);
- the units differ, or come in the opposite order (feet/meters, Celsius to Fahrenheit);
- a named entity or identifier (a capitalised word inside a sentence, ``os.path``,
  ``python3``, ``snake_case``, a quoted string) is in one text only;
- shared entities, or the ends of "from X to Y", come in the opposite order;
- either text is mostly CJK (the default English model cannot compare them).
"""

from __future__ import annotations

import re
import unicodedata

from .normal import cjk_share

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
# Phrasal opposites: "on"/"off" alone are too common to veto on, "turn on"/"turn off" are not.
_PHRASAL = (("turn on", "turn off"), ("switch on", "switch off"), ("power on", "power off"),
            ("log in", "log out"), ("sign in", "sign out"), ("check in", "check out"),
            ("speed up", "slow down"), ("zoom in", "zoom out"))  # fmt: skip
# Units by what they measure, each spelling mapped to one name: a look-alike that asks in
# another unit ("meters" for "feet") asks something else.
_UNITS = {
    spelling: name
    for name, spellings in {
        "meter": ("meter", "meters", "metre", "metres"), "kilometer": ("kilometer", "kilometers",
        "kilometre", "kilometres", "km"), "centimeter": ("centimeter", "centimeters", "cm"),
        "millimeter": ("millimeter", "millimeters", "mm"), "mile": ("mile", "miles"),
        "foot": ("foot", "feet", "ft"), "inch": ("inch", "inches"), "yard": ("yard", "yards", "yd"),
        "kilogram": ("kilogram", "kilograms", "kg", "kilo", "kilos"), "gram": ("gram", "grams"),
        "pound": ("pound", "pounds", "lb", "lbs"), "ounce": ("ounce", "ounces", "oz"),
        "liter": ("liter", "liters", "litre", "litres"), "gallon": ("gallon", "gallons", "gal"),
        "milliliter": ("milliliter", "milliliters", "ml"), "cup": ("cup", "cups"),
        "celsius": ("celsius", "centigrade"), "fahrenheit": ("fahrenheit",), "kelvin": ("kelvin",),
        "second": ("second", "seconds", "sec", "secs"), "minute": ("minute", "minutes", "mins"),
        "hour": ("hour", "hours", "hr", "hrs"), "day": ("day", "days"), "week": ("week", "weeks"),
        "month": ("month", "months"), "year": ("year", "years"), "byte": ("byte", "bytes"),
        "kilobyte": ("kilobyte", "kilobytes", "kb"), "megabyte": ("megabyte", "megabytes", "mb"),
        "gigabyte": ("gigabyte", "gigabytes", "gb"), "terabyte": ("terabyte", "terabytes", "tb"),
        "dollar": ("dollar", "dollars", "usd"), "euro": ("euro", "euros", "eur"), "yen": ("yen", "jpy"),
        "mph": ("mph",), "kph": ("kph", "km/h"),
    }.items()
    for spelling in spellings
}  # fmt: skip
_WORD = re.compile(r"[A-Za-z][\w'.+#-]*[\w+#]|[A-Za-z]|\d[\d.,:]*")
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
# A quote opens where no letter precedes it and closes where none follows: an apostrophe
# inside a word ("What's France's") is not a quote.
_QUOTED = re.compile(r"(?<![A-Za-z])[\"'`]([^\"'`]{1,60})[\"'`](?![A-Za-z])")
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
                out.append(_entity(token))
    out += [q.lower() for q in _QUOTED.findall(text)]
    return out


def _entity(token: str) -> str:
    """An entity as compared: case-folded, without a possessive or a plural's s.

    "France's" is France and "Sundays" Sunday: the same entity, not a different one.
    """
    word = token.lower().replace("\u2019", "'")
    word = word.removesuffix("'s").removesuffix("'")
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")) and word.isalpha():
        word = word[:-1]
    return word


def order_flips(a: list[str], b: list[str]) -> bool:
    """Whether tokens found once in each list come in a different order."""
    shared = [t for t in dict.fromkeys(a) if a.count(t) == 1 and b.count(t) == 1]
    pos = [b.index(t) for t in shared]
    return any(pos[i] > pos[j] for i in range(len(pos)) for j in range(i + 1, len(pos)))


def _opposites_or_units(qw: list[str], cw: list[str], ql: str, cl: str) -> str | None:
    for x, y in _PHRASAL:
        if (x in ql and y in cl and y not in ql) or (y in ql and x in cl and x not in ql):
            return f"opposites {x}/{y}"
    qu, cu = [_UNITS[w] for w in qw if w in _UNITS], [_UNITS[w] for w in cw if w in _UNITS]
    if set(qu) != set(cu):
        return f"units differ: {sorted(set(qu) ^ set(cu))[0]}"
    if qu != cu and len(set(qu)) > 1 and order_flips(qu, cu):
        return "units in the opposite order"
    return None


def explain(query: str, cached: str) -> str | None:  # noqa: PLR0911 - one return per veto
    """Why ``cached``'s answer must not be served for ``query`` (None if no veto applies)."""
    if cjk_share(query) > 0.3 or cjk_share(cached) > 0.3:
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
    ql, cl = normalise(query), normalise(cached)
    found = _opposites_or_units(qw, cw, ql, cl)
    if found is not None:
        return found
    qe, ce = entities(query), entities(cached)
    qk, ck = {_entity(w) for w in qs}, {_entity(w) for w in cs}
    only = {e for e in set(qe) ^ set(ce) if not (e in qk and e in ck)}
    if only:
        return f"entity in one text only: {sorted(only)[0]!r}"
    if order_flips(qe, ce):
        return "entities in the opposite order"
    q_route, c_route = _FROM_TO.search(ql), _FROM_TO.search(cl)
    if q_route and c_route and q_route.groups() == c_route.groups()[::-1]:
        return "from/to reversed"
    return None


def default_verifier(query: str, cached: str, similarity: float) -> bool:
    """Whether the answer cached for ``cached`` may be served for ``query``."""
    return explain(query, cached) is None
