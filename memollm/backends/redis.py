"""The shared tier: Redis (or Redis Cluster), with a sync and an async face.

Keys are ``{prefix}:{namespace}:{function digest}:{call digest}`` (prefix
``memollm``); values are the codec's msgpack envelopes, set with their TTL in one
``SET ... PX``. Timeouts are short and the client never retries by itself: a dead
or stalled Redis costs a call at most one timeout, and the circuit breaker in
front of the tier (see ``guard``) stops even that after a few failures.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections.abc import Iterator
from typing import Any

import redis
import redis.asyncio as aredis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .names import AUXILIARY_PREFIXES, AUXILIARY_SUFFIXES, LOCK
from .redis_side import RedisSideData
from .redis_wire import FENCE, FENCED_SET, RENEW, UNLOCK

__all__ = ["RedisBackend", "redact"]

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
_SCAN_COUNT = 1000
_UNLINK_BATCH = 500
_PIPELINE_BATCH = 2000


class RedisBackend(RedisSideData):
    """A tier in Redis, shared by every process that points at the same server.

    ``url`` takes the forms redis-py does: ``redis://[[user]:password@]host:port/db``,
    ``rediss://`` for TLS, ``unix:///path/to.sock?db=0``. With ``cluster=True`` the
    URL names any node of a Redis Cluster.
    """

    name = "redis"

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        *,
        cluster: bool = False,
        prefix: str = "memollm",
        connect_timeout: float = 0.25,
        timeout: float = 0.25,
        max_connections: int = 64,
        **client_options: Any,
    ) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", prefix):
            raise ValueError(f"prefix must be 1-64 letters, digits, '_', '.' or '-', got {prefix!r}")
        self.url = url
        self.cluster = cluster
        self.prefix = prefix
        self.vlog_max = 10_000
        self._options: dict[str, Any] = {
            "socket_connect_timeout": connect_timeout,
            "socket_timeout": timeout,
            "max_connections": max_connections,
            **client_options,
        }
        self._client: Any = None
        # redis.asyncio connections belong to the event loop that made them.
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return f"RedisBackend({redact(self.url)!r}{', cluster=True' if self.cluster else ''})"

    # -- clients --------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The sync redis-py client (created on first use; creating it does not connect)."""
        if self._client is None:
            if self.cluster:
                self._client = redis.RedisCluster.from_url(
                    self.url, retry=Retry(NoBackoff(), 0), **self._options
                )
            else:
                self._client = redis.Redis.from_url(self.url, retry=Retry(NoBackoff(), 0), **self._options)
        return self._client

    def aclient(self) -> Any:
        """The async client for the running event loop."""
        loop = asyncio.get_running_loop()
        client = self._aclients.get(loop)
        if client is None:
            from redis.asyncio.retry import Retry as AsyncRetry

            if self.cluster:
                client = aredis.RedisCluster.from_url(
                    self.url,
                    retry=AsyncRetry(NoBackoff(), 0),
                    **self._options,
                )
            else:
                client = aredis.Redis.from_url(self.url, retry=AsyncRetry(NoBackoff(), 0), **self._options)
            self._aclients[loop] = client
        return client

    def full_key(self, key: str) -> str:
        """The Redis key an entry is stored under."""
        return f"{self.prefix}:{key}"

    def _match(self, prefix: str) -> str:
        return self.glob(f"{self.prefix}:{prefix}") + "*"

    @staticmethod
    def glob(text: str) -> str:
        """``text`` with SCAN's pattern characters escaped, to match itself."""
        return _GLOB_SPECIAL.sub(r"\\\1", text)

    # -- sync face ------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """GET the entry."""
        value: bytes | None = self.client.get(self.full_key(key))
        return value

    def set(self, key: str, value: bytes, ttl: float | None) -> None:
        """SET the entry with its TTL in the same command (PX, at least 1 ms)."""
        px = None if ttl is None else max(1, int(ttl * 1000))
        self.client.set(self.full_key(key), value, px=px)

    def delete(self, key: str) -> None:
        """UNLINK the entry."""
        self.client.unlink(self.full_key(key))

    def clear(self, prefix: str = "") -> int:
        """SCAN for keys under ``prefix`` and UNLINK them in batches (never KEYS).

        Their fencing tokens go too (not counted: they are not entries).
        """
        self._unlink_matching(self._fences(prefix))
        return self._unlink_matching(self._match(prefix))

    def _unlink_matching(self, match: str) -> int:
        removed = 0
        batch: list[bytes] = []
        for found in self.client.scan_iter(match=match, count=_SCAN_COUNT):
            batch.append(found)
            if len(batch) >= _UNLINK_BATCH:
                removed += self.client.unlink(*batch)
                batch.clear()
        if batch:
            removed += self.client.unlink(*batch)
        return removed

    def _fences(self, prefix: str) -> str:
        return "{" + self.glob(f"{self.prefix}:{prefix}") + "*}:fence"

    def scan(self, prefix: str = "", limit: int | None = None) -> Iterator[tuple[str, bytes]]:
        """(key, value) of entries whose key starts with ``prefix``, by SCAN (never KEYS; for tools)."""
        start = len(self.prefix) + 1
        seen = 0
        for found in self.client.scan_iter(match=self._match(prefix), count=_SCAN_COUNT):
            if limit is not None and seen >= limit:
                return
            name = found.decode()[start:]
            if name.startswith(AUXILIARY_PREFIXES) or name.endswith(
                AUXILIARY_SUFFIXES
            ):  # locks, logs, counters
                continue
            try:
                value = self.client.get(found)
            except redis.ResponseError:  # another program's key of another type
                continue
            if value is not None:  # expired between SCAN and GET
                seen += 1
                yield name, value

    def lock(self, key: str, token: str, ttl: float) -> bool:
        """Take the lock for ``key`` (SET NX PX with a random token); False if another holds it."""
        return bool(self.client.set(self._lock_key(key), token, nx=True, px=max(1, int(ttl * 1000))))

    def unlock(self, key: str, token: str) -> None:
        """Release the lock for ``key`` if ``token`` still holds it (compare and delete)."""
        self.client.eval(UNLOCK, 1, self._lock_key(key), token)

    def renew(self, key: str, token: str, ttl: float) -> bool:
        """Extend the lock's lease to ``ttl`` seconds from now if ``token`` still holds it."""
        return bool(self.client.eval(RENEW, 1, self._lock_key(key), token, max(1, int(ttl * 1000))))

    async def arenew(self, key: str, token: str, ttl: float) -> bool:
        """Async :meth:`renew`."""
        return bool(await self.aclient().eval(RENEW, 1, self._lock_key(key), token, max(1, int(ttl * 1000))))

    async def alock(self, key: str, token: str, ttl: float) -> bool:
        """Async :meth:`lock`."""
        return bool(await self.aclient().set(self._lock_key(key), token, nx=True, px=max(1, int(ttl * 1000))))

    async def aunlock(self, key: str, token: str) -> None:
        """Async :meth:`unlock`."""
        await self.aclient().eval(UNLOCK, 1, self._lock_key(key), token)

    def _lock_key(self, key: str) -> str:
        return f"{self.prefix}:{LOCK}{key}"

    def _fence_key(self, key: str) -> str:
        # Hash-tagged with the entry's own key: the same Cluster slot, so one script sees both.
        return f"{{{self.full_key(key)}}}:fence"

    def fence(self, key: str) -> int:
        """A new fencing token for a lease on ``key``: larger than every earlier holder's."""
        return int(self.client.eval(FENCE, 1, self._fence_key(key)))

    async def afence(self, key: str) -> int:
        """Async :meth:`fence`."""
        return int(await self.aclient().eval(FENCE, 1, self._fence_key(key)))

    def set_fenced(self, key: str, value: bytes, ttl: float | None, fence: int) -> bool:
        """SET the entry made under the lease with token ``fence``, unless a later holder's is there."""
        px = 0 if ttl is None else max(1, int(ttl * 1000))
        return bool(
            self.client.eval(FENCED_SET, 2, self.full_key(key), self._fence_key(key), value, px, fence)
        )

    async def aset_fenced(self, key: str, value: bytes, ttl: float | None, fence: int) -> bool:
        """Async :meth:`set_fenced`."""
        px = 0 if ttl is None else max(1, int(ttl * 1000))
        client = self.aclient()
        return bool(
            await client.eval(FENCED_SET, 2, self.full_key(key), self._fence_key(key), value, px, fence)
        )

    # -- the semantic tier's vector log: a stream per partition -------------------------

    def ping(self) -> bool:
        """Whether the server answers."""
        return bool(self.client.ping())

    def close(self) -> None:
        """Close the sync client's connections."""
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- async face -----------------------------------------------------------------

    async def aget(self, key: str) -> bytes | None:
        """Async GET."""
        value: bytes | None = await self.aclient().get(self.full_key(key))
        return value

    async def aset(self, key: str, value: bytes, ttl: float | None) -> None:
        """Async SET with PX."""
        px = None if ttl is None else max(1, int(ttl * 1000))
        await self.aclient().set(self.full_key(key), value, px=px)

    async def adelete(self, key: str) -> None:
        """Async UNLINK."""
        await self.aclient().unlink(self.full_key(key))

    async def aclear(self, prefix: str = "") -> int:
        """Async SCAN + UNLINK."""
        await self._aunlink_matching(self._fences(prefix))
        return await self._aunlink_matching(self._match(prefix))

    async def _aunlink_matching(self, match: str) -> int:
        client = self.aclient()
        removed = 0
        batch: list[bytes] = []
        async for found in client.scan_iter(match=match, count=_SCAN_COUNT):
            batch.append(found)
            if len(batch) >= _UNLINK_BATCH:
                removed += await client.unlink(*batch)
                batch.clear()
        if batch:
            removed += await client.unlink(*batch)
        return removed

    async def aclose(self) -> None:
        """Close the running loop's async client."""
        client = self._aclients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


def redact(url: str) -> str:
    """The URL without its password, for logs and reprs."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
