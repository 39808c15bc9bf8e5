"""The word lists are data files: they parse, they name their sources, and they do not contradict."""

from __future__ import annotations

from pathlib import Path

from memollm.semantic.lexicon import lemma, lexicon

WORDS = Path(__file__).resolve().parents[2] / "memollm" / "semantic" / "words"


def test_every_list_names_its_source() -> None:
    """Each file opens with a comment saying where its words come from."""
    for path in WORDS.glob("*.txt"):
        head = path.read_text(encoding="utf-8").splitlines()[0]
        assert head.startswith("#"), path.name
    assert "WordNet 3.0" in (WORDS / "wordnet_antonyms.txt").read_text(encoding="utf-8")


def test_no_word_is_its_own_opposite_or_a_synonym_of_one() -> None:
    """No phrase stands on both sides of an opposite pair, nor in one synonym group with its opposite."""
    words = lexicon()
    groups: dict[str, set[tuple[str, ...]]] = {}
    for phrase, group in words.synonyms:
        groups.setdefault(group, set()).add(phrase)
    for left, right in words.opposites:
        assert left and right and not left & right
        for members in groups.values():
            assert not (members & left and members & right), (left, right)


def test_lists_hold_what_the_rules_rely_on() -> None:
    """Fillers, openers, synonyms, opposites and the Chinese lists are loaded."""
    words = lexicon()
    assert ("quick", "question") in words.fillers_start and "please" in words.fillers_any
    assert ("how", "can", "i") in words.openers
    assert (("switch", "on"), "on") in words.synonyms
    assert any(("upload",) in left and ("download",) in right for left, right in words.opposites)
    assert "不" in words.zh_negations


def test_inflections_find_their_entry() -> None:
    """Regular inflections map to the listed word; other words stay as they are."""
    vocabulary = lexicon().vocabulary
    assert [lemma(w, vocabulary) for w in ("enables", "disabling", "stopped", "hottest", "uploads")] == [
        "enable", "disable", "stop", "hot", "upload",
    ]  # fmt: skip
    assert lemma("notifications", vocabulary) == "notifications"
