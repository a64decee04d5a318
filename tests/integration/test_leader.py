"""One anchoring leader at a time: PostgreSQL advisory lock, or a file lock with SQLite."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from ledger.log.leader import FileLeaderLock, PgAdvisoryLock


def test_file_lock_has_one_holder(tmp_path: Path) -> None:
    a, b = FileLeaderLock(tmp_path / "anchor.lock"), FileLeaderLock(tmp_path / "anchor.lock")
    assert a.try_acquire() and a.try_acquire(), "re-entrant for its holder"
    assert not b.try_acquire()
    a.release()
    assert b.try_acquire()
    b.release()


@pytest.mark.postgres
def test_advisory_lock_has_one_holder_and_passes_on(pg_url: str) -> None:
    engine_a, engine_b = create_engine(pg_url), create_engine(pg_url)  # two workers, two pools
    a, b = PgAdvisoryLock(engine_a), PgAdvisoryLock(engine_b)
    try:
        assert a.try_acquire()
        assert not b.try_acquire()
        a.release()
        assert b.try_acquire()
        b._conn.invalidate()  # the leader's connection dies: the server frees its lock
        b._conn = None
        # The server frees the lock when it notices the closed session: soon, not instantly.
        deadline = time.monotonic() + 10
        while not a.try_acquire():
            assert time.monotonic() < deadline, "the dead leader's lock was never freed"
            time.sleep(0.05)
        a.release()
    finally:
        engine_a.dispose()
        engine_b.dispose()
