"""Build memollm/semantic/words/wordnet_antonyms.txt from WordNet 3.0 (Debian's wordnet-base).

    python scripts/build_word_lists.py [--wordnet DIR]

WordNet is Princeton University's lexical database, under the WordNet 3.0 licence (use, copy,
modify and distribute for any purpose, with its notice: see memollm/semantic/NOTICE). Without
--wordnet the script downloads Debian's wordnet-base package with apt-get (no install) into a
temporary folder. It keeps the direct antonym pairs ("!" pointers) between single words whose
senses are tagged at least MIN_TAGS times in WordNet's sense-tagged corpus (cntlist.rev), less
the pairs listed in NOISY: sense-specific antonyms of very common words that would set apart
questions asking the same thing. The output is deterministic (sorted).
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "memollm" / "semantic" / "words" / "wordnet_antonyms.txt"
MIN_TAGS = 10
# Antonyms of one narrow sense of a very common word ("set" the sun, "side" against "top").
NOISY = {
    ("all", "some"), ("have", "lack"), ("out", "safe"), ("side", "top"), ("bottom", "side"),
    ("figure", "ground"), ("natural", "sharp"), ("natural", "flat"), ("stand", "yield"),
    ("lie", "stand"), ("bounce", "clear"), ("level", "raise"), ("ride", "walk"), ("late", "middle"),
    ("fail", "manage"), ("rise", "set"), ("common", "individual"), ("express", "local"),
    ("full", "thin"), ("lean", "rich"), ("discharge", "enlist"), ("delay", "rush"),
    ("difficulty", "ease"), ("local", "national"), ("cash", "credit"), ("ill", "well"),
    ("badly", "well"), ("neutral", "positive"), ("answer", "question"), ("location", "studio"),
    ("sink", "source"), ("overhead", "surface"), ("preparation", "resolution"), ("dramatic", "lyric"),
    ("conventional", "nuclear"), ("concentration", "distribution"), ("intermediate", "terminal"),
    ("issue", "recall"), ("ignore", "know"), ("forget", "mind"), ("have", "miss"), ("break", "make"),
    ("break", "keep"), ("attend", "miss"), ("center", "left"), ("center", "right"), ("lie", "sit"),
    ("foot", "head"), ("head", "rear"), ("dry", "sweet"), ("gain", "reduce"), ("lose", "profit"),
    ("general", "local"), ("let", "prevent"), ("charge", "discharge"), ("cool", "heat"), ("empty", "fill"),
    ("differ", "equal"), ("all", "no"), ("no", "some"), ("beginning", "middle"), ("early", "middle"),
    ("end", "middle"), ("negative", "neutral"), ("flat", "natural"), ("flat", "sharp"), ("dull", "sharp"),
    ("sink", "float"), ("float", "sink"), ("avoid", "confront"), ("away", "home"), ("gather", "spread"),
    ("advance", "back"), ("ahead", "back"), ("active", "quiet"), ("admit", "exclude"), ("admit", "reject"),
}  # fmt: skip


def wordnet_folder() -> Path:
    """Debian's wordnet-base, downloaded and unpacked (never installed)."""
    work = Path(tempfile.mkdtemp(prefix="wordnet-"))
    subprocess.run(["apt-get", "download", "wordnet-base"], cwd=work, check=True, capture_output=True)
    package = next(work.glob("wordnet-base*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(package), str(work / "root")], check=True)
    return work / "root" / "usr" / "share" / "wordnet"


def _clean(word: str) -> str:
    return re.sub(r"\(.*\)$", "", word.lower())


def antonyms(folder: Path) -> list[tuple[str, str]]:
    """Direct antonym pairs of common single words, sorted."""
    tags: collections.Counter[str] = collections.Counter()
    for line in (folder / "cntlist.rev").read_text(encoding="latin-1").splitlines():
        key, _, count = line.split()
        tags[key.split("%")[0]] += int(count)
    files = {"n": "noun", "v": "verb", "a": "adj", "s": "adj", "r": "adv"}

    def words_at(pos: str, offset: str) -> list[str]:
        with (folder / f"data.{files[pos]}").open("rb") as handle:
            handle.seek(int(offset))
            parts = handle.readline().decode("latin-1").split()
        return [_clean(parts[4 + 2 * i]) for i in range(int(parts[3], 16))]

    pairs = set()
    for name in ("adj", "verb", "adv", "noun"):
        for line in (folder / f"data.{name}").read_text(encoding="latin-1").splitlines():
            if line.startswith("  "):  # the licence header
                continue
            parts = line.split(" | ")[0].split()
            count = int(parts[3], 16)
            words = [_clean(parts[4 + 2 * i]) for i in range(count)]
            at = 4 + 2 * count
            for _ in range(int(parts[at])):
                symbol, offset, pos, source_target = parts[at + 1 : at + 5]
                at += 4
                if symbol != "!":
                    continue
                source, target = int(source_target[:2], 16), int(source_target[2:], 16)
                a, b = sorted((words[source - 1], words_at(pos, offset)[target - 1]))
                pairs.add((a, b))
    return sorted(
        (a, b)
        for a, b in pairs
        if "_" not in a + b and tags[a] >= MIN_TAGS and tags[b] >= MIN_TAGS and (a, b) not in NOISY
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet", type=Path, help="a folder holding WordNet 3.0's data.* files")
    args = parser.parse_args()
    folder = args.wordnet or wordnet_folder()
    found = antonyms(folder)
    header = [
        "# Antonyms from WordNet 3.0 (Princeton University; the WordNet 3.0 licence: see ../NOTICE).",
        f"# Direct antonym pairs of single words tagged at least {MIN_TAGS} times in WordNet's sense-",
        "# tagged corpus, less sense-specific pairs of very common words. Made by",
        "# scripts/build_word_lists.py from Debian's wordnet-base; do not edit by hand.",
    ]
    OUT.write_text("\n".join([*header, *(f"{a} <> {b}" for a, b in found)]) + "\n", encoding="utf-8")
    print(f"{len(found)} pairs -> {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
