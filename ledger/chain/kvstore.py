"""A durable key-value store under py-evm's database interface, for the embedded chain.

eth-tester's PyEVMBackend keeps the whole chain in a ``MemoryDB``: a restart forgets every block,
balance and contract. This store puts the same keys in one SQLite file in the data directory.
Writes are buffered in memory and flushed in a single SQLite transaction by :meth:`commit`, which
the embedded backend calls after each mined block — so a block is either entirely on disk or not at
all, and a transaction is acknowledged only after its block is committed (WAL, synchronous=FULL).
Reads see the buffered writes first.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from eth.db.backends.base import BaseDB

_SCHEMA = "CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID"
_DELETED = object()


class SQLiteKV(BaseDB):
    """py-evm ``BaseDB`` over SQLite with write batching; thread-safe."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(_SCHEMA)
        self._pending: dict[bytes, object] = {}
        self._lock = threading.RLock()

    def __getitem__(self, key: bytes) -> bytes:
        with self._lock:
            value = self._pending.get(key)
            if value is _DELETED:
                raise KeyError(key)
            if value is not None:
                return value  # type: ignore[return-value]
            row = self._conn.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return bytes(row[0])

    def __setitem__(self, key: bytes, value: bytes) -> None:
        with self._lock:
            self._pending[bytes(key)] = bytes(value)

    def __delitem__(self, key: bytes) -> None:
        with self._lock:
            if not self._exists(key):
                raise KeyError(key)
            self._pending[bytes(key)] = _DELETED

    def _exists(self, key: bytes) -> bool:
        with self._lock:
            value = self._pending.get(key)
            if value is not None:
                return value is not _DELETED
            return self._conn.execute("SELECT 1 FROM kv WHERE k = ?", (key,)).fetchone() is not None

    @property
    def pending_writes(self) -> int:
        return len(self._pending)

    def commit(self) -> None:
        """Flush buffered writes in one durable SQLite transaction."""
        with self._lock:
            if not self._pending:
                return
            puts = [(k, v) for k, v in self._pending.items() if v is not _DELETED]
            dels = [(k,) for k, v in self._pending.items() if v is _DELETED]
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                if puts:
                    self._conn.executemany("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", puts)
                if dels:
                    self._conn.executemany("DELETE FROM kv WHERE k = ?", dels)
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL, IOERR)
                    self._conn.execute("ROLLBACK")
                raise
            self._pending.clear()

    def discard(self) -> None:
        """Drop buffered writes (a failed block)."""
        with self._lock:
            self._pending.clear()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
