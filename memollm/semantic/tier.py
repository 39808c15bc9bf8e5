"""The semantic tier of one cached function: embed the prompt, search its partition, verify."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .._log import warn_once
from .embedder import BatchingEmbedder, EmbedderLoading, EmbedderUnavailable, FastEmbedder, as_embedder
from .index import Candidate, SemanticIndex
from .parts import SemanticParts
from .settings import Settings, check
from .why import SemanticCheck

__all__ = ["Pending", "SemanticTier", "default_embedder"]

_default: BatchingEmbedder | None = None
_default_lock = threading.Lock()


def default_embedder() -> BatchingEmbedder:
    """The process-wide default embedder (fastembed, configured by MEMOLLM_EMBED_MODEL[_PATH])."""
    global _default  # noqa: PLW0603 - one model per process, loaded on first use
    with _default_lock:
        if _default is None:
            _default = BatchingEmbedder(FastEmbedder())
        return _default


@dataclass(slots=True)
class Pending:
    """What a semantic lookup leaves for after the call: index the new entry, compare answers.

    ``shadow``: the would-be hit of shadow mode. ``check``: the candidate error-bounded mode
    explored instead of serving (``eligible``: it would have been served).
    """

    partition: str
    text: str
    vector: npt.NDArray[np.float32]
    shadow: Candidate | None = None
    shadow_value: Any = None
    check: Candidate | None = None
    check_value: Any = None
    eligible: bool = False


class SemanticTier:
    """An index of this function's prompts and an embedder; candidates are judged by :func:`check`."""

    def __init__(
        self,
        *,
        embedder: Any,
        top_k: int,
        max_entries: int,
        clock: Callable[[], float],
        max_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        if embedder is None:
            self.embedder = default_embedder()
        else:
            inner = as_embedder(embedder)
            self.embedder = inner if isinstance(inner, BatchingEmbedder) else BatchingEmbedder(inner)
        self.top_k = top_k
        self.index = SemanticIndex(max_entries=max_entries, max_bytes=max_bytes, clock=clock)
        self.sync_every = 0.5  # seconds between pulls of a partition's shared vector log
        self._cursors: dict[str, object] = {}
        self._synced: dict[str, float] = {}

    def routed(self, parts: SemanticParts) -> SemanticParts:
        """``parts`` with the embedding model's route in the partition, when the embedder routes.

        A model per language (:class:`~memollm.semantic.multilingual.ByLanguage`): vectors of
        two models are never compared.
        """
        route = getattr(self.embedder.inner, "route", None)
        if route is None:
            return parts
        return SemanticParts(parts.text, f"{parts.partition}~{route(parts.text)}")

    def sync_due(self, partition: str) -> bool:
        """Whether to pull ``partition``'s shared log now (at most every ``sync_every`` seconds)."""
        now = time.monotonic()
        if now - self._synced.get(partition, -math.inf) < self.sync_every:
            return False
        self._synced[partition] = now
        return True

    def cursor(self, partition: str) -> object:
        """How far this process has read ``partition``'s shared log."""
        return self._cursors.get(partition)

    def absorb(
        self, partition: str, rows: list[tuple[object, object, object, object]], cursor: object, dim: int
    ) -> None:
        """Add vectors other processes (or an earlier run) logged, skipping rows that are not sound.

        The log is stored bytes like any other: a row of the wrong types, a vector of another
        length (another model wrote it) or with NaN in it is skipped, never raised.
        """
        for key, text, blob, expires in rows:
            if not (
                type(key) is str
                and type(text) is str
                and type(blob) is bytes
                and len(blob) == 2 * dim
                and (expires is None or (type(expires) is float and expires == expires))  # noqa: PLR0124
            ):
                continue
            vector = np.frombuffer(blob, dtype=np.float16).astype(np.float32)
            norm = float(np.linalg.norm(vector))
            if norm and math.isfinite(norm):
                self.index.add(partition, key, vector / norm, text, expires)
        self._cursors[partition] = cursor

    @staticmethod
    def pack(vector: npt.NDArray[np.float32]) -> bytes:
        """A vector as the shared log stores it (float16)."""
        return vector.astype(np.float16).tobytes()

    def vector(self, name: str, text: str) -> npt.NDArray[np.float32] | None:
        """The prompt's embedding, or None (with one warning) when the model cannot be used."""
        try:
            return self.embedder.embed_one(text)
        except EmbedderLoading as exc:
            # Said at once: a short script may end before the background check can tell more.
            warn_once(("embedder-loading", name), "%s: semantic lookups wait for the model, exact caching "
                      "goes on: %s", name, exc)  # fmt: skip
        except EmbedderUnavailable as exc:
            warn_once(
                ("embedder", str(exc)), "%s: semantic caching is off, exact caching goes on: %s", name, exc
            )
        except Exception as exc:  # noqa: BLE001 - an embedding failure must not fail the call
            warn_once(
                ("embed", name, type(exc)), "%s: embedding failed, semantic lookup skipped: %r", name, exc
            )
        return None

    def candidates(
        self, partition: str, vector: npt.NDArray[np.float32], text: str, settings: Settings
    ) -> Iterator[Candidate]:
        """Stored prompts whose answers may be served for ``text``, most similar first.

        Checked one at a time, lazily: the caller usually stops at the first.
        """
        found = self.index.search(partition, vector, k=self.top_k, threshold=settings.floor)
        return self.verified(text, found, settings)

    @staticmethod
    def verified(text: str, found: Iterable[Candidate], settings: Settings) -> Iterator[Candidate]:
        """The candidates :func:`check` lets through for ``text``, in order, lazily."""
        for candidate in found:
            if check(text, candidate.text, candidate.similarity, settings).served:
                yield candidate

    def why_not(
        self, partition: str, vector: npt.NDArray[np.float32], text: str, settings: Settings
    ) -> SemanticCheck:
        """Why no stored question's answer was served: the best candidate and what refused it."""
        found = self.index.search(partition, vector, k=1, threshold=-1.0)
        if not found:
            return SemanticCheck(
                False, "nothing is stored yet for this function, model, parameters and tenant"
            )
        return check(text, found[0].text, found[0].similarity, settings)
