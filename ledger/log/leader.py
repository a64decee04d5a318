"""Single-leader election for the background loops (anchoring, the alert monitor, the statistics
rollup), and the loop they share (:class:`LeaderLoop`).

Several API workers (or hosts) may serve the same log; exactly one should anchor, or they would race
each other's ``anchor`` transactions (harmless — the contract refuses a stale size — but wasteful).
On PostgreSQL the leader holds a session-level advisory lock on a dedicated connection: if the
leader dies, its connection closes and the lock passes to the next worker that asks. On SQLite the
leader holds an exclusive ``flock`` on ``<data dir>/anchor.lock`` (SQLite and the embedded chain
are single-host by nature).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine, text

from ledger.errors import LedgerError

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


def leader_lock(
    engine: Engine, data_dir: Path, *, key: int = ANCHOR_LOCK_KEY, file: str = "anchor.lock"
) -> LeaderLock:
    """A loop's leader lock: the advisory ``key`` on PostgreSQL, ``<data dir>/<file>`` on SQLite.
    Each loop has its own, so one worker may anchor while another evaluates alerts."""
    if engine.dialect.name == "postgresql":
        return PgAdvisoryLock(engine, key)
    return FileLeaderLock(data_dir / file)


class LeaderLoop(ABC):
    """A background thread that works only while it holds its leader lock (when one is set).

    Every ``wait`` seconds, or at once after :meth:`poke`, the loop takes the lock and calls
    :meth:`tick`. A ``retryable`` error backs off exponentially from ``first_backoff`` up to
    ``max_backoff`` and is kept in ``last_error``; anything else is logged with its traceback and
    waits ``max_backoff``. Subclasses set the class attributes and implement :meth:`tick`."""

    thread_name = "sharetrail-loop"
    what = "background loop"  # for the log
    lock_key = ANCHOR_LOCK_KEY  # its leader lock (see :meth:`elect`)
    lock_file = "anchor.lock"
    retryable: tuple[type[LedgerError], ...] = (LedgerError,)
    first_backoff = 0.5

    def __init__(self, *, wait: float, max_backoff: float, logger: logging.Logger) -> None:
        self.leader: LeaderLock | None = None  # when set, the loop works only while holding it
        self.is_leader = False
        self.failures = 0
        self.last_error: str | None = None
        self._loop_wait = wait
        self._max_backoff = max_backoff
        self._log = logger
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def elect(self, engine: Engine, data_dir: Path) -> LeaderLock:
        """Work only while holding this loop's own leader lock (:func:`leader_lock`); returns it."""
        self.leader = leader_lock(engine, data_dir, key=self.lock_key, file=self.lock_file)
        return self.leader

    @abstractmethod
    def tick(self, *, retrying: bool) -> None:
        """One round of work (``retrying``: the previous round failed)."""

    def on_start(self) -> None:  # noqa: B027 - an optional hook; by default there is nothing to reset
        """Reset per-run state before the thread starts."""

    def poke(self) -> None:
        """Wake the loop now (entries were appended)."""
        self._wake.set()

    def run(self) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            self._wake.wait(timeout=backoff or self._loop_wait)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                if self.leader is not None:
                    self.is_leader = self.leader.try_acquire()
                    if not self.is_leader:
                        backoff = self._loop_wait
                        continue
                self.tick(retrying=backoff > 0)
                backoff = 0.0
                self.failures = 0
                self.last_error = None
            except self.retryable as exc:
                self.failures += 1
                self.last_error = f"{exc.code}: {exc.message}"
                backoff = min(self._max_backoff, self.first_backoff * 2 ** min(self.failures, 8))
                self._log.warning("%s failed (%s); retrying in %.1fs", self.what, self.last_error, backoff)
            except Exception:
                self.failures += 1
                self.last_error = "unexpected error (see log)"
                backoff = self._max_backoff
                self._log.exception("%s failed unexpectedly", self.what)

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self.on_start()
            self._thread = threading.Thread(target=self.run, name=self.thread_name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self.leader is not None:
            self.leader.release()
            self.is_leader = False
