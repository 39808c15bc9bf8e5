"""One partition's vectors: exact search over a normalised float32 matrix, and HNSW when large."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .._install import extra as _extra
from .._log import warn_once

__all__ = ["ANN_THRESHOLD", "Candidate", "Partition"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A stored prompt similar to the one looked up."""

    key: str
    text: str
    similarity: float


# Past this many vectors a partition also keeps an approximate (HNSW) index: measured here
# (benchmarks/bench_semantic.py), exact search is faster up to about 15-20k vectors and
# grows linearly after, HNSW stays under a millisecond.
ANN_THRESHOLD = 20_000


_ROW_BYTES = 160  # a row's share of the key, row and expiry bookkeeping (dict, lists, floats)


_GRAPH_BYTES = 16 * 2 * 8  # HNSW links per vector at connectivity 16


class Partition:
    """Exact search over a normalised float32 matrix, grown by doubling; HNSW when large."""

    def __init__(self, dim: int, ann_threshold: int = ANN_THRESHOLD) -> None:
        self.ann_threshold = ann_threshold
        self.ann: Any = None
        self.matrix = np.zeros((16, dim), dtype=np.float32)
        self.rows: OrderedDict[str, int] = OrderedDict()  # key -> row, least recently used first
        self.keys: list[str | None] = []
        self.texts: list[str] = []
        self.expires: list[float] = []
        self.free: list[int] = []
        self.text_bytes = 0

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def nbytes(self) -> int:
        """Roughly what the partition holds in memory: vectors, texts, graph and bookkeeping."""
        graph = len(self.rows) * (self.matrix.shape[1] * 2 + _GRAPH_BYTES) if self.ann is not None else 0
        return self.matrix.nbytes + self.text_bytes + graph + len(self.keys) * _ROW_BYTES

    def add(self, key: str, vector: npt.NDArray[np.float32], text: str, expires: float) -> None:
        """Store (or replace) one vector, unit-normalised, with its prompt text and expiry."""
        row = self._place(key, vector, text, expires)
        if row is None:
            return
        if self.ann is not None:
            self.ann.add(row, vector)
        elif len(self.rows) >= self.ann_threshold:
            self._build_ann()

    def extend(
        self, keys: list[str], vectors: npt.NDArray[np.float32], texts: list[str], expires: float
    ) -> None:
        """Add many prompts to a partition that already holds some: one HNSW batch for all."""
        rows = [
            self._place(key, vector, text, expires)
            for key, vector, text in zip(keys, vectors, texts, strict=True)
        ]
        placed = [(row, i) for i, row in enumerate(rows) if row is not None]
        if self.ann is not None and placed:
            self.ann.add(
                np.array([row for row, _ in placed], dtype=np.uint64), vectors[[i for _, i in placed]]
            )
        elif self.ann is None and len(self.rows) >= self.ann_threshold:
            self._build_ann()

    def _place(self, key: str, vector: npt.NDArray[np.float32], text: str, expires: float) -> int | None:
        """Put a prompt in the matrix; its row, or None when it was already there (not re-indexed)."""
        row = self.rows.get(key)
        if row is not None and self.texts[row] == text:
            # The same prompt again (often this process's own write read back from the shared
            # log): its vector is already here; re-inserting it into HNSW costs ~1 ms for nothing.
            self.expires[row] = max(self.expires[row], expires)
            self.rows.move_to_end(key)
            return None
        if row is None:
            if self.free:
                row = self.free.pop()
            else:
                row = len(self.keys)
                if row >= len(self.matrix):
                    grown = np.zeros((len(self.matrix) * 2, self.matrix.shape[1]), dtype=np.float32)
                    grown[: len(self.matrix)] = self.matrix
                    self.matrix = grown
                self.keys.append(None)
                self.texts.append("")
                self.expires.append(0.0)
        elif self.ann is not None and self.ann.contains(row):
            self.ann.remove(row)
        self.matrix[row] = vector
        self.text_bytes += len(text) - len(self.texts[row])
        self.keys[row], self.texts[row], self.expires[row] = key, text, expires
        self.rows[key] = row
        self.rows.move_to_end(key)
        return row

    def load(
        self, keys: list[str], vectors: npt.NDArray[np.float32], texts: list[str], expires: float
    ) -> None:
        """Fill an empty partition in one go."""
        n = len(keys)
        size = max(16, 1 << (n - 1).bit_length())
        self.matrix = np.zeros((size, vectors.shape[1]), dtype=np.float32)
        self.matrix[:n] = vectors
        self.keys = list(keys)
        self.texts = list(texts)
        self.text_bytes = sum(map(len, texts))
        self.expires = [expires] * n
        self.rows = OrderedDict((key, i) for i, key in enumerate(keys))
        if n >= self.ann_threshold:
            self._build_ann()

    def _build_ann(self) -> None:
        _onnxruntime_first()
        try:
            from usearch.index import Index
        except ImportError:
            warn_once(
                ("usearch",),
                "a semantic partition passed %d vectors but usearch is not installed (%s); searching it "
                "exactly",
                self.ann_threshold,
                _extra("semantic"),
            )
            self.ann_threshold = 2**62  # do not try again
            return

        # Vectors are normalised, so inner product is cosine. f16 halves the memory at no
        # measurable loss of recall for these embeddings.
        ann = Index(ndim=self.matrix.shape[1], metric="ip", dtype="f16", connectivity=16, expansion_add=128,
                    expansion_search=96)  # fmt: skip
        rows = np.fromiter(self.rows.values(), dtype=np.uint64, count=len(self.rows))
        ann.add(rows, self.matrix[rows.astype(np.int64)])
        self.ann = ann

    def remove(self, key: str) -> None:
        """Forget ``key``'s vector (its row is reused by the next add)."""
        row = self.rows.pop(key, None)
        if row is not None:
            self.matrix[row] = 0.0  # a zero vector never passes a positive threshold
            self.keys[row] = None
            self.text_bytes -= len(self.texts[row])
            self.texts[row] = ""
            self.free.append(row)
            if self.ann is not None and self.ann.contains(row):
                self.ann.remove(row)

    def search(
        self, vector: npt.NDArray[np.float32], k: int, threshold: float, now: float
    ) -> list[Candidate]:
        """The ``k`` most similar live vectors at or above ``threshold``, best first."""
        used = len(self.keys)
        if not used:
            return []
        want = min(used, k * 2)
        if self.ann is not None:
            matches = self.ann.search(vector, want)
            pairs = [(int(r), 1.0 - float(d)) for r, d in zip(matches.keys, matches.distances, strict=True)]
        else:
            scores = self.matrix[:used] @ vector
            top = np.argpartition(-scores, want - 1)[:want] if want < used else np.arange(used)
            pairs = sorted(((int(r), float(scores[r])) for r in top), key=lambda p: -p[1])
        found = []
        for row, score in pairs:
            if score < threshold:
                break
            key = self.keys[row]
            if key is None:
                continue
            if self.expires[row] <= now:
                self.remove(key)
                continue
            self.rows.move_to_end(key)
            found.append(Candidate(key, self.texts[row], score))
            if len(found) >= k:
                break
        return found


def _onnxruntime_first() -> None:
    """Load onnxruntime (when installed) before usearch.

    With usearch 2.26 and onnxruntime 1.32 on Linux, importing onnxruntime after usearch
    kills the process with a segmentation fault; the other order is fine. fastembed
    imports onnxruntime when it loads a model, which can happen after an index has grown
    past the ANN threshold (a callable embedder, a model loaded late, the application's own
    use of onnxruntime), so the safe order is made here, once.
    """
    with contextlib.suppress(ImportError):
        import onnxruntime  # noqa: F401 - imported for its side effect on the process
