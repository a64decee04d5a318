"""Single-leader election for the anchoring loop.

Several API workers (or hosts) may serve the same log; exactly one should anchor, or they would race
each other's ``anchor`` transactions (harmless — the contract refuses a stale size — but wasteful).
On PostgreSQL the leader holds a session-level advisory lock on a dedicated connection: if the
leader dies, its connection closes and the lock passes to the next worker that asks. On SQLite the
leader holds an exclusive ``flock`` on ``<data dir>/anchor.lock`` (SQLite and the embedded chain
are single-host by nature).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine, text

# pg_advisory_lock key: "sharetrail anchor" folded into a signed 64-bit integer
ANCHOR_LOCK_KEY = int.from_bytes(b"st-anchr", "big", signed=True)


class LeaderLock(Protocol):
    def try_acquire(self) -> bool: ...

    def release(self) -> None: ...


class PgAdvisoryLock:
    def __init__(self, engine: Engine, key: int = ANCHOR_LOCK_KEY) -> None:
        self.engine = engine
        self.key = key
        self._conn: Any = None

    def try_acquire(self) -> bool:
        if self._conn is not None:
            return True
        conn = self.engine.connect()
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
        conn.commit()
        if got:
            self._conn = conn
        else:
            conn.close()
        return got

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self._conn.commit()
            finally:
                self._conn.close()
                self._conn = None


class FileLeaderLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def leader_lock(engine: Engine, data_dir: Path) -> LeaderLock:
    if engine.dialect.name == "postgresql":
        return PgAdvisoryLock(engine)
    return FileLeaderLock(data_dir / "anchor.lock")
