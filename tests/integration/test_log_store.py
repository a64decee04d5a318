"""The SQL Merkle log on SQLite and PostgreSQL: proofs equal the RFC reference, appends are
transactional, idempotent, gap-free under concurrent writers, and append-only by trigger."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ledger.canonical import canonical_json
from ledger.errors import Conflict, InvalidInput
from ledger.log import _reference as ref
from ledger.log import merkle
from ledger.log.store import LogStore, NewEntry
from ledger.store.db import Store

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _entry(i: int, tag: str = "e") -> NewEntry:
    return NewEntry(event_id=f"{tag}{i}", kind="access", time=NOW, event={"n": i, "tag": tag})


@pytest.fixture
def log(db_url: str) -> Iterator[LogStore]:
    store = Store(db_url)
    store.migrate()
    yield LogStore(store)
    store.close()


def test_proofs_match_the_rfc_reference(log: LogStore) -> None:
    # Beyond 256 leaves a proof splits at the leaf's tile (whole tiles) or its perfect subtree
    # (the leaves past the last whole tile): both sides of that border, at several sizes.
    sizes = [1, 2, 3, 5, 8, 13, 64, 100, 129, 256, 257, 520, 767, 1030]
    total = 0
    for size in sizes:
        log.append([_entry(i) for i in range(total, size)])
        total = size
    leaves = [merkle.leaf_hash(canonical_json({"n": i, "tag": "e"})) for i in range(total)]
    cold = LogStore(log.store)  # each size's proofs from an empty node cache, then warm
    for size in sizes:
        assert log.root(size) == ref.mth(leaves[:size])
        for index in range(size):
            proof = log.inclusion_proof(index, size)
            assert proof == ref.inclusion_proof(index, size, leaves)
            merkle.verify_inclusion(leaves[index], index, size, proof, ref.mth(leaves[:size]))
            assert cold.leaf_and_inclusion_proof(index, size) == (leaves[index], proof)
        cold = LogStore(log.store)
    # Again, every node cached and every tile's upper part memoised: the warm path.
    assert any(height == 8 for _, height, _ in log._upper)
    for index in range(total):
        assert log.leaf_and_inclusion_proof(index, total) == (
            leaves[index],
            ref.inclusion_proof(index, total, leaves),
        )
    indices = [0, 5, 64, 128, 77, 255, 256, 767, 768, 1023, 1024, 1029]
    assert log.inclusion_proofs(indices, total) == [ref.inclusion_proof(i, total, leaves) for i in indices]
    for first in (1, 3, 8, 64, 100):
        assert log.consistency_proof(first, total) == ref.consistency_proof(first, total, leaves)
    assert log.frontier().root() == ref.mth(leaves)
    with pytest.raises(InvalidInput) as info:
        log.inclusion_proof(0, total + 1)
    assert info.value.code == "tree_size_too_large"
    for index in (-1, -256, total):
        with pytest.raises(InvalidInput) as info:
            log.inclusion_proof(index, total)
        assert info.value.code == "index_out_of_range"


def test_idempotent_and_conflicting_event_ids(log: LogStore) -> None:
    first = log.append([_entry(0), _entry(1)])
    assert [(a.index, a.duplicate) for a in first] == [(0, False), (1, False)]
    again = log.append([_entry(1), _entry(2)])
    assert [(a.event_id, a.index, a.duplicate) for a in again] == [("e1", 1, True), ("e2", 2, False)]
    changed = NewEntry(event_id="e0", kind="access", time=NOW, event={"n": 999})
    with pytest.raises(Conflict) as info:
        log.append([changed])
    assert info.value.code == "event_id_conflict"
    with pytest.raises(InvalidInput) as bad:
        log.append([_entry(5), _entry(5)])
    assert bad.value.code == "duplicate_event_id"
    assert log.size() == 3


def test_concurrent_writers_get_one_gap_free_sequence(log: LogStore) -> None:
    errors: list[BaseException] = []

    def writer(tag: str) -> None:
        try:
            for batch in range(10):
                log.append([_entry(batch * 5 + k, tag) for k in range(5)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"w{t}-",)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert log.size() == 200
    rows = log.entries(0, 1000)
    assert [r.index for r in rows] == list(range(200))
    leaves = [merkle.leaf_hash(r.entry) for r in rows]
    assert log.root(200) == ref.mth(leaves), "stored nodes agree with the rows, whatever the interleaving"


def test_log_rows_are_append_only(log: LogStore) -> None:
    log.append([_entry(0)])
    for statement in (
        "UPDATE log_entries SET kind = 'x' WHERE idx = 0",
        "DELETE FROM log_entries WHERE idx = 0",
        "UPDATE log_nodes SET hash = hash",
        "DELETE FROM log_nodes",
    ):
        with pytest.raises(DBAPIError, match="append-only"), log.store.engine.begin() as conn:
            conn.execute(text(statement))
    assert log.size() == 1 and len(log.entries(0, 1)) == 1


def test_node_reads_see_every_later_append(log: LogStore) -> None:
    """SQLite serves node reads through the thread's raw reader (``Store.raw_reader``), outside any
    transaction: each read sees what has committed since, never an old snapshot."""
    raw = log.store.raw_reader()
    assert (raw is not None) == (log.store.dialect == "sqlite")
    reader = LogStore(log.store)
    leaves: list[bytes] = []
    for size in (1, 3, 9, 300):
        log.append([_entry(i, "late") for i in range(len(leaves), size)])
        leaves += [
            merkle.leaf_hash(canonical_json({"n": i, "tag": "late"})) for i in range(len(leaves), size)
        ]
        assert reader.leaf_and_inclusion_proof(size - 1, size) == (
            leaves[size - 1],
            ref.inclusion_proof(size - 1, size, leaves),
        )
    assert log.store.raw_reader() is raw  # one per thread, reused
    seen: list[object] = []
    worker = threading.Thread(target=lambda: seen.append(log.store.raw_reader()))
    worker.start()
    worker.join()
    assert raw is None or (seen[0] is not None and seen[0] is not raw)
    log.store.close()
    if raw is not None:
        with pytest.raises(sqlite3.ProgrammingError):  # closed with the store
            raw.execute("SELECT 1")


def test_a_memory_database_has_no_raw_reader() -> None:
    store = Store("sqlite://")
    assert store.raw_reader() is None
    store.close()
