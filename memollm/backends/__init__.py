"""Cache tiers. A backend only moves bytes; keys, the codec and TTL policy live a layer up.

Every backend has a sync face (used by sync decorated functions, which never start
an event loop) and an async face (used by async ones).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .memory import MemoryBackend

__all__ = ["Backend", "MemoryBackend"]


@runtime_checkable
class Backend(Protocol):
    """What a cache tier offers."""

    name: str

    def get(self, key: str) -> bytes | None:
        """Return the bytes stored under ``key``, or ``None``."""

    def set(self, key: str, value: bytes, ttl: float | None) -> None:
        """Store ``value`` for ``ttl`` seconds (``None``: until evicted)."""

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""

    def clear(self, prefix: str = "") -> int:
        """Remove every key starting with ``prefix``; return how many were removed."""

    async def aget(self, key: str) -> bytes | None:
        """Async face of :meth:`get`."""

    async def aset(self, key: str, value: bytes, ttl: float | None) -> None:
        """Async face of :meth:`set`."""

    async def adelete(self, key: str) -> None:
        """Async face of :meth:`delete`."""

    async def aclear(self, prefix: str = "") -> int:
        """Async face of :meth:`clear`."""
