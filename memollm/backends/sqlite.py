"""The embedded persistent tier: one SQLite file, shared by threads and processes, kept across restarts."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from .names import PARTITION_EVIDENCE

__all__ = ["SQLiteBackend"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key      TEXT PRIMARY KEY,
    value    BLOB NOT NULL,
    expires  REAL,
    accessed REAL NOT NULL,
    size     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_expires ON entries(expires) WHERE expires IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_accessed ON entries(accessed);
CREATE TABLE IF NOT EXISTS totals (
    id INTEGER PRIMARY KEY CHECK (id = 0), bytes INTEGER NOT NULL, rows INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals VALUES (0, 0, 0);
CREATE TRIGGER IF NOT EXISTS entries_ins AFTER INSERT ON entries BEGIN
    UPDATE totals SET bytes = bytes + NEW.size, rows = rows + 1 WHERE id = 0; END;
CREATE TRIGGER IF NOT EXISTS entries_del AFTER DELETE ON entries BEGIN
    UPDATE totals SET bytes = bytes - OLD.size, rows = rows - 1 WHERE id = 0; END;
CREATE TRIGGER IF NOT EXISTS entries_upd AFTER UPDATE OF size ON entries BEGIN
    UPDATE totals SET bytes = bytes - OLD.size + NEW.size WHERE id = 0; END;
CREATE TABLE IF NOT EXISTS vectors (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    partition TEXT NOT NULL,
    key       TEXT NOT NULL,
    text      TEXT NOT NULL,
    vector    BLOB NOT NULL,
    expires   REAL
);
CREATE INDEX IF NOT EXISTS vectors_partition ON vectors(partition, seq);
CREATE TABLE IF NOT EXISTS counts (
    key     TEXT NOT NULL,
    field   TEXT NOT NULL,
    value   INTEGER NOT NULL,
    expires REAL,
    PRIMARY KEY (key, field)
) WITHOUT ROWID;
"""
# Reads refresh an entry's LRU time at most this often, so hits rarely write.
_TOUCH_AFTER = 30.0
_EVICT_SLACK = 0.9
_wal_lock = threading.Lock()  # evict down to 90% of the limit, so eviction does not run on every write


class SQLiteBackend:
    """A tier in a SQLite file: survives restarts, shared by every thread and process that opens it.

    WAL mode with a busy timeout lets many readers and one writer at a time work on
    the file. Entries expire by an indexed expiry column (dropped when read and purged
    every ``purge_every`` seconds); past ``max_bytes`` the least recently used go.
    """

    name = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str] = "memollm.db",
        *,
        max_bytes: int = 1024**3,
        busy_timeout: float = 5.0,
        purge_every: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, got {max_bytes!r}")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.busy_timeout = busy_timeout
        self.purge_every = purge_every
        self._clock = clock
        self._local = threading.local()
        self._next_purge = 0.0
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SQLiteBackend({str(self.path)!r})"

    def _connect(self) -> sqlite3.Connection:
        # One connection per thread and process: sqlite3 connections are not shared.
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=True
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        self._use_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
        # Here, not in __init__: a broken file then fails calls (which the tier's breaker
        # skips) instead of stopping the application from starting.
        conn.executescript(_SCHEMA)
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        # WAL is a property of the file, set once. Switching to it takes an exclusive lock
        # and does not wait on the busy timeout, so switch only if needed, one thread at a
        # time, and retry for a while if another process is switching at the same moment.
        deadline = time.monotonic() + self.busy_timeout
        with _wal_lock:
            while conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                try:
                    conn.execute("PRAGMA journal_mode = WAL")
                except sqlite3.OperationalError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)

    # -- sync face ------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """Return the entry's bytes, or ``None`` if absent or expired (expired rows are dropped)."""
        db = self._connect()
        row = db.execute("SELECT value, expires, accessed FROM entries WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        value, expires, accessed = row
        now = self._clock()
        if expires is not None and expires <= now:
            db.execute("DELETE FROM entries WHERE key = ? AND expires <= ?", (key, now))
            return None
        if now - accessed > _TOUCH_AFTER:
            db.execute("UPDATE entries SET accessed = ? WHERE key = ?", (now, key))
        return bytes(value)

    def set(self, key: str, value: bytes, ttl: float | None) -> None:
        """Store the entry, then purge and evict if it is time to."""
        now = self._clock()
        expires = None if ttl is None else now + ttl
        db = self._connect()
        db.execute(
            "INSERT INTO entries (key, value, expires, accessed, size) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires = excluded.expires, "
            "accessed = excluded.accessed, size = excluded.size",
            (key, value, expires, now, len(value) + len(key)),
        )
        if now >= self._next_purge:
            self._next_purge = now + self.purge_every
            self._purge(db, now)
        total = db.execute("SELECT bytes FROM totals WHERE id = 0").fetchone()[0]
        if total > self.max_bytes:
            self._evict(db, total)

    def delete(self, key: str) -> None:
        """Remove the entry."""
        self._connect().execute("DELETE FROM entries WHERE key = ?", (key,))

    def clear(self, prefix: str = "") -> int:
        """Remove every entry whose key starts with ``prefix``."""
        db = self._connect()
        if not prefix:
            db.execute("DELETE FROM vectors")
            db.execute("DELETE FROM counts")
            return db.execute("DELETE FROM entries").rowcount
        # A key range instead of LIKE: uses the primary key and needs no escaping.
        upper = prefix + "\U0010ffff"
        db.execute("DELETE FROM vectors WHERE partition >= ? AND partition < ?", (prefix, upper))
        db.execute("DELETE FROM counts WHERE key >= ? AND key < ?", (prefix, upper))
        return db.execute("DELETE FROM entries WHERE key >= ? AND key < ?", (prefix, upper)).rowcount

    def scan(self, prefix: str = "", limit: int | None = None) -> Iterator[tuple[str, bytes]]:
        """(key, value) of live entries whose key starts with ``prefix``, in key order (for tools)."""
        upper = prefix + "\U0010ffff"
        query = (
            "SELECT key, value FROM entries WHERE key >= ? AND key < ? AND (expires IS NULL OR expires > ?)"
        )
        params: tuple[object, ...] = (prefix, upper, self._clock())
        if limit is not None:
            query += " LIMIT ?"
            params = (*params, limit)
        for key, value in self._connect().execute(query, params):
            yield key, bytes(value)

    # -- the semantic tier's vector log: appended by writers, read incrementally by every process

    def vlog_append(self, partition: str, key: str, text: str, vector: bytes, expires: float | None) -> None:
        """Record a prompt vector of ``partition`` for every process to pick up."""
        self._connect().execute(
            "INSERT INTO vectors (partition, key, text, vector, expires) VALUES (?, ?, ?, ?, ?)",
            (partition, key, text, vector, expires),
        )

    def vlog_extend(
        self, partition: str, rows: Iterable[tuple[str, str, bytes]], expires: float | None
    ) -> None:
        """Record many (key, text, vector) rows of ``partition`` in one transaction."""
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO vectors (partition, key, text, vector, expires) VALUES (?, ?, ?, ?, ?)",
                ((partition, key, text, vector, expires) for key, text, vector in rows),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def vlog_since(
        self, partition: str, cursor: object
    ) -> tuple[list[tuple[object, object, object, object]], object]:
        """Vectors of ``partition`` logged after ``cursor`` (None: from the start), and the new cursor."""
        after = cursor if isinstance(cursor, int) else 0
        rows = (
            self._connect()
            .execute(
                "SELECT seq, key, text, vector, expires FROM vectors WHERE partition = ? AND seq > ? "
                "AND (expires IS NULL OR expires > ?) ORDER BY seq LIMIT 20000",
                (partition, after, self._clock()),
            )
            .fetchall()
        )
        if not rows:
            return [], cursor
        # Columns only declare types: a value of another type is passed on, for the caller to skip.
        found = [(k, t, bytes(v) if isinstance(v, bytes | memoryview) else v, e) for _, k, t, v, e in rows]
        return found, rows[-1][0]

    def add_counts(self, key: str, deltas: dict[str, int], ttl: float | None) -> None:
        """Add ``deltas`` to the counters under ``key`` (one statement each: atomic across processes)."""
        expires = None if ttl is None else self._clock() + ttl
        self._connect().executemany(
            "INSERT INTO counts (key, field, value, expires) VALUES (?, ?, ?, ?) ON CONFLICT(key, field) "
            "DO UPDATE SET value = value + excluded.value, expires = excluded.expires",
            [(key, field, delta, expires) for field, delta in deltas.items()],
        )

    def get_counts(self, key: str) -> dict[str, int]:
        """The live counters under ``key``; values that are not integers are left out."""
        rows = self._connect().execute(
            "SELECT field, value FROM counts WHERE key = ? AND (expires IS NULL OR expires > ?)",
            (key, self._clock()),
        )
        return {field: value for field, value in rows if type(field) is str and type(value) is int}

    def scan_counts(self, prefix: str = "") -> Iterator[tuple[str, dict[str, int]]]:
        """(partition, counters) of every partition's live evidence under ``prefix`` (for tools)."""
        upper = prefix + "\U0010ffff"
        rows = self._connect().execute(
            "SELECT key, field, value FROM counts WHERE key >= ? AND key < ? AND key LIKE '%' || ? "
            "AND (expires IS NULL OR expires > ?) ORDER BY key",
            (prefix, upper, PARTITION_EVIDENCE, self._clock()),
        )
        current: str | None = None
        fields: dict[str, int] = {}
        for key, field, value in rows:
            if key != current:
                if current is not None:
                    yield current.removesuffix(PARTITION_EVIDENCE), fields
                current, fields = key, {}
            if type(value) is int:
                fields[field] = value
        if current is not None:
            yield current.removesuffix(PARTITION_EVIDENCE), fields

    def purge(self) -> int:
        """Drop expired entries now; return how many."""
        return self._purge(self._connect(), self._clock())

    def stats(self) -> tuple[int, int]:
        """Entries and bytes stored (keys and values)."""
        rows, size = self._connect().execute("SELECT rows, bytes FROM totals WHERE id = 0").fetchone()
        return int(rows), int(size)

    def _purge(self, db: sqlite3.Connection, now: float) -> int:
        db.execute("DELETE FROM vectors WHERE expires IS NOT NULL AND expires <= ?", (now,))
        db.execute("DELETE FROM counts WHERE expires IS NOT NULL AND expires <= ?", (now,))
        return db.execute("DELETE FROM entries WHERE expires IS NOT NULL AND expires <= ?", (now,)).rowcount

    def _evict(self, db: sqlite3.Connection, total: int) -> None:
        target = int(self.max_bytes * _EVICT_SLACK)
        db.execute("BEGIN IMMEDIATE")
        try:
            rows = db.execute("SELECT key, size FROM entries ORDER BY accessed LIMIT 1000").fetchall()
            doomed = []
            for key, size in rows:
                if total <= target:
                    break
                doomed.append((key,))
                total -= size
            db.executemany("DELETE FROM entries WHERE key = ?", doomed)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Close this thread's connection and the async worker threads."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # -- async face: the same calls on worker threads ---------------------------------

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            with self._executor_lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="memollm-sqlite")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def aget(self, key: str) -> bytes | None:
        """Async :meth:`get` on a worker thread."""
        return await self._run(lambda: self.get(key))

    async def aset(self, key: str, value: bytes, ttl: float | None) -> None:
        """Async :meth:`set` on a worker thread."""
        await self._run(lambda: self.set(key, value, ttl))

    async def adelete(self, key: str) -> None:
        """Async :meth:`delete` on a worker thread."""
        await self._run(lambda: self.delete(key))

    async def aclear(self, prefix: str = "") -> int:
        """Async :meth:`clear` on a worker thread."""
        return await self._run(lambda: self.clear(prefix))
