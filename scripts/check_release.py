"""The release check: what a wheel must carry, run by .ci/run in a venv holding only that wheel.

    python scripts/check_release.py

Every data file of the package is in the installed wheel (found through importlib.resources,
as the package reads them), and the pieces that read them work: prices, the demo workload,
the verifier, the word lists.
"""

from __future__ import annotations

from importlib import resources

DATA = [
    "data/prices.json", "data/demo_workload.json", "py.typed", "semantic/verifier.json", "semantic/NOTICE",
    "semantic/words/fillers.txt", "semantic/words/openers.txt", "semantic/words/opposites.txt",
    "semantic/words/synonyms.txt", "semantic/words/wordnet_antonyms.txt", "semantic/words/zh.txt",
]  # fmt: skip


def main() -> None:
    root = resources.files("memollm")
    missing = [name for name in DATA if not root.joinpath(name).is_file()]
    if missing:
        raise SystemExit(f"the wheel lacks {', '.join(missing)}")
    from memollm.semantic.difference import compare
    from memollm.semantic.learned import recommended_threshold

    assert compare("switch dark mode on", "turn dark mode off").kind == "never"
    assert 0.5 < recommended_threshold() < 1.0
    print(f"the wheel carries its {len(DATA)} data files, and the pieces that read them work")


if __name__ == "__main__":
    main()
