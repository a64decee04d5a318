"""``log_time_blocks`` (migration 0016): the append keeps each block's time span, the migration fills
it from an existing log, and a trail time window bounded by it finds exactly what the log holds —
late and out-of-order events included — on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from ledger.audit import trail as trail_module
from ledger.audit.trail import MAX_EXPORT, TrailQuery, TrailService
from ledger.log import store as log_store
from ledger.log.events import AccessMode, EventKind
from ledger.log.store import LogStore, NewEntry, time_blocks
from ledger.store.db import Store, make_engine
from ledger.store.models import LogTimeBlock, Party
from ledger.types import PartyKind
from tests.support.migrations import alembic_to

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
REGULATOR = Party(id="regulator", kind=PartyKind.REGULATOR, name="监管")


def test_time_blocks_of_a_batch() -> None:
    hour = timedelta(hours=1)
    times = [T0 + 5 * hour, T0, T0 + 9 * hour, T0 + 2 * hour, T0 - hour]
    # base 1,022: indices 1,022 and 1,023 in block 0, the rest in block 1
    assert time_blocks(1_022, times) == {0: (T0, T0 + 5 * hour), 1: (T0 - hour, T0 + 9 * hour)}
    assert time_blocks(0, []) == {}


def _blocks(store: Store) -> dict[int, tuple[datetime, datetime]]:
    with store.read() as session:
        rows = session.query(LogTimeBlock).all()
        return {r.block: (_utc(r.min_time), _utc(r.max_time)) for r in rows}


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _entry(n: int, moment: datetime, rng: random.Random) -> NewEntry:
    accessor = f"dept-{rng.randrange(3)}"
    kind = "denied" if rng.random() < 0.2 else "access"
    event = {
        "kind": kind,
        "accessor": accessor,
        "provider": "provider-1",
        "resource": f"res-{rng.randrange(2)}",
        "purpose": "P01",
        "mode": rng.choice(["raw", "masked"]),
        "time": moment.isoformat(),
    }
    return NewEntry(f"e-{n}", kind, moment, event, accessor=accessor, resource=event["resource"])


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """Blocks of 8 log indices, so a test log spans many of them."""
    monkeypatch.setattr(log_store, "TIME_BLOCK_BITS", 3)
    yield 3


@pytest.mark.parametrize("walk", [True, False])
def test_windows_find_exactly_the_entries_in_them(
    db_url: str, small_blocks: int, walk: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every plan of a window: by log index alone; beside a column, that column's window index
    walked newest first in time — exact, or handed to the sort plan when a late event could be
    missed (both happen here) — and (``walk`` off) the sort plan alone."""
    if not walk:
        monkeypatch.setattr(trail_module, "_WINDOWED", ())
    outcomes: list[bool] = []
    walk_in_time = TrailService._walk_in_time

    def recording(self: TrailService, *args: Any) -> Any:
        rows = walk_in_time(self, *args)
        outcomes.append(rows is not None)
        return rows

    monkeypatch.setattr(TrailService, "_walk_in_time", recording)
    rng = random.Random(16)
    store = Store(db_url)
    store.migrate()
    log = LogStore(store)
    times: list[datetime] = []
    for _ in range(6):  # hourly events in time order, a few recorded late with old times
        entries: list[NewEntry] = []
        for _n in range(rng.randrange(1, 15)):
            n = len(times) + len(entries)
            moment = T0 + timedelta(hours=n)
            if rng.random() < 0.15:
                moment = T0 + timedelta(hours=rng.randrange(n + 1), minutes=30)
            entries.append(_entry(n, moment, rng))
        log.append(entries)
        times += [e.time for e in entries]
    expected: dict[int, tuple[datetime, datetime]] = {}
    for idx, moment in enumerate(times):
        lo, hi = expected.get(idx >> small_blocks, (moment, moment))
        expected[idx >> small_blocks] = (min(lo, moment), max(hi, moment))
    assert _blocks(store) == expected

    with store.read() as session:
        rows = session.execute(text("SELECT idx, kind, accessor, mode, resource FROM log_entries")).all()
    facts = {int(i): (k, a, m, r) for i, k, a, m, r in rows}
    trail = TrailService(store=store, hash_subject=lambda s: s)
    last = len(times) + 2
    for _ in range(60):
        a, b = sorted(rng.sample(range(-2, last), 2))
        since, until = T0 + timedelta(hours=a, minutes=15), T0 + timedelta(hours=b)
        extras: list[dict[str, Any]] = [
            {},
            {"accessor": "dept-1"},
            {"kind": EventKind.DENIED},
            {"mode": AccessMode.RAW},
            {"accessor": "dept-2", "mode": AccessMode.MASKED},
            {"resource": "res-1", "kind": EventKind.ACCESS},
            {"resource": "res-0", "accessor": "dept-0"},
        ]
        for extra in extras:
            query = TrailQuery(since=since, until=until, limit=4, **extra)
            want = [
                i
                for i in sorted(facts, reverse=True)
                if since <= times[i] < until
                and extra.get("accessor", facts[i][1]) == facts[i][1]
                and getattr(extra.get("kind"), "value", facts[i][0]) == facts[i][0]
                and getattr(extra.get("mode"), "value", facts[i][2]) == facts[i][2]
                and extra.get("resource", facts[i][3]) == facts[i][3]
            ]
            got: list[int] = []
            before = None
            while True:  # every page, by the keyset cursor
                page = trail.query(REGULATOR, replace(query, before=before))
                got += [item["index"] for item in page["items"]]
                before = page["next_before"]
                if before is None:
                    break
            assert got == want, (since, until, extra)
            exported = trail.export_csv(REGULATOR, replace(query, limit=MAX_EXPORT))
            assert [
                int(row["index"]) for row in csv.DictReader(io.StringIO(exported.lstrip("\ufeff")))
            ] == want
    # A window before the log, or after it: no blocks, no entries.
    outside: list[tuple[datetime, datetime | None]] = [
        (T0 - timedelta(days=9), T0 - timedelta(days=8)),
        (T0 + timedelta(days=99), None),
    ]
    for start, end in outside:
        assert trail.query(REGULATOR, TrailQuery(since=start, until=end))["items"] == []
    if walk:  # the walk answered most pages, and found a late event to hand over now and then
        assert outcomes.count(True) > 100 and outcomes.count(False) > 0, outcomes.count(False)
    store.close()


def _insert_entries(engine: Engine, times: dict[int, datetime]) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO log_entries (idx, event_id, kind, time, request_hash, entry) "
                "VALUES (:idx, :event_id, 'access', :time, :hash, :entry)"
            ),
            [
                {
                    "idx": i,
                    "event_id": f"e-{i}",
                    "time": moment.strftime("%Y-%m-%d %H:%M:%S.%f")
                    if engine.dialect.name == "sqlite"
                    else moment,
                    "hash": bytes(32),
                    "entry": b"{}",
                }
                for i, moment in times.items()
            ],
        )


def _spans(times: dict[int, datetime], bits: int) -> dict[int, tuple[datetime, datetime]]:
    spans: dict[int, list[datetime]] = {}
    for i, moment in times.items():
        spans.setdefault(i >> bits, []).append(moment)
    return {b: (min(ts), max(ts)) for b, ts in spans.items()}


def _tables(engine: Engine) -> set[str]:
    sql = (
        "SELECT name FROM sqlite_master"
        if engine.dialect.name == "sqlite"
        else "SELECT tablename FROM pg_tables"
    )
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(text(sql))}


INDICES = [0, 1, 5, 1_023, 1_024, 5_000, 16_383, 16_384, 16_390, 40_000, 40_001]


def test_0016_fills_the_blocks_of_an_existing_log(db_url: str) -> None:
    engine = make_engine(db_url)
    rng = random.Random(0)
    times = {i: T0 + timedelta(minutes=rng.randrange(10_000)) for i in INDICES}
    try:
        alembic_to(engine, "0015")
        _insert_entries(engine, times)
        alembic_to(engine, "0016")
        store = Store(str(engine.url.render_as_string(hide_password=False)))
        assert _blocks(store) == _spans(times, 14)
        store.close()
        alembic_to(engine, "0015", down=True)
        assert "log_time_blocks" not in _tables(engine)
    finally:
        engine.dispose()


def test_0018_cuts_the_blocks_finer_and_back(db_url: str) -> None:
    engine = make_engine(db_url)
    rng = random.Random(1)
    times = {i: T0 + timedelta(minutes=rng.randrange(10_000)) for i in INDICES}
    try:
        alembic_to(engine, "0017")
        _insert_entries(engine, times)
        alembic_to(engine, "0018")
        store = Store(str(engine.url.render_as_string(hide_password=False)))
        assert log_store.TIME_BLOCK_BITS == 10
        assert _blocks(store) == _spans(times, 10)
        alembic_to(engine, "0017", down=True)
        assert _blocks(store) == _spans(times, 14)
        store.close()
    finally:
        engine.dispose()
