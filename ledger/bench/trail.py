"""The regulator's trail at scale: filtered ``TrailService.query`` latency on a 10M-event log.

**The log.** Events are drawn by the city simulation's samplers (:mod:`ledger.sim.skew`: Guiyang's 423
departments and 18,725 catalog items, Zipf-hot resources, the statistics bureau leading the accessors,
office-hour timing over a year, 2 % refusals, 2,000 grants) and appended through ``LogStore.append`` —
the store's own append path, so the rows, the trail columns, the data-subject index and the Merkle
nodes are exactly what the gateway writes. Each leaf is the dict ``AccessEvent.leaf`` builds (checked
equal by the unit test) without the per-event pydantic validation, and SQLite runs
``synchronous=OFF`` while building: the build is not what is measured. Verify-mode (核验) accesses name
one data subject, raw and masked ones up to three, drawn from a population of keyed ID-number hashes.
The parties and catalog tables hold the simulated departments and items (the trail names its rows).

**The queries.** For each filter (party, accessor, provider, resource, purpose, grant, mode,
kind=denied, a day's time range, a data subject, combinations, and page 2 through the keyset cursor)
``samples`` calls of ``TrailService.query`` (the real service: the SQL, the JSON parse of the page's
entries, the names) with parameter values taken from random log entries — so hot values are asked
about as often as they occur — each timed; p50/p95/p99 against the 100 ms p95 target.

**Beside it, the naive approach**: the same filter answered without the trail columns — reading the
entries newest first and JSON-parsing each until a page is full (``naive_samples`` calls, each
abandoned after ``naive_budget`` seconds and counted as "> budget").
"""

from __future__ import annotations

import json
import random
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from rich.table import Table
from sqlalchemy import Table as SqlTable
from sqlalchemy import event, func, insert, select

from ledger.audit.lineage import LineageService
from ledger.audit.rollup import StatRollupWorker
from ledger.audit.stats import Counting, StatisticsService
from ledger.audit.trail import TrailQuery, TrailService
from ledger.canonical import canonical_json
from ledger.errors import LedgerError
from ledger.gateway.masking import subject_hash
from ledger.identity.id_number import make_id_number
from ledger.log.events import AccessMode, EventKind
from ledger.log.store import LogStore, NewEntry
from ledger.log.subject_index import SubjectIndexer
from ledger.sim import city, skew
from ledger.store.db import Store
from ledger.store.models import LogEntry, Party, Resource
from ledger.types import Custody, PartyKind

Say = Callable[[str], None]
BUILD_BATCH = 50_000
TARGET_P95_MS = 100.0
GATEWAY = "gy-exchange-01"
OPERATOR_ID = "b" * 32
SUBJECT_KEY = b"sharetrail-bench-trail-subject-key"


@dataclass(frozen=True)
class TrailSizes:
    events: int = 10_000_000
    samples: int = 200  # timed queries per filter
    naive_samples: int = 3
    naive_budget: float = 10.0  # seconds before a naive query is abandoned
    departments: int = city.GUIYANG_DEPARTMENTS
    resources: int = city.GUIYANG_RESOURCES
    grants: int = city.DEFAULT_GRANTS
    days: int = 365
    subjects: int = 200_000  # population of data subjects
    seed: int = 7

    @classmethod
    def quick(cls) -> TrailSizes:
        return cls(
            events=5000,
            samples=20,
            naive_samples=2,
            naive_budget=2.0,
            departments=20,
            resources=200,
            grants=50,
            days=30,
            subjects=2000,
        )


@dataclass(frozen=True)
class Row:
    case: str
    n: int
    p50: float  # ms
    p95: float
    p99: float
    max: float
    naive: str  # the naive approach's p50 (or "> budget")
    plan: str  # SQLite/PostgreSQL query plan, abridged


@dataclass
class TrailBenchResult:
    events: int
    build_seconds: float | None  # None: an existing log was reused
    rows: list[Row] = field(default_factory=list)
    extras: list[Row] = field(default_factory=list)  # statistics and lineage (no target)

    def row(self, case: str) -> Row:
        return next(r for r in self.rows if r.case == case)


# --------------------------------------------------------------------------- the log


def party_id(seq: int) -> str:
    return f"{seq + 1:032x}"


def grant_id(accessor: int, resource: int) -> str:
    return f"0x{accessor:032x}{resource:032x}"


def leaf(
    draft: skew.Draft, *, accessor: str, provider: str, resource: str, level: int, **extra: Any
) -> dict[str, Any]:
    """What ``AccessEvent(...).leaf(recorded_by=OPERATOR_ID)`` returns for this draft (no validation)."""
    body: dict[str, Any] = {
        "event_id": f"bench-{draft.seq:09d}",
        "kind": (EventKind.DENIED if draft.denied_reason else EventKind.ACCESS).value,
        "accessor": accessor,
        "provider": provider,
        "resource": resource,
        "purpose": draft.purpose,
        "fields": list(draft.fields),
        "mode": draft.mode.value,
        "record_count": draft.record_count,
        "query_hash": draft.query_hash,
        "subjects": extra.pop("subjects", []),
        "gateway": GATEWAY,
        "level": level,
    }
    if draft.result_hash is not None:
        body["result_hash"] = draft.result_hash
    if draft.denied_reason:
        body["reason"] = draft.denied_reason
    grant = extra.pop("grant", None)
    if grant is not None:
        body["grant"] = grant
    body["time"] = draft.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    body["recorded_by"] = OPERATOR_ID
    body["v"] = 1
    return body


class City:
    """The simulated city and its event stream, deterministic for a seed and a ``now``."""

    def __init__(self, sizes: TrailSizes, now: datetime) -> None:
        self.sizes = sizes
        self.now = now
        self.rng = random.Random(sizes.seed)
        self.departments = city.roster(sizes.departments)
        self.catalog = city.plan_catalog(self.departments, sizes.resources, self.rng)
        self.model = skew.CityModel(self.departments, self.catalog)
        self.model.shuffle(self.rng)
        plans = skew.plan_requests(self.model, sizes.grants, self.rng)
        self.grants = {(p.requester, p.resource): p.terms for p in plans if p.approve}
        born = date(1950, 1, 1)
        self.people = [
            subject_hash(SUBJECT_KEY, make_id_number("520102", born + timedelta(days=n % 20000), n // 20000))
            for n in range(sizes.subjects)
        ]

    def resource_id(self, n: int) -> str:
        return f"{n + 1:032x}"

    def drafts(self) -> Iterator[skew.Draft]:
        return skew.draw_events(
            self.model, self.grants, total=self.sizes.events, now=self.now, days=self.sizes.days, rng=self.rng
        )

    def entry(self, draft: skew.Draft) -> NewEntry:
        plan = self.catalog[draft.resource]
        pair = (draft.accessor, draft.resource)
        subjects: list[str] = []
        if not draft.denied_reason and plan.fields[0] is city.PERSON_KEY:
            if draft.mode is AccessMode.VERIFY:
                subjects = [self.people[int(self.rng.random() * len(self.people))]]
            elif draft.mode in (AccessMode.RAW, AccessMode.MASKED):
                k = min(3, max(1, draft.record_count))
                subjects = sorted({self.people[int(self.rng.random() * len(self.people))] for _ in range(k)})
        body = leaf(
            draft,
            accessor=party_id(draft.accessor),
            provider=party_id(plan.provider),
            resource=self.resource_id(draft.resource),
            level=plan.level,
            subjects=subjects,
            grant=grant_id(*pair) if pair in self.grants else None,
        )
        return NewEntry(
            event_id=body["event_id"],
            kind=body["kind"],
            time=draft.time,
            event=body,
            accessor=body["accessor"],
            resource=body["resource"],
        )

    def directory_rows(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        made = datetime(2020, 1, 1, tzinfo=UTC)
        parties = [
            {
                "id": party_id(d.seq),
                "kind": PartyKind.DEPARTMENT,
                "name": d.name,
                "uscc": f"{d.seq:018d}",
                "address": f"0x{d.seq:040x}",
                "custody": Custody.CUSTODIAL,
                "token_hash": f"{d.seq:064x}",
                "created_at": made,
            }
            for d in self.departments
        ]
        resources = [
            {
                "id": self.resource_id(n),
                "code": r.code,
                "provider_id": party_id(r.provider),
                "name": r.name,
                "version": 1,
                "share_type": r.share_type,
                "open_type": r.open_type,
                "level": r.level,
                "metadata_json": "{}",
                "metadata_hash": bytes(32),
                "created_at": made,
                "updated_at": made,
            }
            for n, r in enumerate(self.catalog)
        ]
        return parties, resources


def _bulk_sqlite(store: Store) -> None:
    """``synchronous=OFF`` and a 1 GB page cache for the connections that build the log."""
    store.engine.dispose()

    @event.listens_for(store.engine, "connect")
    def _fast(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA synchronous=OFF")
        cur.execute("PRAGMA cache_size=-1000000")
        cur.close()


def encode(event: dict[str, Any]) -> bytes:
    """RFC 8785 bytes of a benchmark leaf: ``canonical_json``'s fast path without its type walk (the
    leaves hold ASCII keys, strings and small integers only); :func:`bulk_append` checks samples."""
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def bulk_append(store: Store, entries: Sequence[NewEntry]) -> None:
    """``LogStore.append`` of ``entries`` with each entry's bytes from :func:`encode` rather than
    the canonicaliser's type walk (spot-checked against it). The unit test compares its tables row
    for row with a plain ``LogStore.append``'s."""
    encoded = [encode(dict(e.body())) for e in entries]
    for n in range(0, len(entries), 997):  # spot checks against the canonicaliser itself
        if encoded[n] != canonical_json(dict(entries[n].body())):
            raise RuntimeError(f"the bulk encoding differs from canonical_json for {entries[n].event_id}")
    LogStore(store).append([replace(e, encoded=b) for e, b in zip(entries, encoded, strict=True)])


def build(store: Store, sizes: TrailSizes, now: datetime, say: Say) -> float:
    """Append ``sizes.events`` simulated events through :func:`bulk_append`; the seconds it took."""
    if store.dialect == "sqlite":
        _bulk_sqlite(store)
    town = City(sizes, now)
    parties, resources = town.directory_rows()
    with store.session() as session:
        session.execute(insert(_table(Party)), parties)
        for start in range(0, len(resources), 5000):
            session.execute(insert(_table(Resource)), resources[start : start + 5000])
    append: Callable[[Sequence[NewEntry]], object] = partial(bulk_append, store)
    started = last = time.perf_counter()
    batch: list[NewEntry] = []
    done = 0
    for draft in town.drafts():
        batch.append(town.entry(draft))
        if len(batch) == BUILD_BATCH:
            append(batch)
            done += len(batch)
            batch = []
            if time.perf_counter() - last > 30:
                last = time.perf_counter()
                rate = done / (last - started)
                say(f"  … {done:,} / {sizes.events:,} events ({rate:,.0f}/s)")
    if batch:
        append(batch)
    say("  … the data-subject index (SubjectIndexer.catch_up)")
    SubjectIndexer(store=store).catch_up()
    return time.perf_counter() - started


def _table(model: type[Any]) -> SqlTable:
    table: SqlTable = model.__table__
    return table


# --------------------------------------------------------------------------- the queries


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[dict[str, Any]], TrailQuery]  # a sampled entry's columns -> the query
    naive: Callable[[dict[str, Any], dict[str, Any]], bool]  # (sample, entry) -> matches
    page2: bool = False


def _day(sample: dict[str, Any]) -> tuple[datetime, datetime]:
    start = sample["time"].replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def _in_day(sample: dict[str, Any], e: dict[str, Any]) -> bool:
    start, end = _day(sample)
    when = datetime.fromisoformat(e["time"].replace("Z", "+00:00"))
    return start <= when < end


CASES: tuple[Case, ...] = (
    Case(
        "party (accessor or provider)",
        lambda s: TrailQuery(party=s["accessor"]),
        lambda s, e: s["accessor"] in (e.get("accessor"), e.get("provider")),
    ),
    Case(
        "accessor",
        lambda s: TrailQuery(accessor=s["accessor"]),
        lambda s, e: e.get("accessor") == s["accessor"],
    ),
    Case(
        "provider",
        lambda s: TrailQuery(provider=s["provider"]),
        lambda s, e: e.get("provider") == s["provider"],
    ),
    Case(
        "resource",
        lambda s: TrailQuery(resource=s["resource"]),
        lambda s, e: e.get("resource") == s["resource"],
    ),
    Case(
        "purpose", lambda s: TrailQuery(purpose=s["purpose"]), lambda s, e: e.get("purpose") == s["purpose"]
    ),
    Case("grant", lambda s: TrailQuery(grant=s["grant"]), lambda s, e: e.get("grant") == s["grant"]),
    Case("mode", lambda s: TrailQuery(mode=AccessMode(s["mode"])), lambda s, e: e.get("mode") == s["mode"]),
    Case("kind=denied", lambda s: TrailQuery(kind=EventKind.DENIED), lambda s, e: e.get("kind") == "denied"),
    Case(
        "time range (one day)",
        lambda s: TrailQuery(since=_day(s)[0], until=_day(s)[1]),
        _in_day,
    ),
    Case(
        "data subject",
        lambda s: TrailQuery(subject=s["subject"]),
        lambda s, e: s["subject"] in (e.get("subjects") or ()),
    ),
    Case(
        "accessor + purpose + mode + 30 days",
        lambda s: TrailQuery(
            accessor=s["accessor"],
            purpose=s["purpose"],
            mode=AccessMode(s["mode"]),
            since=s["time"] - timedelta(days=15),
            until=s["time"] + timedelta(days=15),
        ),
        lambda s, e: (
            e.get("accessor") == s["accessor"]
            and e.get("purpose") == s["purpose"]
            and e.get("mode") == s["mode"]
            and abs(datetime.fromisoformat(e["time"].replace("Z", "+00:00")) - s["time"]) < timedelta(days=15)
        ),
    ),
    Case(
        "provider + kind=denied",
        lambda s: TrailQuery(provider=s["provider"], kind=EventKind.DENIED),
        lambda s, e: e.get("provider") == s["provider"] and e.get("kind") == "denied",
    ),
    Case(
        "resource + one day",
        lambda s: TrailQuery(resource=s["resource"], since=_day(s)[0], until=_day(s)[1]),
        lambda s, e: e.get("resource") == s["resource"] and _in_day(s, e),
    ),
    Case(
        "party, page 2 (keyset)",
        lambda s: TrailQuery(party=s["accessor"]),
        lambda s, e: s["accessor"] in (e.get("accessor"), e.get("provider")),
        page2=True,
    ),
    Case(
        "purpose + kind=access, page 2 (keyset)",
        lambda s: TrailQuery(purpose=s["purpose"], kind=EventKind.ACCESS),
        lambda s, e: e.get("purpose") == s["purpose"] and e.get("kind") == "access",
        page2=True,
    ),
)


def samples(store: Store, n: int, rng: random.Random, *, need: str | None = None) -> list[dict[str, Any]]:
    """Columns of ``n`` random log entries (only entries with a grant or a data subject when ``need``
    is ``"grant"`` or ``"subject"``): hot values come up as often as they occur."""
    with store.read() as session:
        size = int(session.scalar(select(func.max(LogEntry.idx))) or -1) + 1
        out: list[dict[str, Any]] = []
        tries = 0
        while size and len(out) < n and tries < 200 * n:
            tries += 1
            row = session.execute(
                select(
                    LogEntry.accessor,
                    LogEntry.provider,
                    LogEntry.resource,
                    LogEntry.purpose,
                    LogEntry.grant_ref,
                    LogEntry.mode,
                    LogEntry.time,
                    LogEntry.entry,
                ).where(LogEntry.idx == rng.randrange(size))
            ).one()
            subjects = json.loads(row.entry).get("subjects") or []
            if (need == "grant" and row.grant_ref is None) or (need == "subject" and not subjects):
                continue
            out.append(
                {
                    "accessor": row.accessor,
                    "provider": row.provider,
                    "resource": row.resource,
                    "purpose": row.purpose,
                    "grant": row.grant_ref,
                    "mode": row.mode,
                    "time": row.time if row.time.tzinfo else row.time.replace(tzinfo=UTC),
                    "subject": subjects[0] if subjects else None,
                }
            )
    return out


def _percentile(values: list[float], p: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def naive_query(
    store: Store, match: Callable[[dict[str, Any]], bool], limit: int, budget: float
) -> float | None:
    """A page without the trail columns: entries newest first, each JSON-parsed and tested, until the
    page is full or the log is exhausted; None when it ran out of ``budget`` seconds."""
    started = time.perf_counter()
    with store.read() as session:
        high = int(session.scalar(select(func.max(LogEntry.idx))) or -1) + 1
        found = 0
        while high > 0:
            low = max(0, high - 20_000)
            rows = session.execute(
                select(LogEntry.entry)
                .where(LogEntry.idx >= low, LogEntry.idx < high)
                .order_by(LogEntry.idx.desc())
            )
            for (raw,) in rows:
                if match(json.loads(raw)):
                    found += 1
                    if found > limit:
                        return time.perf_counter() - started
            high = low
            if time.perf_counter() - started > budget:
                return None
    return time.perf_counter() - started


def _plan(store: Store, trail: TrailService, q: TrailQuery) -> str:
    """The database's plan for the trail query (which index it uses), abridged."""
    with store.read() as session:
        used: list[Any] = []
        trail._page(session, q, q.limit + 1, used=used)  # the plan the query took: its last statement
        stmt = used[-1]
        compiled = stmt.compile(
            dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True}
        )
        params: Any = (
            tuple(compiled.params[name] for name in compiled.positiontup or ())
            if compiled.positional
            else compiled.params
        )
        prefix = "EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN "
        rows = session.connection().exec_driver_sql(prefix + str(compiled), params).all()
    return _abridge([str(r[-1] if store.dialect == "sqlite" else r[0]) for r in rows])


def _abridge(lines: list[str]) -> str:
    """Plan lines → the indexes used, ``pk`` for the primary key, ``scan`` for a table scan, ``sort``
    for a sort of the matching rows (what breaks the keyset page's cost)."""
    out: list[str] = []
    for line in lines:
        found = re.search(
            r"(?:USING (?:COVERING )?INDEX|Index (?:Only )?Scan(?: Backward)? using|Bitmap Index Scan on)"
            r" (\w+)",
            line,
        )
        if "PRIMARY KEY" in line or "_pkey" in line:
            out.append("pk")
        elif found:
            out.append(found.group(1).removeprefix("ix_log_entries_").removeprefix("ix_"))
        elif re.search(r"\bSCAN log_entries\b|Seq Scan", line):
            out.append("scan")
        if "TEMP B-TREE" in line or re.search(r"\bSort\b", line):
            out.append("sort")
    return " + ".join(dict.fromkeys(out)) or "?"


def time_cases(store: Store, sizes: TrailSizes, say: Say, cases: tuple[Case, ...] = CASES) -> list[Row]:
    trail = TrailService(store=store, hash_subject=_no_id_numbers)
    rng = random.Random(sizes.seed + 1)
    pool = samples(store, sizes.samples, rng)
    granted = samples(store, sizes.samples, rng, need="grant")
    people = samples(store, sizes.samples, rng, need="subject")
    rows = []
    for case in cases:
        picks = granted if case.name == "grant" else people if case.name == "data subject" else pool
        if not picks:
            continue
        say(f"  {case.name}: {len(picks)} queries …")
        trail.query(_auditor(), case.make(picks[0]))  # warm the connection and the page cache path
        latencies: list[float] = []
        for sample in picks:
            q = case.make(sample)
            if case.page2:
                first = trail.query(_auditor(), q)
                if first["next_before"] is None:
                    continue
                q = replace(q, before=first["next_before"])
            start = time.perf_counter()
            trail.query(_auditor(), q)
            latencies.append((time.perf_counter() - start) * 1000)
        if not latencies:
            continue
        naive_times: list[float | None] = []
        for sample in picks[: sizes.naive_samples]:
            naive_times.append(naive_query(store, partial(case.naive, sample), 100, sizes.naive_budget))
        finished = [t * 1000 for t in naive_times if t is not None]
        abandoned = len(naive_times) - len(finished)
        naive = f"p50 {statistics.median(finished):,.0f} ms" if finished else ""
        if abandoned:
            naive += f"{'; ' if naive else ''}{abandoned}/{len(naive_times)} > {sizes.naive_budget:g} s"
        rows.append(
            Row(
                case=case.name,
                n=len(latencies),
                p50=statistics.median(latencies),
                p95=_percentile(latencies, 95),
                p99=_percentile(latencies, 99),
                max=max(latencies),
                naive=naive,
                plan=_plan(store, trail, case.make(picks[0])),
            )
        )
    return rows


def time_extras(store: Store, sizes: TrailSizes, say: Say) -> list[Row]:
    """The other regulator's reads over the same log: statistics over a month and over the whole log —
    from the rollups and the live tail (after the rollup's catch-up, timed as its own row) and, for
    comparison, from the log alone (``GROUP BY`` over the indexed trail columns) — and the lineage
    graph of the hottest and of a typical resource; a few calls each."""
    rng = random.Random(sizes.seed + 2)
    pool = samples(store, max(20, sizes.samples), rng)
    counts: dict[str, int] = {}
    for sample in pool:
        counts[sample["resource"]] = counts.get(sample["resource"], 0) + 1
    ranked = sorted(counts, key=lambda r: -counts[r])
    with store.read() as session:
        latest: datetime = session.scalar(select(func.max(LogEntry.time))) or datetime.now(UTC)
    end = (latest if latest.tzinfo else latest.replace(tzinfo=UTC)) + timedelta(seconds=1)
    say("  statistics rollup: catch-up …")
    start = time.perf_counter()
    rolled = StatRollupWorker(store=store).catch_up()
    caught_up = (time.perf_counter() - start) * 1000
    rows = [
        Row(
            case="statistics rollup: catch-up",
            n=1,
            p50=caught_up,
            p95=caught_up,
            p99=caught_up,
            max=caught_up,
            naive="",
            plan=f"{rolled:,} entries, grouped INSERT … SELECT per chunk",
        )
    ]
    stats, lineage = StatisticsService(store=store), LineageService(store=store)
    reference = StatisticsService(store=store, counting=Counting.LOG)
    since = end - timedelta(days=30)

    def month(service: StatisticsService) -> object:
        return service.report(since=since, until=end)

    def everything(service: StatisticsService) -> object:
        return service.report(since=None, until=None)

    calls: list[tuple[str, str, Callable[[], object]]] = [
        ("statistics: the last 30 days", "rollups + live tail", partial(month, stats)),
        ("statistics: the whole log", "rollups + live tail", partial(everything, stats)),
        ("statistics, log alone: the last 30 days", "GROUP BY", partial(month, reference)),
        ("statistics, log alone: the whole log", "GROUP BY", partial(everything, reference)),
        ("lineage: the hottest resource", "GROUP BY", lambda: lineage.graph(ranked[0])),
        ("lineage: a median resource", "GROUP BY", lambda: lineage.graph(ranked[len(ranked) // 2])),
    ]
    for name, plan, call in calls:
        say(f"  {name} …")
        latencies = []
        try:
            for _ in range(3):
                start = time.perf_counter()
                call()
                latencies.append((time.perf_counter() - start) * 1000)
        except LedgerError as exc:  # an extra must not cost the filters' figures: say why it is missing
            rows.append(Row(name, 0, 0.0, 0.0, 0.0, 0.0, "", f"failed: {exc.code}: {exc.message[:80]}"))
            continue
        rows.append(
            Row(
                case=name,
                n=len(latencies),
                p50=statistics.median(latencies),
                p95=max(latencies),
                p99=max(latencies),
                max=max(latencies),
                naive="",
                plan=plan,
            )
        )
    return rows


def _no_id_numbers(value: str) -> str:
    raise ValueError("the benchmark asks about keyed hashes only")


def _auditor() -> Party:
    return Party(id="0" * 32, kind=PartyKind.REGULATOR, name="bench regulator")


# --------------------------------------------------------------------------- the run


def run_trail_bench(
    sizes: TrailSizes, *, db: Path | None = None, db_url: str | None = None, progress: Say | None = None
) -> TrailBenchResult:
    """Build (or reuse, when ``db`` already holds ``sizes.events`` entries) the log, then time the
    filters. ``db_url`` (e.g. a throw-away PostgreSQL server) takes precedence over ``db``."""
    say = progress or (lambda _msg: None)
    with tempfile.TemporaryDirectory(prefix="sharetrail-bench-trail-") as tmp:
        url = db_url or f"sqlite:///{db or Path(tmp) / 'trail.sqlite'}"
        store = Store(url)
        try:
            store.migrate()
            have = LogStore(store).size()
            seconds: float | None = None
            if have == 0:
                path = "bulk path" if store.dialect == "sqlite" else "LogStore.append"
                say(f"building a {sizes.events:,}-event log ({BUILD_BATCH:,}/batch, {path}) …")
                seconds = build(store, sizes, datetime.now(UTC), say)
                store.engine.dispose()
            elif have != sizes.events:
                raise RuntimeError(
                    f"{url} holds {have:,} events, not {sizes.events:,}: remove it or change --events"
                )
            else:
                say(f"reusing the {have:,}-event log in {url}")
            result = TrailBenchResult(events=sizes.events, build_seconds=seconds)
            result.rows = time_cases(store, sizes, say)
            result.extras = time_extras(store, sizes, say)
        finally:
            store.close()
    return result


def render(result: TrailBenchResult) -> Table:
    built = (
        f"built in {result.build_seconds:,.0f} s ({result.events / result.build_seconds:,.0f} events/s)"
        if result.build_seconds
        else "reused"
    )
    table = Table(title=f"Trail: TrailService.query on {result.events:,} events ({built})")
    for name in (
        "filter",
        "n",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "target p95 ≤ 100 ms",
        "naive (JSON scan)",
        "plan",
    ):
        table.add_column(name, justify="right" if name.endswith("ms") or name == "n" else "left")
    for r in result.rows + result.extras:
        table.add_row(
            r.case,
            f"{r.n}",
            f"{r.p50:.2f}",
            f"{r.p95:.2f}",
            f"{r.p99:.2f}",
            f"{r.max:.1f}",
            "" if r in result.extras else "met" if r.p95 <= TARGET_P95_MS else "MISSED",
            r.naive,
            r.plan,
        )
    return table
