"""Vectors of cached prompts, searched by cosine similarity within one partition at a time.

A partition is everything about a call except its prompt text (function, model, system
prompt, earlier turns, sampling parameters, tools, tenant, ...): a lookup only ever
searches its own partition, so an answer is never reused across any of those.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from .partition import ANN_THRESHOLD, Candidate, Partition

__all__ = ["Candidate", "SemanticIndex"]


class SemanticIndex:
    """Partitions of prompt vectors, bounded in entries per partition, partitions and bytes.

    Clients choose partitions (a new model name or system prompt makes one), so none of
    the bounds can be left to them: past ``max_entries`` a partition drops its least
    recently used prompts; past ``max_partitions`` or ``max_bytes`` in all, the least
    recently used partitions go whole (a partition larger than the byte budget on its own
    sheds entries instead). An evicted prompt only costs a semantic miss.
    """

    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        max_partitions: int = 1024,
        max_bytes: int = 256 * 1024 * 1024,
        clock: Callable[[], float] = time.time,
        ann_threshold: int = ANN_THRESHOLD,
    ) -> None:
        if min(max_entries, max_partitions, max_bytes) < 1:
            raise ValueError(
                f"max_entries, max_partitions and max_bytes must be positive, got "
                f"{max_entries!r}, {max_partitions!r}, {max_bytes!r}"
            )
        self.max_entries = max_entries
        self.max_partitions = max_partitions
        self.max_bytes = max_bytes
        self.ann_threshold = ann_threshold
        self._clock = clock
        self._parts: OrderedDict[str, Partition] = OrderedDict()  # least recently used first
        self._sizes: dict[str, int] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return sum(len(p) for p in self._parts.values())

    @property
    def nbytes(self) -> int:
        """Roughly the memory the index holds, by the same measure ``max_bytes`` bounds."""
        with self._lock:
            return self._bytes

    @property
    def partitions(self) -> int:
        """How many partitions the index holds."""
        with self._lock:
            return len(self._parts)

    def graph_size(self, partition: str) -> int | None:
        """Vectors in ``partition``'s approximate (HNSW) index; None while it is searched exactly."""
        with self._lock:
            part = self._parts.get(partition)
            return None if part is None or part.ann is None else len(part.ann)

    def _partition(self, partition: str, dim: int) -> Partition:
        part = self._parts.get(partition)
        if part is None:
            part = self._parts[partition] = Partition(dim, self.ann_threshold)
            self._sizes[partition] = 0
        self._parts.move_to_end(partition)
        return part

    def _settle(self, partition: str, part: Partition) -> None:
        """Apply every bound after ``partition`` changed (under the lock)."""
        while len(part) > self.max_entries:
            part.remove(next(iter(part.rows)))
        self._account(partition, part)
        while len(self._parts) > self.max_partitions or (
            self._bytes > self.max_bytes and len(self._parts) > 1
        ):
            oldest = next(iter(self._parts))
            if oldest == partition:  # the one just used is the most recent: only when it is alone
                break
            self._drop(oldest)
        while self._bytes > self.max_bytes and len(part):
            part.remove(next(iter(part.rows)))
            self._account(partition, part)

    def _account(self, partition: str, part: Partition) -> None:
        size = part.nbytes
        self._bytes += size - self._sizes[partition]
        self._sizes[partition] = size

    def _drop(self, partition: str) -> None:
        del self._parts[partition]
        self._bytes -= self._sizes.pop(partition)

    def add(
        self, partition: str, key: str, vector: npt.NDArray[np.float32], text: str, expires: float | None
    ) -> None:
        """Index ``key``'s prompt vector in ``partition`` until ``expires`` (None: no expiry)."""
        with self._lock:
            part = self._partition(partition, len(vector))
            part.add(key, vector, text, float("inf") if expires is None else expires)
            self._settle(partition, part)

    def add_many(
        self,
        partition: str,
        keys: list[str],
        vectors: npt.NDArray[np.float32],
        texts: list[str],
        expires: float | None = None,
    ) -> None:
        """Index many new prompts at once (bulk loading: one matrix copy, one HNSW batch)."""
        with self._lock:
            part = self._partition(partition, vectors.shape[1])
            if part.rows or part.ann is not None:  # not a fresh partition
                part.extend(keys, vectors, texts, float("inf") if expires is None else expires)
            else:
                part.load(keys, vectors, texts, float("inf") if expires is None else expires)
            self._settle(partition, part)

    def remove(self, partition: str, key: str) -> None:
        """Forget a vector (its entry expired, was evicted or invalidated)."""
        with self._lock:
            part = self._parts.get(partition)
            if part is not None:
                part.remove(key)
                self._account(partition, part)

    def search(
        self, partition: str, vector: npt.NDArray[np.float32], *, k: int = 5, threshold: float = 0.9
    ) -> list[Candidate]:
        """The ``k`` most similar live prompts in ``partition`` at or above ``threshold``."""
        with self._lock:
            part = self._parts.get(partition)
            if part is None:
                return []
            self._parts.move_to_end(partition)
            found = part.search(vector, k, threshold, self._clock())
            self._account(partition, part)  # expired rows met on the way were dropped
            return found

    def clear(self, prefix: str = "") -> None:
        """Forget every partition whose id starts with ``prefix``."""
        with self._lock:
            for name in [n for n in self._parts if n.startswith(prefix)]:
                self._drop(name)
