"""Exchange counts rolled up per Beijing day, maintained from the log by a cursor — and read exactly.

The statistics (issue 7 item 4: exchanges per department, resource and month, "as the city reports
its exchanges") counted every access event of the period with ``GROUP BY`` over the log: 32 s for the
whole of a 10M-event log. The rollups (migration 0015) hold the same counts per Beijing day:

- ``stat_rollup`` — (day, provider, resource, accessor): reports narrowed to a party or a resource;
- ``stat_rollup_resources`` — (grain, period, provider, resource) and ``stat_rollup_accessors`` —
  (grain, period, accessor), per day and per month: the city-wide report, whose whole months are
  read from the month rows (a year is ~200k rows rather than the day rows' ~2M).

**Maintained exactly once, from a cursor.** ``stat_rollup_cursor.next_index`` says every log entry
below it is counted. A pass takes the next chunk of log indices ``[cursor, cursor + batch)`` (no
further than the log head: appends commit in index order, so the entries below the head have no
gap), adds its counts with one grouped ``INSERT … SELECT … ON CONFLICT DO UPDATE`` per table — no
Python per event — and moves the cursor, all in **one** transaction that first locks the cursor row:
a crash leaves counts and cursor unchanged, two workers (a lost leader lock) cannot both add a chunk.
Events carry client-reported times (``POST /v1/access-events``), so log order is not time order:
each entry is counted under its **own** Beijing day, whatever chunk it arrives in.

**Read exactly, at any moment.** For a period ``[since, until)`` the counts are the sum of

1. the rollup rows of the period's *whole* Beijing days (entries below the cursor),
2. the log's entries below the cursor dated in the period's *partial* days at either edge, and
3. the log's entries at or beyond the cursor dated in the period (the live tail) —

read in one snapshot (PostgreSQL: ``REPEATABLE READ``; SQLite: one read transaction), so the answer
equals :func:`log_exchanges` (the log alone, the reference) right after an append, during a catch-up
or with the worker stopped. Beijing time is UTC+8 (China has kept no daylight saving since 1991); the
day and month of an entry are computed by the same SQL expression in the rollup and in the log reads.
A column the event left empty is ``''`` in a rollup key and counts as absent, as in the reference.

One leader, like the alert monitor (:mod:`ledger.audit.monitor`): every worker runs the loop, the
holder of the rollup's own lock (PostgreSQL advisory lock ``ROLLUP_LOCK_KEY``; SQLite ``flock`` on
``<data dir>/rollup.lock``) works. Correctness does not rest on the lock (the cursor row is).
"""

from __future__ import annotations

import enum
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    FromClause,
    Select,
    and_,
    cast,
    delete,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ledger.log.events import EventKind
from ledger.log.leader import CursorLoop, cursor_at
from ledger.store.db import Store
from ledger.store.models import (
    LogEntry,
    LogHead,
    StatAccessorTotal,
    StatResourceTotal,
    StatRollup,
    StatRollupCursor,
)

log = logging.getLogger("sharetrail.rollup")

CST = timezone(timedelta(hours=8), "CST")  # Beijing time
CURSOR_ID = 1
# pg_advisory_lock key of the rollup worker's leader, beside "st-anchr" and "st-alert"
ROLLUP_LOCK_KEY = int.from_bytes(b"st-stats", "big", signed=True)
ACCESS = EventKind.ACCESS.value
#: Below this many entries past the cursor the live tail is read by log index (SQLite: a subquery
#: the planner cannot flatten); above it (a catch-up under way) by the time window's index.
TAIL_BY_INDEX = 200_000
_ENTRIES = LogEntry.__table__.c
_EMPTY: ColumnElement[str] = literal_column(
    "''"
)  # constants as SQL literals: PostgreSQL matches GROUP BY to the SELECT


class Grain(enum.StrEnum):
    DAY = "day"
    MONTH = "month"


@dataclass(frozen=True)
class RollupPolicy:
    interval: float = 2.0  # seconds between passes when idle
    batch: int = 50_000  # log indices per pass (one transaction)
    max_backoff: float = 30.0


# -- Beijing days and months, in SQL ----------------------------------------------------------------------
def _local(column: Any) -> ColumnElement[Any]:
    return func.timezone(literal_column("INTERVAL '8 hours'"), column)


def _seconds(column: Any) -> ColumnElement[Any]:
    """SQLite's text timestamp cut to whole seconds: its date functions round the fraction to
    milliseconds, which would put 23:59:59.9996 into the next day (and month) — while the period's
    bounds compare the full text."""
    return func.substr(column, literal_column("1"), literal_column("19"))


def day_of(column: Any, dialect: str) -> ColumnElement[Any]:
    """The Beijing date of a UTC timestamp column."""
    if dialect == "postgresql":
        return cast(_local(column), Date)
    return func.date(_seconds(column), literal_column("'+8 hours'"))


def month_of(column: Any, dialect: str) -> ColumnElement[Any]:
    """The first day of the Beijing month of a UTC timestamp column."""
    if dialect == "postgresql":
        return cast(func.date_trunc(literal_column("'month'"), _local(column)), Date)
    return func.date(_seconds(column), literal_column("'+8 hours'"), literal_column("'start of month'"))


def month_label(column: Any, dialect: str) -> ColumnElement[str]:
    """``YYYY-MM`` of the Beijing month of a UTC timestamp column."""
    if dialect == "postgresql":
        return func.to_char(_local(column), literal_column("'YYYY-MM'"))
    return func.strftime(literal_column("'%Y-%m'"), _seconds(column), literal_column("'+8 hours'"))


def day_label(column: Any, dialect: str) -> ColumnElement[str]:
    """``YYYY-MM`` of a date column."""
    if dialect == "postgresql":
        return func.to_char(column, literal_column("'YYYY-MM'"))
    return func.strftime(literal_column("'%Y-%m'"), column)


def midnight(day: date) -> datetime:
    """Beijing midnight starting ``day``, in UTC."""
    return datetime.combine(day, time(), CST).astimezone(UTC)


# -- what is counted -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExchangeScope:
    """Exchanges dated in ``[since, until)`` (UTC; either end open), optionally those ``party`` took
    part in — as accessor, as provider, or as the owner of the resource (``own``: its resources' ids
    and catalog codes) of an event that names no provider — and those of one resource (its id and
    code)."""

    since: datetime | None
    until: datetime | None
    party: str | None = None
    own: tuple[str, ...] = ()
    resource: tuple[str, ...] | None = None

    @property
    def narrowed(self) -> bool:
        return self.party is not None or self.resource is not None


@dataclass
class ExchangeCounts:
    """Exchanges by (provider, resource), by accessor and by Beijing month (``YYYY-MM``); an empty
    column is ``None``."""

    pairs: Counter[tuple[str | None, str | None]] = field(default_factory=Counter)
    takers: Counter[str | None] = field(default_factory=Counter)
    months: Counter[str] = field(default_factory=Counter)

    def add(self, pairs: Iterable[Any], takers: Iterable[Any], months: Iterable[Any]) -> None:
        for provider, resource, n in pairs:
            self.pairs[(provider or None, resource or None)] += int(n)
        for accessor, n in takers:
            self.takers[accessor or None] += int(n)
        for month, n in months:
            self.months[str(month)] += int(n)

    def merge(self, other: ExchangeCounts) -> None:
        self.pairs.update(other.pairs)
        self.takers.update(other.takers)
        self.months.update(other.months)

    def plain(self) -> tuple[dict[tuple[str | None, str | None], int], dict[str | None, int], dict[str, int]]:
        """The three counters without zero entries (for comparisons)."""
        return (
            {k: v for k, v in self.pairs.items() if v},
            {k: v for k, v in self.takers.items() if v},
            {k: v for k, v in self.months.items() if v},
        )


def _log_filter(c: Any, scope: ExchangeScope) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [c.kind == ACCESS]
    if scope.since is not None:
        where.append(c.time >= scope.since)
    if scope.until is not None:
        where.append(c.time < scope.until)
    if scope.resource is not None:
        where.append(c.resource.in_(scope.resource))
    if scope.party is not None:
        clauses = [c.accessor == scope.party, c.provider == scope.party]
        if scope.own:  # an external platform may leave out the provider: its resource names it
            unnamed = or_(c.provider.is_(None), c.provider == "")
            clauses.append(and_(unnamed, c.resource.in_(scope.own)))
        where.append(or_(*clauses))
    return where


def _grouped(session: Session, c: Any, source: FromClause, where: Sequence[Any]) -> ExchangeCounts:
    """Three grouped scans with few groups each (a resource has one provider), rather than one by
    (provider, resource, accessor): 1.3M groups at 10M events."""
    dialect = session.get_bind().dialect.name
    month = month_label(c.time, dialect)
    counts = ExchangeCounts()
    counts.add(
        session.execute(
            select(c.provider, c.resource, func.count())
            .select_from(source)
            .where(*where)
            .group_by(c.provider, c.resource)
        ).all(),
        session.execute(
            select(c.accessor, func.count()).select_from(source).where(*where).group_by(c.accessor)
        ).all(),
        session.execute(select(month, func.count()).select_from(source).where(*where).group_by(month)).all(),
    )
    return counts


def log_exchanges(session: Session, scope: ExchangeScope) -> ExchangeCounts:
    """The reference: the period's exchanges counted from the log alone (``GROUP BY`` over the
    indexed trail columns)."""
    return _grouped(session, _ENTRIES, LogEntry.__table__, _log_filter(_ENTRIES, scope))


def snapshot(session: Session) -> None:
    """Make the session's reads one snapshot (call before its first statement): PostgreSQL's default
    READ COMMITTED takes one per statement, and the rollup, its cursor and the live tail must agree."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def rollup_cursor(session: Session) -> int | None:
    """Every log entry below this index is in the rollups (None: no cursor row — nothing is)."""
    return cursor_at(session, StatRollupCursor, CURSOR_ID)


def rolled_exchanges(session: Session, scope: ExchangeScope) -> ExchangeCounts:
    """The period's exchanges from the rollups (whole days below the cursor) and the log (partial
    days below the cursor, everything at or beyond it) — equal to :func:`log_exchanges`. Call
    :func:`snapshot` first when the session is not already one snapshot."""
    dialect = session.get_bind().dialect.name
    cursor = rollup_cursor(session) or 0
    first, last = whole_days(scope.since, scope.until)
    counts = ExchangeCounts()
    below = _ENTRIES.idx < cursor
    edges: list[ExchangeScope] = []
    if cursor == 0 or (first is not None and last is not None and first > last):
        if cursor:  # no whole day: the period's entries below the cursor, from the log
            edges.append(scope)
    else:
        counts.merge(_rolled(session, scope, first, last, dialect))
        if first is not None and scope.since is not None and midnight(first) > scope.since:
            edges.append(replace(scope, until=midnight(first)))
        after = None if last is None else midnight(last + timedelta(days=1))
        if after is not None and scope.until is not None and after < scope.until:
            edges.append(replace(scope, since=after))
    for edge in edges:  # one time range each, so the planner bounds its index scan by it
        counts.merge(_grouped(session, _ENTRIES, LogEntry.__table__, [*_log_filter(_ENTRIES, edge), below]))
    counts.merge(_tail(session, scope, cursor, dialect))
    return counts


def whole_days(since: datetime | None, until: datetime | None) -> tuple[date | None, date | None]:
    """The first and last Beijing days wholly inside ``[since, until)`` (None: that end is open;
    ``first > last``: no whole day)."""
    first = last = None
    if since is not None:
        day = since.astimezone(CST).date()
        first = day if midnight(day) == since else day + timedelta(days=1)
    if until is not None:
        last = until.astimezone(CST).date() - timedelta(days=1)
    return first, last


def _tail(session: Session, scope: ExchangeScope, cursor: int, dialect: str) -> ExchangeCounts:
    size = int(session.scalar(select(LogHead.size).where(LogHead.id == 1)) or 0)
    if size <= cursor:
        return ExchangeCounts()
    if size - cursor > TAIL_BY_INDEX or dialect != "sqlite":  # PostgreSQL's planner sees the range
        return _grouped(
            session, _ENTRIES, LogEntry.__table__, [*_log_filter(_ENTRIES, scope), _ENTRIES.idx >= cursor]
        )
    # SQLite: LIMIT keeps the subquery from being flattened, so the tail is read by log index
    # rather than by whichever index the period's or a party's terms would pick.
    columns = (_ENTRIES.kind, _ENTRIES.time, _ENTRIES.provider, _ENTRIES.resource, _ENTRIES.accessor)
    tail = select(*columns).where(_ENTRIES.idx >= cursor).limit(-1).subquery("tail")
    return _grouped(session, tail.c, tail, _log_filter(tail.c, scope))


def _rolled(
    session: Session, scope: ExchangeScope, first: date | None, last: date | None, dialect: str
) -> ExchangeCounts:
    counts = ExchangeCounts()
    if scope.narrowed:  # a party's or a resource's exchanges: the day rows by their indexes
        t = StatRollup.__table__.c
        where = [*_span(t.day, first, last), *_rollup_filter(t, scope)]
        month = day_label(t.day, dialect)
        total = func.sum(t.exchanges)
        counts.add(
            session.execute(
                select(t.provider, t.resource, total).where(*where).group_by(t.provider, t.resource)
            ).all(),
            session.execute(select(t.accessor, total).where(*where).group_by(t.accessor)).all(),
            session.execute(select(month, total).where(*where).group_by(month)).all(),
        )
        return counts
    r, a = StatResourceTotal.__table__.c, StatAccessorTotal.__table__.c
    for grain, lo, hi in _spans(first, last):
        pairs = session.execute(
            select(r.provider, r.resource, func.sum(r.exchanges))
            .where(r.grain == grain.value, *_span(r.period, lo, hi))
            .group_by(r.provider, r.resource)
        ).all()
        takers: Counter[str] = Counter()
        months: Counter[str] = Counter()
        for period, accessor, n in session.execute(
            select(a.period, a.accessor, func.sum(a.exchanges))
            .where(a.grain == grain.value, *_span(a.period, lo, hi))
            .group_by(a.period, a.accessor)
        ):
            takers[accessor] += int(n)
            months[_month(period)] += int(n)
        counts.add(pairs, takers.items(), months.items())
    return counts


def _month(period: date | str) -> str:
    return str(period)[:7]  # SQLite may hand back the stored text


def _span(column: Any, lo: date | None, hi: date | None) -> list[ColumnElement[bool]]:
    return [w for w in (column >= lo if lo else None, column <= hi if hi else None) if w is not None]


def _spans(first: date | None, last: date | None) -> list[tuple[Grain, date | None, date | None]]:
    """Whole days ``[first, last]`` as month rows for the whole months in it and day rows for the
    rest: (grain, first period, last period), either end None when open."""
    month_lo = first if first is None or first.day == 1 else _next_month(first)
    after_last = None if last is None else last + timedelta(days=1)
    month_hi = None if after_last is None else after_last.replace(day=1)  # months end before this
    if month_lo is not None and month_hi is not None and month_lo >= month_hi:
        return [(Grain.DAY, first, last)]
    spans: list[tuple[Grain, date | None, date | None]] = [
        (Grain.MONTH, month_lo, None if month_hi is None else _previous_month(month_hi))
    ]
    if first is not None and month_lo is not None and first < month_lo:
        spans.append((Grain.DAY, first, month_lo - timedelta(days=1)))
    if last is not None and month_hi is not None and month_hi <= last:
        spans.append((Grain.DAY, month_hi, last))
    return spans


def _next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def _previous_month(first_of_month: date) -> date:
    return (first_of_month - timedelta(days=1)).replace(day=1)


def _rollup_filter(t: Any, scope: ExchangeScope) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if scope.resource is not None:
        where.append(t.resource.in_(scope.resource))
    if scope.party is not None:
        clauses = [t.accessor == scope.party, t.provider == scope.party]
        if scope.own:
            clauses.append(and_(t.provider == "", t.resource.in_(scope.own)))
        where.append(or_(*clauses))
    return where


# -- maintenance ---------------------------------------------------------------------------------------
def roll_up(session: Session, start: int, end: int) -> None:
    """Add the access events of log indices ``[start, end)`` to the rollups: one grouped ``INSERT …
    SELECT … ON CONFLICT DO UPDATE`` per table and grain, keyed by each entry's own Beijing day."""
    dialect = session.get_bind().dialect.name
    e = _ENTRIES
    where = (e.idx >= start, e.idx < end, e.kind == ACCESS)
    p, r, a = (func.coalesce(col, _EMPTY) for col in (e.provider, e.resource, e.accessor))
    day, month = day_of(e.time, dialect), month_of(e.time, dialect)
    n = func.count()
    rows = select(day, p, r, a, n).where(*where).group_by(day, p, r, a)
    _upsert(session, StatRollup, ("day", "provider", "resource", "accessor"), rows)
    for grain, period in ((Grain.DAY, day), (Grain.MONTH, month)):
        g: ColumnElement[str] = literal_column(f"'{grain.value}'")
        rows = select(g, period, p, r, n).where(*where).group_by(period, p, r)
        _upsert(session, StatResourceTotal, ("grain", "period", "provider", "resource"), rows)
        rows = select(g, period, a, n).where(*where).group_by(period, a)
        _upsert(session, StatAccessorTotal, ("grain", "period", "accessor"), rows)


def _upsert(session: Session, model: Any, keys: Sequence[str], query: Select[Any]) -> None:
    table = model.__table__
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(table).from_select([*keys, "exchanges"], query)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys), set_={"exchanges": table.c.exchanges + stmt.excluded.exchanges}
    )
    session.execute(stmt)


class StatRollupWorker(CursorLoop):
    """Keeps the rollups up with the log: :meth:`process` one chunk, :meth:`catch_up` all, or
    :meth:`start` the loop (one leader among the workers)."""

    thread_name = "sharetrail-rollup"
    what = "rollup"
    lock_key = ROLLUP_LOCK_KEY
    lock_file = "rollup.lock"

    cursor_model = StatRollupCursor
    cursor_id = CURSOR_ID

    def __init__(self, *, store: Store, policy: RollupPolicy | None = None) -> None:
        self.policy = policy or RollupPolicy()
        super().__init__(store=store, policy=self.policy, logger=log)

    def apply(self, session: Session, start: int, end: int) -> int:
        roll_up(session, start, end)
        return end

    def restart(self, session: Session) -> None:
        """The counts' extent is unknown without the cursor: they are rebuilt from the first entry."""
        for model in (StatRollup, StatResourceTotal, StatAccessorTotal):
            session.execute(delete(model))
