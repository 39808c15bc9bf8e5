"""One contract, every backend: memory, SQLite, Redis (TCP and unix socket) and Redis Cluster."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memollm.backends import Backend, MemoryBackend, from_url
from memollm.backends.redis import RedisBackend
from memollm.backends.sqlite import SQLiteBackend

from ..helpers import eventually
from ..servers import RedisServer


@pytest.fixture(params=["memory", "sqlite", "redis", "redis-unix", "cluster"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    kind = request.param
    made: Any
    if kind == "memory":
        made = MemoryBackend()
    elif kind == "sqlite":
        made = SQLiteBackend(tmp_path / "cache.db")
    elif kind == "redis":
        made = RedisBackend(request.getfixturevalue("redis_url"))
    elif kind == "redis-unix":
        request.getfixturevalue("redis_url")  # empties the session server
        server: RedisServer = request.getfixturevalue("redis_server")
        made = from_url(f"unix://{server.socket}?db=0")
    else:
        made = RedisBackend(request.getfixturevalue("cluster_url"), cluster=True)
    yield made
    if hasattr(made, "close"):
        made.close()


async def aclose(backend: Backend) -> None:
    """Close the running loop's connections, as an application does before its loop ends."""
    close = getattr(backend, "aclose", None)
    if close is not None:
        await close()


class TestContract:
    def test_missing_key(self, backend: Backend) -> None:
        """A key never set reads as None."""
        assert backend.get("ns:f:missing") is None

    def test_round_trip_binary(self, backend: Backend) -> None:
        """Any bytes, NULs and a megabyte included, come back as they were stored."""
        values = {"ns:f:a": b"\x00\x01\xff", "ns:f:b": bytes(range(256)) * 4096, "ns:f:c": b""}
        for key, value in values.items():
            backend.set(key, value, 60)
        for key, value in values.items():
            assert backend.get(key) == value

    def test_overwrite_replaces_value_and_ttl(self, backend: Backend) -> None:
        """Setting a key again replaces its value and its TTL."""
        backend.set("ns:f:k", b"old", 0.2)
        backend.set("ns:f:k", b"new", None)
        assert backend.get("ns:f:k") == b"new"
        time.sleep(0.3)  # past the first TTL: the second (none) must be the one in force
        assert backend.get("ns:f:k") == b"new"

    def test_ttl_expires(self, backend: Backend) -> None:
        """An entry with a TTL disappears after it, and not before."""
        backend.set("ns:f:long", b"v", 60)
        before = time.monotonic()
        backend.set("ns:f:short", b"v", 0.3)
        early = backend.get("ns:f:short")
        # However busy the machine: gone only if its 0.3 s may have passed between set and get.
        assert early == b"v" or time.monotonic() - before >= 0.3
        assert eventually(lambda: backend.get("ns:f:short") is None)
        assert backend.get("ns:f:long") == b"v"

    def test_delete(self, backend: Backend) -> None:
        """Deleting removes the key; deleting a missing key is not an error."""
        backend.set("ns:f:k", b"v", 60)
        backend.delete("ns:f:k")
        backend.delete("ns:f:k")
        assert backend.get("ns:f:k") is None

    def test_clear_by_prefix(self, backend: Backend) -> None:
        """clear(prefix) removes exactly the keys under the prefix, also with glob characters in it."""
        keys = ["ns:f1:a", "ns:f1:b", "ns:f2:a", "ns:a*b:x", "ns:aXb:x", "other:f1:a"]
        for key in keys:
            backend.set(key, b"v", 60)
        assert backend.clear("ns:f1:") == 2
        assert backend.clear("ns:a*b:") == 1
        assert backend.get("ns:aXb:x") == b"v"
        assert backend.get("ns:f2:a") == b"v"
        assert backend.clear() == 3

    def test_many_keys_clear_in_batches(self, backend: Backend) -> None:
        """Clearing thousands of keys removes them all (Redis: SCAN and UNLINK in batches)."""
        for i in range(1500):
            backend.set(f"ns:bulk:{i}", b"v", 60)
        backend.set("ns:keep:1", b"v", 60)
        assert backend.clear("ns:bulk:") == 1500
        assert backend.get("ns:keep:1") == b"v"

    def test_async_face(self, backend: Backend) -> None:
        """The async face reads and writes the same data as the sync face."""

        async def scenario() -> list[object]:
            await backend.aset("ns:f:a", b"1", 60)
            backend.set("ns:f:b", b"2", 60)
            got = [await backend.aget("ns:f:a"), await backend.aget("ns:f:b"), backend.get("ns:f:a")]
            await backend.adelete("ns:f:a")
            got.append(await backend.aget("ns:f:a"))
            got.append(await backend.aclear("ns:f:"))
            await aclose(backend)
            return got

        assert asyncio.run(scenario()) == [b"1", b"2", b"1", None, 1]

    def test_async_face_in_two_event_loops(self, backend: Backend) -> None:
        """The async face works from successive event loops (as in many test suites and CLIs)."""
        backend.set("ns:f:a", b"1", 60)

        async def read() -> bytes | None:
            value = await backend.aget("ns:f:a")
            await aclose(backend)
            return value

        assert asyncio.run(read()) == b"1"
        assert asyncio.run(read()) == b"1"
