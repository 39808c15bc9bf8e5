"""What the Redis tier keeps beside the entries: each partition's vector log, and counters.

The semantic tier's vector log is a stream per partition (XADD, XRANGE); the evidence of
error-bounded partitions is a hash of counters (HINCRBY). Both live under the function's
own prefix, so clearing a function clears them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from .names import PARTITION_EVIDENCE, VECTOR_LOG
from .redis_wire import vlog_row

__all__ = ["RedisSideData"]

_SCAN_COUNT = 1000
_PIPELINE_BATCH = 2000


class RedisSideData:
    """The vector log and the counters of :class:`~memollm.backends.redis.RedisBackend`."""

    prefix: str
    vlog_max: int

    @property
    def client(self) -> Any:
        """The sync client (the backend's)."""
        raise NotImplementedError

    def full_key(self, key: str) -> str:
        """The Redis key an entry is stored under."""
        raise NotImplementedError

    def _match(self, prefix: str) -> str:
        raise NotImplementedError

    def add_counts(self, key: str, deltas: dict[str, int], ttl: float | None) -> None:
        """HINCRBY each counter of the hash under ``key`` (atomic across processes), with its TTL."""
        name = self.full_key(key)
        pipe = self.client.pipeline(transaction=False)
        for field, delta in deltas.items():
            pipe.hincrby(name, field, delta)
        if ttl is not None:
            pipe.pexpire(name, max(1, int(ttl * 1000)))
        pipe.execute()

    def get_counts(self, key: str) -> dict[str, int]:
        """The hash's counters; values that are not integers are left out (stored bytes are untrusted)."""
        found = self.client.hgetall(self.full_key(key))
        out = {}
        for field, value in found.items():
            try:
                out[field.decode()] = int(value)
            except (UnicodeDecodeError, ValueError):
                continue
        return out

    def scan_counts(self, prefix: str = "") -> Iterator[tuple[str, dict[str, int]]]:
        """(partition, counters) of every partition's evidence under ``prefix`` (for tools)."""
        start = len(self.prefix) + 1
        for found in self.client.scan_iter(match=self._match(prefix) + PARTITION_EVIDENCE, count=_SCAN_COUNT):
            name = found.decode(errors="replace")[start:]
            yield name.removesuffix(PARTITION_EVIDENCE), self.get_counts(name)

    def vlog_append(self, partition: str, key: str, text: str, vector: bytes, expires: float | None) -> None:
        """XADD a prompt vector to ``partition``'s stream (trimmed to about ``vlog_max`` entries)."""
        self.vlog_extend(partition, [(key, text, vector)], expires)

    def vlog_extend(
        self, partition: str, rows: Iterable[tuple[str, str, bytes]], expires: float | None
    ) -> None:
        """XADD many (key, text, vector) rows of ``partition``, pipelined (one stream: one slot)."""
        name, until = self._vlog_key(partition), "" if expires is None else repr(expires)
        pipe = self.client.pipeline(transaction=False)
        queued = 0
        for key, text, vector in rows:
            fields = {"k": key, "t": text, "v": vector, "e": until}
            pipe.xadd(name, fields, maxlen=self.vlog_max, approximate=True)
            queued += 1
            if queued % _PIPELINE_BATCH == 0:
                pipe.execute()
        if queued % _PIPELINE_BATCH:
            pipe.execute()

    def vlog_since(
        self, partition: str, cursor: object
    ) -> tuple[list[tuple[object, object, object, object]], object]:
        """Entries of ``partition``'s stream after ``cursor`` (XRANGE from an exclusive id).

        Rows are (key, text, vector bytes, expiry); a field that is missing or does not decode
        comes back as None, for the caller to skip: one bad row never blocks the rows after it.
        """
        start = f"({cursor.decode() if isinstance(cursor, bytes) else cursor}" if cursor else "-"
        found = self.client.xrange(self._vlog_key(partition), min=start, max="+", count=20000)
        if not found:
            return [], cursor
        return [vlog_row(fields) for _, fields in found], found[-1][0]

    def _vlog_key(self, partition: str) -> str:
        # Under the partition's own prefix, so clearing a function's entries clears its vectors.
        return f"{self.prefix}:{partition}{VECTOR_LOG}"
