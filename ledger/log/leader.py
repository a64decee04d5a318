"""Single-leader election for the background loops (anchoring, the alert monitor, the statistics
rollup, the subject indexer), the loop they share (:class:`LeaderLoop`), and the cursor-driven
loop of the workers that keep a table up with the log (:class:`CursorLoop`).

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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from ledger.errors import LedgerError
from ledger.store.db import Store
from ledger.store.models import LogHead

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


class CursorPolicy(Protocol):
    @property
    def interval(self) -> float: ...  # seconds between passes when nobody pokes the loop

    @property
    def max_backoff(self) -> float: ...

    @property
    def batch(self) -> int: ...  # log entries per transaction, at most


class CursorLoop(LeaderLoop):
    """A :class:`LeaderLoop` that keeps something derived from the log up with it by a cursor row
    (the statistics rollups, the data-subject index): :meth:`process` one chunk, :meth:`catch_up`
    all, or :meth:`start` the loop.

    A chunk is ``[cursor, cursor + batch)`` of log indices (never past the head: appends commit in
    index order). :meth:`apply` writes what the chunk adds and the cursor moves, in **one**
    transaction that first locks the cursor row, so a crash leaves both unchanged and two workers
    (a lost leader lock) cannot both add a chunk. Subclasses set ``cursor_model`` and ``batch`` and
    implement :meth:`apply` and :meth:`restart`."""

    cursor_model: Any  # the cursor's ORM class: ``id``, ``next_index``, ``updated_at``
    cursor_id = 1

    def __init__(self, *, store: Store, policy: CursorPolicy, logger: logging.Logger) -> None:
        self.store = store
        self.batch = policy.batch
        super().__init__(wait=policy.interval, max_backoff=policy.max_backoff, logger=logger)
        self._lock = threading.Lock()

    @abstractmethod
    def apply(self, session: Session, start: int, end: int) -> int:
        """Add log entries ``[start, end)``; return where the cursor moves (``end``, or less to
        stop the chunk early)."""

    @abstractmethod
    def restart(self, session: Session) -> None:
        """The cursor row is gone (removed by hand): make the derived data fit a cursor of 0."""

    def status(self) -> tuple[int, int]:
        """(the cursor, the log's size): how far behind the log this is."""
        with self.store.read() as session:
            return cursor_at(session, self.cursor_model, self.cursor_id) or 0, log_size(session)

    def process(self, *, batch: int | None = None) -> int:
        """Process the next chunk and move the cursor, in one transaction. Returns how many log
        entries that was (0: caught up)."""
        at, size = self.status()
        if at >= size:
            return 0
        model = self.cursor_model
        with self._lock, self.store.session() as session:
            row = session.scalars(
                select(model).where(model.id == self.cursor_id).with_for_update()
            ).one_or_none()
            if row is None:
                self._log.warning("%s: no cursor row; starting again from the log's first entry", self.what)
                self.restart(session)
                row = model(id=self.cursor_id, next_index=0, updated_at=datetime.now(UTC))
                session.add(row)
                session.flush()
            start = int(row.next_index)
            end = min(log_size(session), start + (batch or self.batch))
            if end <= start:
                return 0
            end = self.apply(session, start, end)
            row.next_index = end
            row.updated_at = datetime.now(UTC)
        return end - start

    def catch_up(self, *, batch: int | None = None) -> int:
        """Process everything appended so far; return how many log entries that was."""
        done = 0
        while (n := self.process(batch=batch)) > 0:
            done += n
        return done

    def tick(self, *, retrying: bool) -> None:
        while not self._stop.is_set() and self.process() > 0:
            pass


def cursor_at(session: Session, model: Any, cursor_id: int) -> int | None:
    """A cursor row's ``next_index`` (None: no row)."""
    at = session.scalar(select(model.next_index).where(model.id == cursor_id))
    return None if at is None else int(at)


def log_size(session: Session) -> int:
    return int(session.scalar(select(LogHead.size).where(LogHead.id == 1)) or 0)
