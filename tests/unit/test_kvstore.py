"""The embedded chain's key-value store: buffered writes, atomic durable commits, reopen."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.chain.kvstore import SQLiteKV


def test_buffered_until_commit_then_durable(tmp_path: Path) -> None:
    db = SQLiteKV(tmp_path / "kv.sqlite")
    db[b"a"] = b"1"
    db[b"b"] = b"2"
    assert db[b"a"] == b"1" and db.exists(b"b") and db.pending_writes == 2
    other = SQLiteKV(tmp_path / "kv.sqlite")
    assert not other.exists(b"a"), "uncommitted writes must not be visible on disk"
    db.commit()
    assert db.pending_writes == 0
    assert other[b"a"] == b"1"
    del db[b"a"]
    with pytest.raises(KeyError):
        db[b"a"]
    db.commit()
    db.close()
    reopened = SQLiteKV(tmp_path / "kv.sqlite")
    assert not reopened.exists(b"a") and reopened[b"b"] == b"2"


def test_discard_drops_a_failed_block(tmp_path: Path) -> None:
    db = SQLiteKV(tmp_path / "kv.sqlite")
    db[b"k"] = b"v"
    db.discard()
    with pytest.raises(KeyError):
        db[b"k"]
    with pytest.raises(KeyError):
        del db[b"missing"]


def test_sqlite_is_wal_and_synchronous_full(tmp_path: Path) -> None:
    db = SQLiteKV(tmp_path / "kv.sqlite")
    assert db._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
