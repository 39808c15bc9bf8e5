"""SQLite tier specifics: persistence, eviction, purging, concurrency, a broken file."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

import memollm
from memollm import cached_llm
from memollm.backends import from_url
from memollm.backends.sqlite import SQLiteBackend
from memollm.testing import FakeClock

from ..helpers import in_threads


def totals_match(b: SQLiteBackend) -> bool:
    with closing(sqlite3.connect(b.path)) as db:
        rows, size = db.execute("SELECT count(*), coalesce(sum(size), 0) FROM entries").fetchone()
    return b.stats() == (rows, size)


def test_survives_a_restart(tmp_path: Path) -> None:
    """An entry written through one backend object is read by a new one on the same file."""
    first = SQLiteBackend(tmp_path / "c.db")
    first.set("k", b"v", 600)
    first.close()
    assert SQLiteBackend(tmp_path / "c.db").get("k") == b"v"


def test_expiry_is_lazy_and_periodic(tmp_path: Path, clock: FakeClock) -> None:
    """Expired rows are dropped when read, and purged in bulk every purge_every seconds."""
    b = SQLiteBackend(tmp_path / "c.db", clock=clock, purge_every=100)
    b.set("read-me", b"v", 10)
    for i in range(20):
        b.set(f"k{i}", b"v", 10)
    clock.advance(11)
    assert b.get("read-me") is None
    assert b.stats()[0] == 20
    clock.advance(100)
    b.set("trigger", b"v", None)
    assert b.stats()[0] == 1
    assert totals_match(b)


def test_size_limit_evicts_least_recently_used(tmp_path: Path, clock: FakeClock) -> None:
    """Past max_bytes the least recently used entries go; a recently read entry stays."""
    b = SQLiteBackend(tmp_path / "c.db", max_bytes=10_000, clock=clock)
    for i in range(8):
        b.set(f"k{i}", b"x" * 1000, None)
        clock.advance(1)
    clock.advance(60)
    assert b.get("k0") == b"x" * 1000  # old, but just read: refreshed
    for i in range(8, 14):
        b.set(f"k{i}", b"x" * 1000, None)
        clock.advance(1)
    _, size = b.stats()
    assert size <= 10_000
    assert b.get("k0") is not None
    assert b.get("k1") is None
    assert totals_match(b)


def test_totals_follow_updates_and_deletes(tmp_path: Path) -> None:
    """The size totals kept by triggers stay exact through overwrites, deletes and clears."""
    b = SQLiteBackend(tmp_path / "c.db")
    b.set("a:1", b"x" * 10, None)
    b.set("a:1", b"x" * 50, None)
    b.set("a:2", b"y", None)
    b.set("b:1", b"z" * 7, None)
    b.delete("a:2")
    assert totals_match(b)
    assert b.clear("a:") == 1
    assert totals_match(b)
    assert b.stats() == (1, 7 + 3)


def test_threads_share_one_file(tmp_path: Path) -> None:
    """Eight threads reading and writing one file see no errors and no torn values."""
    b = SQLiteBackend(tmp_path / "c.db")

    def work(n: int) -> None:
        for i in range(200):
            key = f"k{(i + n) % 50}"
            b.set(key, key.encode() * 10, 60)
            got = b.get(key)
            assert got is None or got == key.encode() * 10

    assert in_threads(work) == []
    assert totals_match(b)


def test_processes_write_one_file_at_once(tmp_path: Path) -> None:
    """Four processes writing the same file concurrently all succeed (WAL and busy timeout)."""
    db = tmp_path / "c.db"
    script = (
        "import sys\n"
        "from memollm.backends.sqlite import SQLiteBackend\n"
        "b = SQLiteBackend(sys.argv[1])\n"
        "for i in range(300):\n"
        "    b.set(f'p{sys.argv[2]}:{i}', b'v' * 100, 600)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(db), str(n)]) for n in range(4)]
    assert [p.wait(120) for p in procs] == [0, 0, 0, 0]
    b = SQLiteBackend(db)
    assert b.stats()[0] == 1200
    assert totals_match(b)


def test_broken_file_fails_open(tmp_path: Path) -> None:
    """A file that is not a database does not stop start-up; calls go through uncached."""
    path = tmp_path / "c.db"
    path.write_bytes(b"this is not a sqlite database" * 100)
    memollm.register_tier("sqlite", SQLiteBackend(path))

    @cached_llm(tiers=["sqlite"])
    def ask(prompt: str) -> str:
        return prompt * 2

    assert [ask("a"), ask("a")] == ["aa", "aa"]
    assert ask.cache.stats().errors >= 2


def test_async_face_runs_on_worker_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The async face runs on worker threads, never on the event loop's."""
    opened_on: list[int] = []
    real_connect = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        opened_on.append(threading.get_ident())
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", connect)
    b = SQLiteBackend(tmp_path / "c.db")

    async def scenario() -> tuple[bytes | None, int]:
        await b.aset("k", b"v", 60)
        return await b.aget("k"), threading.get_ident()

    found, loop_thread = asyncio.run(scenario())
    assert found == b"v"
    assert opened_on  # the backend did open connections...
    assert loop_thread not in opened_on  # ...never on the event loop's thread
    b.close()


@pytest.mark.parametrize(
    ("url", "relative"),
    [("sqlite:///{dir}/a.db", False), ("{dir}/b.db", False), ("sqlite://rel.db", True)],
    ids=["sqlite-url", "plain-path", "relative"],
)
def test_from_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, relative: bool) -> None:
    """SQLite backends can be named by URL or path; a relative one lives under the working folder."""
    monkeypatch.chdir(tmp_path)
    backend = from_url(url.format(dir=tmp_path).replace("sqlite:////", "sqlite:///"))
    assert isinstance(backend, SQLiteBackend)
    backend.set("k", b"v", 10)
    assert backend.get("k") == b"v"
    assert backend.path.is_absolute() is not relative
    expected = tmp_path / ("rel.db" if relative else backend.path.name)
    assert backend.path.resolve() == expected.resolve()
    assert expected.is_file()  # the answer went to that file, not somewhere else


def test_from_url_rejects_unknown_schemes() -> None:
    """An unknown scheme is refused with the accepted forms listed, and no credentials echoed."""
    with pytest.raises(ValueError, match="expected memory://") as info:
        from_url("mongodb://user:pw@host/db")
    assert "pw" not in str(info.value)
