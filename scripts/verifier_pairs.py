"""Build the training pairs of the semantic verifier, reproducibly, with a manifest of every input.

    python scripts/verifier_pairs.py [--train-dir ../shared/data/train] [--out build/verifier/pairs.jsonl]

Only sources whose licence allows shipping a model fitted on them are read (see
``docs/verifier-card.md``): PAWS-Wiki dev (Google, any use), SemEval-2016 STS postediting
(CC BY 4.0), the intent-derived pairs of CLINC150, BANKING77, HWU64, SLURP and NLU++ (CC BY),
the team's own pairs (``scripts/data/team_pairs.jsonl``, MIT), and pairs made here by rule.
CC BY-SA sources (the STS-B sub-corpora, SemEval-2016 question-question) are left out, so the
shipped model is not an adaptation of share-alike text. No text of the evaluation pairs is
used: the training folder was built without them, and the rule-made pairs come from the
texts above and from templates written for this script.

The rule-made pairs teach what cosine similarity cannot see: a look-alike that asks something
else (another number, unit, entity or language, a negation, an antonym, a reversed direction)
is a negative; a re-phrasing of the same question (other question words, contractions,
casing, the two sides of a symmetric comparison swapped) is a positive.

Output rows: ``{"q1", "q2", "label", "weight", "origin"}``, in a seeded order. The manifest
(``scripts/data/verifier_manifest.json``) records each input file's sha256 and each origin's
count, so a run can be checked against the one that made the shipped model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = 20261201

# (file, kind, weight, keep): keep is the share of rows kept (hash order), by pair_type.
INTENT_FILES = (
    "en_banking77_intent.jsonl",
    "en_clinc150_intent.jsonl",
    "en_hwu64_intent.jsonl",
    "en_slurp_intent.jsonl",
    "en_nlupp_intent.jsonl",
)
INTENT_KEEP = {"same_intent": 0.35, "diff_intent_overlap": 0.35, "diff_intent_random": 0.0,
               "same_intent_diff_slot": 1.0, "same_intent_diff_number": 1.0}  # fmt: skip
INTENT_WEIGHT = 0.3

UNITS = (
    ("meters", "feet", "miles", "kilometers", "inches", "centimeters", "yards"),
    ("pounds", "kilograms", "grams", "ounces"),
    ("celsius", "fahrenheit", "kelvin"),
    ("seconds", "minutes", "hours", "days", "weeks", "months", "years"),
    ("dollars", "euros", "yen", "rupees"),
    ("bytes", "kilobytes", "megabytes", "gigabytes", "terabytes"),
    ("liters", "gallons", "cups", "milliliters"),
)
ANTONYMS = (
    ("on", "off"), ("enable", "disable"), ("before", "after"), ("increase", "decrease"),
    ("upload", "download"), ("open", "close"), ("add", "remove"), ("buy", "sell"), ("start", "stop"),
    ("import", "export"), ("install", "uninstall"), ("encrypt", "decrypt"), ("show", "hide"),
    ("lock", "unlock"), ("ascending", "descending"), ("maximum", "minimum"), ("first", "last"),
    ("login", "logout"), ("input", "output"), ("send", "receive"), ("read", "write"), ("push", "pull"),
    ("encode", "decode"), ("connect", "disconnect"), ("higher", "lower"), ("cheaper", "more expensive"),
    ("faster", "slower"), ("best", "worst"), ("advantages", "disadvantages"), ("safe", "dangerous"),
    ("hot", "cold"), ("early", "late"), ("tomorrow", "yesterday"), ("morning", "evening"),
    ("lose", "gain"), ("win", "lose"), ("allow", "block"), ("include", "exclude"), ("join", "leave"),
)  # fmt: skip
ENTITIES = (
    ("Python", "JavaScript", "Java", "Rust", "Go", "C++", "Ruby", "TypeScript", "Kotlin", "Swift"),
    ("Windows 11", "macOS", "Ubuntu", "Android", "iOS", "Windows 10"),
    ("France", "Germany", "Japan", "Brazil", "Canada", "Italy", "Spain", "India", "Mexico", "Egypt"),
    ("Paris", "London", "Tokyo", "Berlin", "Madrid", "Chicago", "Boston", "Denver", "Sydney", "Rome"),
    ("React", "Vue", "Angular", "Svelte"), ("PostgreSQL", "MySQL", "SQLite", "MongoDB", "Redis"),
    ("Chrome", "Firefox", "Safari", "Edge"), ("Excel", "Google Sheets", "Word", "PowerPoint"),
    ("AWS", "Azure", "Google Cloud"), ("Docker", "Kubernetes"), ("Git", "Mercurial"),
    ("Einstein", "Newton", "Darwin", "Curie"), ("Mars", "Venus", "Jupiter", "Saturn"),
)  # fmt: skip

# Slots: {lang} a language, {os} a system, {country}, {city}, {thing} an everyday task object.
TEMPLATES = (
    "How do I {verb} a {obj} in {lang}?", "What is the best way to {verb} a {obj} in {lang}?",
    "How do I turn {onoff} dark mode in {os}?", "How do I {toggle} two-factor authentication on my account?",
    "How many {u1} are in a {u1s}?", "Convert {n} {u1} to {u2}.", "What is {n} {u1} in {u2}?",
    "What is the capital of {country}?", "What is the population of {city}?",
    "What's the weather like in {city} {day}?", "How far is {city} from {city2}?",
    "What is the cheapest flight from {city} to {city2}?",
    "How long does it take to fly from {city} to {city2}?",
    "Is it safe to take ibuprofen while pregnant?", "Can I take aspirin {when} eating?",
    "What are the {pros} of using {db}?", "Should I learn {lang} {when2} {lang2}?",
    "How do I {install} {pkg} on {os}?", "How do I {updown} a file to {cloud}?",
    "Sort a list in {order} order in {lang}.", "What is the {maxmin} value of an int in {lang}?",
    "How many calories are in {n} grams of rice?", "What year did {person} die?",
    "How do I set an alarm for {n} am?", "Set a timer for {n} minutes.",
    "How do I {encdec} a string in base64 with {lang}?", "What is the boiling point of water in {temp}?",
    "Why is my {device} running {speed} than usual?", "How do I {openclose} a port on {os}?",
    "Translate 'good morning' into {language}.", "How do I reverse a string in {lang}?",
    "How do I read a CSV file in {lang}?", "What does the {lang} {kw} keyword do?",
    "How do I {showhide} hidden files on {os}?", "How do I {lockunlock} my {device}?",
    "Who was the first president of {country}?", "What time is it in {city} right now?",
    "How do I connect {db} to a {lang} app?", "Is {planet} bigger than Earth?",
    "How many moons does {planet} have?", "What is the exchange rate from {cur1} to {cur2}?",
    "How do I merge two dictionaries in {lang}?", "Explain the difference between {lang} and {lang2}.",
    "Which is faster, {db} or {db2}?", "How much does it cost to ship a package to {country}?",
    "What is the difference between {db} and {db2}?", "Compare {lang} and {lang2} for web development.",
)  # fmt: skip
FILL = {
    "verb": ("reverse", "sort", "copy", "flatten", "shuffle", "split"),
    "obj": ("list", "string", "dictionary", "array", "file"),
    "lang": ENTITIES[0], "lang2": ENTITIES[0], "os": ENTITIES[1], "country": ENTITIES[2],
    "city": ENTITIES[3], "city2": ENTITIES[3], "db": ENTITIES[5], "db2": ENTITIES[5], "planet": ENTITIES[12],
    "person": ENTITIES[11], "cloud": ("Google Drive", "Dropbox", "OneDrive", "S3"),
    "onoff": ("on", "off"), "toggle": ("enable", "disable"), "install": ("install", "uninstall"),
    "updown": ("upload", "download"), "order": ("ascending", "descending"), "maxmin": ("maximum", "minimum"),
    "encdec": ("encode", "decode"), "showhide": ("show", "hide"), "lockunlock": ("lock", "unlock"),
    "openclose": ("open", "close"), "pros": ("advantages", "disadvantages"), "when": ("before", "after"),
    "when2": ("before", "after"), "speed": ("slower", "faster"), "temp": ("celsius", "fahrenheit"),
    "u1": ("meters", "feet", "kilometers", "inches"), "u1s": ("mile", "kilometer", "yard", "foot"),
    "u2": ("miles", "meters", "feet", "centimeters"), "n": ("3", "5", "7", "10", "12", "20", "100"),
    "day": ("today", "tomorrow"), "device": ("laptop", "phone", "computer", "tablet"),
    "pkg": ("Node.js", "Docker", "Python 3.12", "Git"), "kw": ("yield", "async", "static", "lambda"),
    "language": ("French", "Spanish", "German", "Japanese"), "cur1": ("US dollars", "euros", "yen"),
    "cur2": ("euros", "pounds", "rupees"),
}  # fmt: skip

# Re-phrasings of the same request: (pattern, replacements).
REPHRASE = (
    (r"^How do I (.+)\?$", ("How can I {0}?", "What's the way to {0}?", "How would I {0}?",
                            "Can you tell me how to {0}?", "What is the best way to {0}?", "how do i {0}")),
    (r"^What is (.+)\?$", ("What's {0}?", "Can you tell me what {0} is?", "Tell me {0}.", "what is {0}")),
    (r"^How many (.+)\?$", ("How many {0}", "Can you tell me how many {0}?", "Do you know how many {0}?")),
    (r"^Is it (.+)\?$", ("Would it be {0}?", "is it {0}")),
    (r"^Can I (.+)\?$", ("Is it okay to {0}?", "Am I able to {0}?", "Could I {0}?")),
    (r"^Explain (.+)\.$", ("Can you explain {0}?", "Please explain {0}.", "What is {0}?")),
    (r"^Convert (.+)\.$", ("Please convert {0}.", "Can you convert {0}?", "convert {0}")),
    (r"^((?:Sort|Set|Translate|Compare) .+)\.$", ("Please {0}.", "Could you {0}?", "{0}")),
)  # fmt: skip
NEGATE = (
    (r"\bIs it\b", "Is it not"), (r"\bis it\b", "is it not"), (r"\bCan I\b", "Can't I"),
    (r"\bcan I\b", "can't I"), (r"\bShould I\b", "Shouldn't I"), (r"\bDoes\b", "Doesn't"),
    (r"\bdo I\b", "don't I"), (r"\bIs\b", "Isn't"), (r"\bis\b", "is not"), (r"\bcan\b", "cannot"),
    (r"\bwill\b", "will not"), (r"\bdoes\b", "does not"), (r"\bare\b", "are not"),
)  # fmt: skip


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _keep(text: str, share: float) -> bool:
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < share


def _word_swap(text: str, groups: tuple[tuple[str, ...], ...], rng: random.Random) -> str | None:
    """``text`` with one word of a group replaced by another of its group (whole words, case kept)."""
    options = []
    for group in groups:
        for word in group:
            for m in re.finditer(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text, re.IGNORECASE):
                options.append((m, [w for w in group if w.lower() != word.lower()]))
    if not options:
        return None
    m, others = rng.choice(options)
    new = rng.choice(others)
    if m.group(0)[:1].isupper() and not new[:1].isupper():
        new = new[:1].upper() + new[1:]
    elif m.group(0).islower() and not any(c.isupper() for c in new[1:]) and not new[:1].isupper():
        new = new.lower()
    return text[: m.start()] + new + text[m.end() :]


def _antonym(text: str, rng: random.Random) -> str | None:
    pairs = [(a, b) for a, b in ANTONYMS] + [(b, a) for a, b in ANTONYMS]
    rng.shuffle(pairs)
    for a, b in pairs:
        m = re.search(rf"\b{re.escape(a)}\b", text, re.IGNORECASE)
        if m:
            new = b.capitalize() if m.group(0)[:1].isupper() else b
            return text[: m.start()] + new + text[m.end() :]
    return None


def _number(text: str, rng: random.Random) -> str | None:
    found = list(re.finditer(r"\d+", text))
    if not found:
        return None
    m = rng.choice(found)
    old = int(m.group(0))
    new = rng.choice([old + 1, old * 2, old + 10, max(0, old - 1), old * 10]) if old else rng.randint(1, 9)
    if new == old:
        new = old + 3
    return text[: m.start()] + str(new) + text[m.end() :]


def _negate(text: str) -> str | None:
    for pattern, repl in NEGATE:
        new, n = re.subn(pattern, repl, text, count=1)
        if n:
            return new
    return None


def _reverse(text: str) -> str | None:
    m = re.search(r"\bfrom ([\w .+-]+?) to ([\w .+-]+?)(\?|\.|$)", text)
    if m:
        return text[: m.start()] + f"from {m.group(2)} to {m.group(1)}{m.group(3)}" + text[m.end() :]
    m = re.search(r"\b(\d+ )?(\w+) (?:to|in|into) (\w+)(\?|\.)$", text)
    units = {u for group in UNITS for u in group}
    if m and m.group(2) in units and m.group(3) in units:
        return text[: m.start()] + f"{m.group(1) or ''}{m.group(3)} to {m.group(2)}{m.group(4)}"
    return None


def _symmetric(text: str) -> str | None:
    """The two sides of a symmetric comparison swapped: the same question."""
    m = re.search(
        r"\b(difference between|compare|Compare) ([\w .+]+?) (and|with) ([\w .+]+?)(\?|\.| for)", text
    )
    if m:
        return text[: m.start(2)] + f"{m.group(4)} {m.group(3)} {m.group(2)}" + text[m.end(4) :]
    m = re.search(r", ([\w .+]+?) or ([\w .+]+?)\?$", text)
    if m:
        return text[: m.start()] + f", {m.group(2)} or {m.group(1)}?"
    return None


def rephrase(text: str, rng: random.Random) -> str | None:
    for pattern, outs in REPHRASE:
        m = re.match(pattern, text)
        if m:
            body = m.group(1)
            if not body[:2].isupper():  # keep "AWS", "iOS" as they are
                body = body[:1].lower() + body[1:]
            out = rng.choice(outs).format(body)
            return out if out != text else None
    return None


def filled(rng: random.Random) -> Iterator[str]:
    """Every template, filled several times with random slot values."""
    for template in TEMPLATES:
        slots = re.findall(r"{(\w+)}", template)
        for _ in range(25):
            values = {s: rng.choice(FILL[s]) for s in slots}
            if any(a in values and values[a] == values.get(a + "2") for a in ("city", "lang", "db")):
                continue
            yield template.format(**values)


def rule_pairs(texts: list[str], rng: random.Random) -> Iterator[tuple[str, str, int, str]]:
    """(q1, q2, label, family) made from ``texts`` by the look-alike and re-phrasing rules."""
    makers = (
        ("number", lambda t: _number(t, rng)),
        ("unit", lambda t: _word_swap(t, UNITS, rng)),
        ("entity", lambda t: _word_swap(t, ENTITIES, rng)),
        ("antonym", lambda t: _antonym(t, rng)),
        ("negation", _negate),
        ("direction", _reverse),
    )
    for text in texts:
        for family, make in makers:
            if family == "negation" and rng.random() < 0.6:  # it applies to most texts: fewer
                continue
            other = make(text)
            if other and other != text:
                yield text, other, 0, family
                # The same look-alike behind a re-phrasing: the rule, not the wording, decides.
                again = rephrase(other, rng)
                if again and rng.random() < 0.5:
                    yield text, again, 0, family + "+rephrase"
        same = rephrase(text, rng)
        if same:
            yield text, same, 1, "rephrase"
        swapped = _symmetric(text)
        if swapped:
            yield text, swapped, 1, "symmetric"


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def build(train_dir: Path) -> tuple[list[dict[str, object]], dict[str, object]]:  # noqa: C901 - one pass per source
    rng = random.Random(SEED)
    rows: list[dict[str, object]] = []
    inputs: dict[str, str] = {}

    def add(q1: str, q2: str, label: int, weight: float, origin: str) -> None:
        if q1.strip().lower() != q2.strip().lower():
            rows.append({"q1": q1, "q2": q2, "label": label, "weight": weight, "origin": origin})

    paws = train_dir / "en_paws_wiki_dev.jsonl"
    inputs[paws.name] = sha256(paws)
    for r in read_jsonl(paws):
        add(str(r["q1"]), str(r["q2"]), int(r["label"]), 1.0, "paws")  # type: ignore[call-overload]
    sts = train_dir / "en_sts2016.jsonl"
    inputs[sts.name] = sha256(sts)
    for r in read_jsonl(sts):
        if r.get("subset") == "sts2016 postediting":  # CC BY 4.0; question-question is CC BY-SA
            add(str(r["q1"]), str(r["q2"]), int(r["label"]), 1.0, "sts2016-postediting")  # type: ignore[call-overload]
    question_texts: list[str] = []
    for name in INTENT_FILES:
        path = train_dir / name
        inputs[name] = sha256(path)
        for r in read_jsonl(path):
            kind = str(r.get("pair_type"))
            if _keep(f"{r['q1']}\x00{r['q2']}", INTENT_KEEP.get(kind, 0.0)):
                add(str(r["q1"]), str(r["q2"]), int(r["label"]), INTENT_WEIGHT, f"intent:{kind}")  # type: ignore[call-overload]
            for text in (str(r["q1"]), str(r["q2"])):
                if _keep(text, 0.04):
                    question_texts.append(text)
    team = ROOT / "scripts/data/team_pairs.jsonl"
    inputs[str(team.relative_to(ROOT))] = sha256(team)
    for r in read_jsonl(team):
        add(str(r["q1"]), str(r["q2"]), int(r["label"]), 2.0, "team")  # type: ignore[call-overload]
        question_texts += [str(r["q1"]), str(r["q2"])]
    question_texts = sorted(set(question_texts))
    made = sorted(set(filled(rng)))
    for q1, q2, label, family in rule_pairs(question_texts + made, rng):
        add(q1, q2, label, 1.0, f"rule:{family}")
    rng.shuffle(rows)
    manifest = {
        "seed": SEED,
        "inputs_sha256": dict(sorted(inputs.items())),
        "script_sha256": sha256(Path(__file__)),
        "pairs": len(rows),
        "positive_ratio": round(sum(int(r["label"]) for r in rows) / len(rows), 4),  # type: ignore[call-overload]
        "by_origin": dict(sorted(Counter(str(r["origin"]) for r in rows).items())),
    }
    return rows, manifest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-dir", default=str(ROOT.parent / "shared/data/train"))
    parser.add_argument("--out", default=str(ROOT / "build/verifier/pairs.jsonl"))
    parser.add_argument("--manifest", default=str(ROOT / "scripts/data/verifier_manifest.json"))
    args = parser.parse_args()
    rows, manifest = build(Path(args.train_dir))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    manifest["output_sha256"] = sha256(out)
    Path(args.manifest).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(manifest["by_origin"], indent=1), manifest["pairs"], manifest["positive_ratio"])


if __name__ == "__main__":
    main()
