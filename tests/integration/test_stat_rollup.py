"""The statistics rollup (``ledger/audit/rollup.py``): the counts from the rollups and the log's live
tail equal the counts from the log alone — for random periods with partial days, narrowed to a party
or a resource, before, during and after the catch-up, with events reported out of time order — and
the worker adds each log entry exactly once, resuming from its cursor. SQLite and PostgreSQL."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from ledger.audit import rollup as rollup_module
from ledger.audit.rollup import (
    CST,
    ExchangeScope,
    Grain,
    RollupPolicy,
    StatRollupWorker,
    log_exchanges,
    midnight,
    rolled_exchanges,
    whole_days,
)
from ledger.audit.stats import Counting, StatisticsService
from ledger.log.store import LogStore, NewEntry
from ledger.store.db import Store
from ledger.store.models import (
    LogEntry,
    Party,
    Resource,
    StatAccessorTotal,
    StatResourceTotal,
    StatRollup,
    StatRollupCursor,
)
from ledger.types import Custody, OpenType, PartyKind, ShareType

START = datetime(2026, 8, 20, tzinfo=UTC)
BJ_OCT_1 = datetime(2026, 9, 30, 16, tzinfo=UTC)  # Beijing midnight starting 1 October
SPAN_DAYS = 100
PROVIDERS = ("p" * 31 + "1", "p" * 31 + "2")
ACCESSORS = ("a" * 31 + "1", "a" * 31 + "2", "a" * 31 + "3", PROVIDERS[1])
RESOURCES = {"r" * 31 + "1": ("GY-A-001", PROVIDERS[0]), "r" * 31 + "2": ("GY-B-002", PROVIDERS[1])}


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = Store(db_url)
    opened.migrate()
    with opened.session() as session:
        for seq, pid in enumerate((*PROVIDERS, *ACCESSORS[:3])):
            session.add(
                Party(
                    id=pid,
                    kind=PartyKind.DEPARTMENT,
                    name=f"department {seq}",
                    uscc=f"{seq:018d}",
                    address=f"0x{seq:040x}",
                    custody=Custody.CUSTODIAL,
                    token_hash=f"{seq:064x}",
                )
            )
        for rid, (code, provider) in RESOURCES.items():
            session.add(
                Resource(
                    id=rid,
                    code=code,
                    provider_id=provider,
                    name=code,
                    version=1,
                    share_type=ShareType.CONDITIONAL,
                    open_type=OpenType.NONE,
                    level=2,
                    metadata_json="{}",
                    metadata_hash=b"\0" * 32,
                )
            )
    try:
        yield opened
    finally:
        opened.close()


class Feed:
    """Random events in log order whose times are not in time order (an external platform reports
    late and out of order), with Beijing midnights hit exactly, events naming no provider (or an
    empty one), resources named by id or by catalog code, and refusals."""

    def __init__(self, store: Store, seed: int) -> None:
        self.log = LogStore(store)
        self.rng = random.Random(seed)
        self.seq = 0

    def when(self) -> datetime:
        rng = self.rng
        if rng.random() < 0.1:  # exactly a Beijing midnight, or a microsecond before one
            day = (START + timedelta(days=rng.randrange(SPAN_DAYS))).astimezone(CST).date()
            return midnight(day) - timedelta(microseconds=rng.choice((0, 1)))
        return START + timedelta(microseconds=rng.randrange(SPAN_DAYS * 86_400 * 10**6))

    def event(self) -> NewEntry:
        rng = self.rng
        self.seq += 1
        rid = rng.choice(list(RESOURCES))
        resource = rng.choice((rid, rid, RESOURCES[rid][0], "unknown-resource"))
        provider = rng.choice((RESOURCES[rid][1], RESOURCES[rid][1], None, "", PROVIDERS[0]))
        kind = "denied" if rng.random() < 0.1 else "access"
        when = self.when()
        body = {"event_id": f"ev-{self.seq}", "kind": kind, "resource": resource, "time": when.isoformat()}
        if provider is not None:
            body["provider"] = provider
        return NewEntry(
            event_id=f"ev-{self.seq}",
            kind=kind,
            time=when,
            event=body,
            accessor=rng.choice(ACCESSORS),
            resource=resource,
        )

    def append(self, n: int, *, batch: int = 250) -> None:
        for done in range(0, n, batch):
            self.log.append([self.event() for _ in range(min(batch, n - done))])


def random_period(rng: random.Random) -> tuple[datetime | None, datetime | None]:
    def moment() -> datetime:
        if rng.random() < 0.3:  # on a Beijing midnight: whole days at that end
            return midnight((START + timedelta(days=rng.randrange(-3, SPAN_DAYS + 3))).astimezone(CST).date())
        return START + timedelta(seconds=rng.randrange(-3 * 86_400, (SPAN_DAYS + 3) * 86_400))

    a = moment()
    short = timedelta(hours=rng.randrange(1, 20))
    b = a + rng.choice((short, timedelta(days=rng.randrange(1, 75), seconds=rng.randrange(86_400))))
    return rng.choice(((a, b), (a, b), (a, b), (None, b), (a, None), (None, None)))


def scopes(rng: random.Random, n: int) -> Iterator[ExchangeScope]:
    own = tuple(
        ref for rid, (code, provider) in RESOURCES.items() if provider == PROVIDERS[0] for ref in (rid, code)
    )
    for _ in range(n):
        since, until = random_period(rng)
        yield ExchangeScope(since, until)
        yield ExchangeScope(since, until, party=PROVIDERS[0], own=own)
        yield ExchangeScope(since, until, party=rng.choice(ACCESSORS))
        rid = rng.choice(list(RESOURCES))
        yield ExchangeScope(since, until, resource=(rid, RESOURCES[rid][0]))


def assert_exact(store: Store, rng: random.Random, n: int = 12) -> None:
    """The rollup path's counts and reports equal the log's, for ``n`` random periods."""
    with store.read() as session:
        for scope in scopes(rng, n):
            assert rolled_exchanges(session, scope).plain() == log_exchanges(session, scope).plain(), scope
    fast = StatisticsService(store=store)
    reference = StatisticsService(store=store, counting=Counting.LOG)
    for _ in range(3):
        since, until = random_period(rng)
        for party in (None, PROVIDERS[1], ACCESSORS[0]):
            got = fast.report(since=since, until=until, party_id=party).to_dict()
            assert got == reference.report(since=since, until=until, party_id=party).to_dict()
    got = fast.report(since=None, until=None, resource_id="GY-A-001").to_dict()
    assert got == reference.report(since=None, until=None, resource_id="GY-A-001").to_dict()


def accesses(store: Store, below: int | None = None) -> int:
    with store.read() as session:
        q = select(func.count()).select_from(LogEntry).where(LogEntry.kind == "access")
        if below is not None:
            q = q.where(LogEntry.idx < below)
        return int(session.scalar(q) or 0)


def rolled_totals(store: Store) -> dict[str, int]:
    """Sum of each rollup table (and grain): each must equal the accesses below the cursor."""
    with store.read() as session:
        out = {"stat_rollup": int(session.scalar(select(func.sum(StatRollup.exchanges))) or 0)}
        for model in (StatResourceTotal, StatAccessorTotal):
            for grain in Grain:
                total = session.scalar(select(func.sum(model.exchanges)).where(model.grain == grain.value))
                out[f"{model.__tablename__}/{grain}"] = int(total or 0)
    return out


def cursor(store: Store) -> int:
    with store.read() as session:
        return int(session.scalar(select(StatRollupCursor.next_index)) or 0)


def test_exact_before_during_and_after_catch_up(store: Store) -> None:
    feed, rng = Feed(store, seed=11), random.Random(5)
    feed.append(1500)
    assert cursor(store) == 0  # the migration's cursor: nothing rolled up yet
    assert_exact(store, rng)  # before: everything from the log's tail
    worker = StatRollupWorker(store=store, policy=RollupPolicy(batch=400))
    assert worker.process() == 400
    assert_exact(store, rng)  # during
    assert worker.process() == 400
    feed.append(300)  # appended while the catch-up is under way
    assert_exact(store, rng)
    assert worker.catch_up() == 1800 - 800
    assert worker.status() == (1800, 1800) and worker.process() == 0
    assert set(rolled_totals(store).values()) == {accesses(store)}
    assert_exact(store, rng)  # after
    feed.append(120)  # right after an append, before the worker's next pass
    assert_exact(store, rng)


def test_out_of_order_times_count_under_their_own_day(store: Store) -> None:
    """A late report dated in a day already rolled up adds to that day's rows, and the statistics
    count it the moment it is appended (from the tail) and after it is rolled up (from the day)."""
    feed = Feed(store, seed=12)
    feed.append(600)
    worker = StatRollupWorker(store=store)
    worker.catch_up()
    day = date(2026, 9, 10)
    fast = StatisticsService(store=store)

    def that_day() -> int:  # one whole day
        report = fast.report(since=midnight(day), until=midnight(day + timedelta(days=1)))
        return sum(m.count for m in report.by_month)

    before = that_day()
    late = [
        NewEntry(
            event_id=f"late-{i}",
            kind="access",
            time=midnight(day) + timedelta(hours=i),
            event={"event_id": f"late-{i}", "kind": "access", "provider": PROVIDERS[0], "resource": "x"},
            accessor=ACCESSORS[0],
            resource="late-resource",
        )
        for i in range(3)
    ]
    feed.log.append(late)
    assert that_day() == before + 3  # from the tail
    worker.catch_up()
    assert that_day() == before + 3  # from the rollup
    with store.read() as session:
        rows = session.execute(
            select(StatRollup.day, StatRollup.exchanges).where(StatRollup.resource == "late-resource")
        ).all()
        months = session.execute(
            select(StatResourceTotal.period, StatResourceTotal.exchanges).where(
                StatResourceTotal.resource == "late-resource", StatResourceTotal.grain == "month"
            )
        ).all()
    assert [(d, n) for d, n in rows] == [(day, 3)]
    assert [(p, n) for p, n in months] == [(date(2026, 9, 1), 3)]
    assert_exact(store, random.Random(6))


def test_restart_resumes_from_the_cursor(store: Store, db_url: str) -> None:
    """A new worker on a new connection continues where the last committed pass stopped: every entry
    is counted exactly once."""
    feed = Feed(store, seed=13)
    feed.append(900)
    first = StatRollupWorker(store=store, policy=RollupPolicy(batch=250))
    first.process()
    first.process()
    assert cursor(store) == 500
    store.engine.dispose()
    reopened = Store(db_url)
    try:
        second = StatRollupWorker(store=reopened, policy=RollupPolicy(batch=250))
        assert second.catch_up() == 400
        assert set(rolled_totals(reopened).values()) == {accesses(reopened)}
        assert_exact(reopened, random.Random(7), n=4)
    finally:
        reopened.close()


def test_a_failed_pass_changes_nothing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Counts and cursor commit together: a pass that fails part-way leaves both as they were."""
    Feed(store, seed=14).append(500)
    worker = StatRollupWorker(store=store, policy=RollupPolicy(batch=200))
    worker.process()
    kept = rolled_totals(store)
    real = rollup_module._upsert
    calls = {"n": 0}

    def failing(session: Any, model: Any, keys: Any, query: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # after the day rows and the resources' day rows were written
            raise RuntimeError("crash in the middle of a pass")
        real(session, model, keys, query)

    monkeypatch.setattr(rollup_module, "_upsert", failing)
    with pytest.raises(RuntimeError, match="crash"):
        worker.process()
    assert cursor(store) == 200 and rolled_totals(store) == kept
    monkeypatch.setattr(rollup_module, "_upsert", real)
    assert worker.catch_up() == 300
    assert set(rolled_totals(store).values()) == {accesses(store)}


def test_a_lost_cursor_row_rebuilds_and_reads_stay_exact(store: Store) -> None:
    feed = Feed(store, seed=15)
    feed.append(400)
    worker = StatRollupWorker(store=store)
    worker.catch_up()
    with store.session() as session:
        session.execute(delete(StatRollupCursor))
    assert_exact(store, random.Random(8), n=4)  # no cursor: nothing counts as rolled up
    assert worker.catch_up() == 400  # rebuilt from the first entry, not added twice
    assert set(rolled_totals(store).values()) == {accesses(store)}


def test_the_tail_read_either_way(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A short tail is read by log index, a long one (a catch-up under way) by the time window: the
    same counts."""
    Feed(store, seed=16).append(700)
    StatRollupWorker(store=store, policy=RollupPolicy(batch=300)).process()
    rng = random.Random(9)
    assert_exact(store, rng, n=4)
    monkeypatch.setattr(rollup_module, "TAIL_BY_INDEX", 10)
    assert_exact(store, rng, n=4)


def test_one_leader_rolls_up(store: Store, tmp_path: Any) -> None:
    """Every worker runs the loop; the lock holder works, the other waits."""
    Feed(store, seed=17).append(300)
    leader = StatRollupWorker(store=store, policy=RollupPolicy(interval=0.05))
    lock = leader.elect(store.engine, tmp_path)
    other = StatRollupWorker(store=store, policy=RollupPolicy(interval=0.05))
    other.elect(store.engine, tmp_path)
    assert lock.try_acquire()
    leader.start()
    other.start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while cursor(store) < 300 and datetime.now(UTC) < deadline:
            leader.poke()
            time.sleep(0.05)
        assert cursor(store) == 300
        assert leader.is_leader and not other.is_leader
    finally:
        other.stop()
        leader.stop()
    assert set(rolled_totals(store).values()) == {accesses(store)}


@pytest.mark.parametrize(
    ("since", "until", "first", "last"),
    [
        (BJ_OCT_1, BJ_OCT_1 + timedelta(days=2), date(2026, 10, 1), date(2026, 10, 2)),
        # a microsecond after a midnight, a minute before one: no whole day
        (
            BJ_OCT_1 + timedelta(microseconds=1),
            BJ_OCT_1 + timedelta(days=2, minutes=-1),
            date(2026, 10, 2),
            date(2026, 10, 1),
        ),
        (datetime(2026, 9, 30, 15, 59, tzinfo=UTC), None, date(2026, 10, 1), None),  # 23:59 in Beijing
        (None, datetime(2026, 9, 30, 16, tzinfo=UTC), None, date(2026, 9, 30)),
    ],
)
def test_whole_days_are_beijing_days(
    since: datetime | None, until: datetime | None, first: date | None, last: date | None
) -> None:
    assert whole_days(since, until) == (first, last)


def test_whole_months_are_read_from_month_rows() -> None:
    spans = rollup_module._spans(date(2025, 11, 25), date(2026, 11, 23))
    assert spans == [
        (Grain.MONTH, date(2025, 12, 1), date(2026, 10, 1)),
        (Grain.DAY, date(2025, 11, 25), date(2025, 11, 30)),
        (Grain.DAY, date(2026, 11, 1), date(2026, 11, 23)),
    ]
    assert rollup_module._spans(date(2026, 10, 25), date(2026, 11, 23)) == [
        (Grain.DAY, date(2026, 10, 25), date(2026, 11, 23))
    ]
    assert rollup_module._spans(None, None) == [(Grain.MONTH, None, None)]
    assert rollup_module._spans(date(2026, 3, 1), date(2026, 3, 31)) == [
        (Grain.MONTH, date(2026, 3, 1), date(2026, 3, 1))
    ]


def test_a_pass_committed_mid_read_is_not_counted_twice(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cursor, the rollup rows and the tail are read in one snapshot: a worker that commits a
    chunk between the cursor read and the rollup read (PostgreSQL's default READ COMMITTED would see
    it) changes nothing in the answer."""
    Feed(store, seed=18).append(800)
    worker = StatRollupWorker(store=store, policy=RollupPolicy(batch=300))
    worker.process()
    scope = ExchangeScope(None, None)
    with store.read() as session:
        expected = log_exchanges(session, scope).plain()
    real = rollup_module.rollup_cursor
    passes: list[int] = []

    def then_a_pass(session: Any) -> int | None:
        at = real(session)
        if not passes:  # once (the worker reads the cursor too)
            passes.append(0)
            passes[0] = worker.process()  # committed on another connection, mid-read
        return at

    monkeypatch.setattr(rollup_module, "rollup_cursor", then_a_pass)
    with store.read() as session:
        rollup_module.snapshot(session)
        assert rolled_exchanges(session, scope).plain() == expected
    assert passes == [300] and cursor(store) == 600
