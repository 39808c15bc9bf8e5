"""Cache tiers. A backend only moves bytes; keys, the codec and TTL policy live a layer up.

Every backend has a sync face (used by sync decorated functions, which never start
an event loop) and an async face (used by async ones).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from .memory import MemoryBackend

__all__ = ["Backend", "MemoryBackend", "from_url"]


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


def from_url(url: str, **options: Any) -> Backend:
    """Make a backend from a URL.

    ``memory://``; ``redis://``, ``rediss://`` (TLS) and ``unix://`` for Redis;
    ``redis+cluster://`` (or ``rediss+cluster://``) for a Redis Cluster node;
    ``sqlite:///absolute/path.db``, ``sqlite://relative/path.db`` or a plain file path
    ending in ``.db``/``.sqlite`` for SQLite. ``options`` go to the backend.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return MemoryBackend(**options)
    if scheme in ("redis", "rediss", "unix"):
        from .redis import RedisBackend

        return RedisBackend(url, **options)
    if scheme in ("redis+cluster", "rediss+cluster"):
        from .redis import RedisBackend

        return RedisBackend(url.replace("+cluster", "", 1), cluster=True, **options)
    if scheme == "sqlite" or (not scheme and url.endswith((".db", ".sqlite", ".sqlite3"))):
        from .sqlite import SQLiteBackend

        path = url.split("://", 1)[1] if scheme else url
        return SQLiteBackend(Path(path), **options)
    raise ValueError(
        f"cannot make a cache backend from {url.rsplit('@', maxsplit=1)[-1]!r}: expected memory://, "
        f"redis://, rediss://, unix://, redis+cluster:// or sqlite:// (or a path ending in .db)"
    )
