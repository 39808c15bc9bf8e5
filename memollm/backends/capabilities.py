"""What a backend may offer beyond bytes: cross-process locks, fenced writes, a shared vector log, counters.

The core finds them by protocol (``isinstance(backend, Locking)``), once per plan.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

__all__ = ["Counting", "Fencing", "Locking", "VectorLog"]


@runtime_checkable
class Locking(Protocol):
    """Cross-process locks held as leases with a random token (Redis)."""

    def lock(self, key: str, token: str, ttl: float) -> bool:
        """Take the lock for ``key``; False if another holds it."""

    def renew(self, key: str, token: str, ttl: float) -> bool:
        """Extend the lease while ``token`` holds it."""

    def unlock(self, key: str, token: str) -> None:
        """Release the lock if ``token`` holds it."""

    async def alock(self, key: str, token: str, ttl: float) -> bool:
        """Async :meth:`lock`."""

    async def arenew(self, key: str, token: str, ttl: float) -> bool:
        """Async :meth:`renew`."""

    async def aunlock(self, key: str, token: str) -> None:
        """Async :meth:`unlock`."""


@runtime_checkable
class Fencing(Protocol):
    """Fenced writes: a lease holder that woke late never overwrites the answer of a later one."""

    def fence(self, key: str) -> int:
        """A fencing token for a new lease on ``key``, larger than every earlier holder's."""

    def set_fenced(self, key: str, value: bytes, ttl: float | None, fence: int) -> bool:
        """Store unless a later token's write is there; whether it was stored."""

    async def afence(self, key: str) -> int:
        """Async :meth:`fence`."""

    async def aset_fenced(self, key: str, value: bytes, ttl: float | None, fence: int) -> bool:
        """Async :meth:`set_fenced`."""


@runtime_checkable
class VectorLog(Protocol):
    """A log of prompt vectors shared between processes (Redis streams, a SQLite table)."""

    def vlog_extend(
        self, partition: str, rows: Iterable[tuple[str, str, bytes]], expires: float | None
    ) -> None:
        """Append (key, text, vector) rows to ``partition``'s log."""

    def vlog_since(
        self, partition: str, cursor: object
    ) -> tuple[list[tuple[object, object, object, object]], object]:
        """The rows of ``partition``'s log after ``cursor``, and the new cursor."""


@runtime_checkable
class Counting(Protocol):
    """Named counters (the evidence of error-bounded semantic hits)."""

    def add_counts(self, key: str, deltas: dict[str, int], ttl: float | None) -> None:
        """Add ``deltas`` to the counters under ``key``."""

    def get_counts(self, key: str) -> dict[str, int]:
        """The counters under ``key``."""
