"""``LogStore.bulk_load``: the scattered trail indexes of ``log_entries`` left out while a large import is
appended and built once at its end — on a normal end, on an error inside, and, after a process that
died inside, by the next start (``Store.migrate`` → ``Store.ensure_indexes``). The log appended
inside is the log appended outside: same roots, same trail answers, same uniqueness — on SQLite and
PostgreSQL."""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Table

from ledger.audit.trail import TrailQuery, TrailService
from ledger.errors import Conflict
from ledger.log.store import LogStore, NewEntry
from ledger.store.db import Store, _index_names
from ledger.store.models import Base, LogEntry, Party
from ledger.types import PartyKind

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
REGULATOR = Party(id="regulator", kind=PartyKind.REGULATOR, name="监管")
TRAIL_INDEXES = sorted(str(ix.name) for ix in cast(Table, LogEntry.__table__).indexes)
# left out by a bulk load: the indexes led by the resource (one insertion point per catalog item);
# those led by the time, the kind, the purpose, a party or a grant take each entry at the right edge of
# one of a few hundred ranges at most, and stay
DEFERRED = {"ix_log_entries_resource_idx", "ix_log_entries_resource_window"}
KEPT = set(TRAIL_INDEXES) - DEFERRED


def _entries(start: int, count: int, rng: random.Random) -> list[NewEntry]:
    out = []
    for n in range(start, start + count):
        accessor, resource = f"dept-{rng.randrange(4)}", f"res-{rng.randrange(9)}"
        at = T0 + timedelta(minutes=n + rng.randrange(-30, 30))  # some recorded late
        event: dict[str, Any] = {
            "kind": "access",
            "accessor": accessor,
            "provider": f"prov-{rng.randrange(3)}",
            "resource": resource,
            "purpose": rng.choice(["P01", "P02"]),
            "mode": rng.choice(["raw", "masked"]),
            "time": at.isoformat(),
        }
        out.append(NewEntry(f"e-{n}", "access", at, event, accessor=accessor, resource=resource))
    return out


def _present(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        return _index_names(conn) & set(TRAIL_INDEXES)


def _schema_diff(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


def _all_pages(trail: TrailService, **filters: Any) -> list[int]:
    got: list[int] = []
    before = None
    while True:
        page = trail.query(REGULATOR, TrailQuery(limit=50, before=before, **filters))
        got += [item["index"] for item in page["items"]]
        if (before := page["next_before"]) is None:
            return got


FILTERS: list[dict[str, Any]] = [
    {},
    {"accessor": "dept-1"},
    {"resource": "res-3", "since": T0 + timedelta(hours=1), "until": T0 + timedelta(hours=3)},
    {"party": "prov-2", "purpose": "P02"},
    {"since": T0 + timedelta(minutes=90), "until": T0 + timedelta(minutes=200)},
]


def test_a_bulk_load_is_the_same_log_with_its_indexes_built_at_the_end(db_url: str, tmp_path: Any) -> None:
    rng = random.Random(5)
    batches = [_entries(n, 40, rng) for n in range(0, 400, 40)]
    plain_url = f"sqlite:///{tmp_path / 'plain.sqlite'}"
    plain = Store(plain_url)
    plain.migrate()
    bulk = Store(db_url)
    bulk.migrate()
    assert bulk.ensure_indexes() == []  # nothing missing: one catalogue query, nothing built
    plain_log, bulk_log = LogStore(plain), LogStore(bulk)
    for batch in batches:
        plain_log.append(batch)
    with bulk_log.bulk_load():
        assert _present(bulk) == KEPT  # the scattered ones are out while the import runs
        assert len(KEPT) == 9
        for batch in batches:
            bulk_log.append(batch)
        # the event_id constraint is kept: a retry is a duplicate, a changed event a conflict
        assert bulk_log.append(batches[0][:1])[0].duplicate
        changed = batches[0][0]
        with pytest.raises(Conflict) as clash:
            bulk_log.append([NewEntry(changed.event_id, "access", T0, {"kind": "access", "x": 1})])
        assert clash.value.code == "event_id_conflict"
        # and reads are exact without them (slow at scale, not wrong)
        inside = TrailService(store=bulk, hash_subject=lambda s: s)
        assert _all_pages(inside, resource="res-3") == _all_pages(
            TrailService(store=plain, hash_subject=lambda s: s), resource="res-3"
        )
    assert _present(bulk) == set(TRAIL_INDEXES)
    assert _schema_diff(bulk) == []
    assert bulk_log.size() == plain_log.size() == 400
    assert bulk_log.root(400) == plain_log.root(400)
    trails = [TrailService(store=s, hash_subject=lambda s: s) for s in (plain, bulk)]
    for filters in FILTERS:
        expected = _all_pages(trails[0], **filters)
        assert expected, filters
        assert _all_pages(trails[1], **filters) == expected, filters
    plain.close()
    bulk.close()


def test_an_error_inside_a_bulk_load_still_builds_the_indexes(db_url: str) -> None:
    store = Store(db_url)
    store.migrate()
    log = LogStore(store)
    with pytest.raises(RuntimeError, match="the import failed"), log.bulk_load():
        log.append(_entries(0, 30, random.Random(1)))
        raise RuntimeError("the import failed")
    assert _present(store) == set(TRAIL_INDEXES)
    assert log.size() == 30  # what was committed stays
    store.close()


DIES_INSIDE = """
import os, random, sys
from tests.integration.test_bulk_load import _entries
from ledger.log.store import LogStore
from ledger.store.db import Store
store = Store(sys.argv[1])
log = LogStore(store)
with log.bulk_load():
    log.append(_entries(0, 50, random.Random(2)))
    os._exit(9)  # killed: the block never ends
"""


def test_a_process_that_died_inside_a_bulk_load_gets_its_indexes_at_the_next_start(db_url: str) -> None:
    store = Store(db_url)
    store.migrate()
    store.close()
    died = subprocess.run(
        [sys.executable, "-c", DIES_INSIDE, db_url], cwd=ROOT, capture_output=True, text=True
    )
    assert died.returncode == 9, died.stderr
    reopened = Store(db_url)  # opened without migrate: as the dead process left it
    assert _present(reopened) == KEPT
    assert LogStore(reopened).size() == 50  # its committed append stays
    reopened.close()
    again = Store(db_url)
    again.migrate()  # every start
    assert _present(again) == set(TRAIL_INDEXES)
    assert _schema_diff(again) == []
    trail = TrailService(store=again, hash_subject=lambda s: s)
    expected = [e for e in _entries(0, 50, random.Random(2)) if e.accessor == "dept-0"]
    assert len(_all_pages(trail, accessor="dept-0")) == len(expected) > 0
    assert again.ensure_indexes() == []
    again.close()
