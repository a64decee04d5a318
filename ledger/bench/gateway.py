"""Gateway cost: mediated accesses per second per mode, beside a direct SQLAlchemy read of the same rows.

One fresh data directory (embedded chain, SQLite store with WAL + synchronous=FULL); a population
table of ``rows`` demo people in a SQLite source under the source root; one grant per mode. Each
case runs ``n`` accesses through ``GatewayService.access`` — grant check (chain read, cached), scope
check, source read with the filter pushed down, shaping, canonical JSON, SHA-256, subject HMACs, and
the durable log append with the grant's access counter — and, in the same run, the same reads done
directly with SQLAlchemy Core (rows fetched and JSON-encoded, nothing checked or logged): the
overhead column is what mediation adds. The issue's target: ≤ 20 % on a 1,000-row raw access.
The source is registered twice: as the table (a raw access has SQLite write the rows' canonical
JSON text, ``SourceReader.encoded_rows``) and as the query ``SELECT * FROM population`` (read and
encoded in Python: the general path every PostgreSQL, CSV or Parquet source takes).

Two more columns say where a mediated access spends its time: ``log ms`` is the median time in the
durable log append (one SQLite transaction: the entry, its Merkle nodes and the grant's access
counter, committed with ``synchronous=FULL``), and ``cpu ms`` the mean CPU time of
the calling thread per access — on a shared machine the gap between wall and CPU time is mostly
waiting for the disk. The mediated and the direct calls of a case are interleaved, in alternating
order, so that the drift of a shared machine falls on both alike; the process runs as ``serve``
does, its start-up objects frozen out of the garbage collector (``ledger.runtime.frozen_heap``).
The subject index is not written by the access (``ledger.log.subject_index``):
``subject index ms`` is the indexer's catch-up after each case, per access — work the service does
later, in batches, on its background worker.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict

import sqlalchemy as sa
from rich.table import Table

from ledger.gateway import demodata
from ledger.gateway.service import AccessRequest
from ledger.gateway.sources import SourceKind, SourceSpec
from ledger.identity.parties import NewParty
from ledger.identity.uscc import make_uscc
from ledger.log.events import AccessMode
from ledger.runtime import Ledger, frozen_heap
from ledger.settings import Settings
from ledger.sharing.catalog import ResourceSpec
from ledger.sharing.requests import Scope
from ledger.types import OpenType, PartyKind, ShareType, Signing

TOKEN = "st_bench-gateway-registrar"


class CaseResult(TypedDict):
    case: str
    rows: int  # rows delivered (or read, for aggregate) per access
    n: int
    gateway_ms: float  # median per access
    log_ms: float  # median time of the access's log append (inside gateway_ms)
    cpu_ms: float  # mean CPU time of the calling thread per mediated access
    index_ms: float  # the subject indexer's catch-up after the case, per access (off the access's path)
    direct_ms: float
    accesses_per_s: float
    rows_per_s: float
    overhead_pct: float


@dataclasses.dataclass
class _Paired:
    mediated: list[float]  # seconds per call
    direct: list[float]
    cpu: float  # CPU seconds of the calling thread in the mediated calls


def _paired(mediated: Callable[[], Any], direct: Callable[[], Any], n: int) -> _Paired:
    """``n`` calls of each, interleaved in alternating order (mediated first, then direct first)."""
    out = _Paired([], [], 0.0)
    for k in range(n):
        for which in (0, 1) if k % 2 == 0 else (1, 0):
            if which == 0:
                cpu, t0 = time.thread_time(), time.perf_counter()
                mediated()
                out.mediated.append(time.perf_counter() - t0)
                out.cpu += time.thread_time() - cpu
            else:
                t0 = time.perf_counter()
                direct()
                out.direct.append(time.perf_counter() - t0)
    return out


class _Timed:
    """Wraps a callable and keeps how long each call took (the bench's view into the log append)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.times: list[float] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.times.append(time.perf_counter() - t0)


def run_gateway_bench(
    *,
    rows: int = 100_000,
    n: int = 200,
    pg_url: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> list[CaseResult]:
    """Every case on the SQLite source; with ``pg_url`` (an empty PostgreSQL database) the raw
    1,000-row case also on the same rows in a PostgreSQL table, against a direct read of it."""
    with tempfile.TemporaryDirectory(prefix="sharetrail-bench-gw-") as tmp:
        data_dir = Path(tmp)
        settings = Settings(
            data_dir=data_dir, bootstrap_token=TOKEN, anchor_loop=False, grant_cache_seconds=60
        )
        source = data_dir / "sources" / "population.sqlite"
        source.parent.mkdir(parents=True)
        progress(f"writing {rows:,} demo people to {source.name}")
        demodata.write_sqlite(source, "population", rows)
        if pg_url is not None:
            progress(f"writing {rows:,} demo people to a PostgreSQL table")
            demodata.write_sqlite(pg_url, "population", rows)
            _settle_postgres(pg_url)
        # The rows just written are still dirty in the page cache: written back while the cases
        # run, they would slow the accesses' fsyncs (and only theirs — the direct read has none).
        os.sync()
        with Ledger.open(settings) as ledger, frozen_heap():
            return _run(ledger, source, rows, n, pg_url, progress)


def _settle_postgres(url: str) -> None:
    """Vacuum, analyze and checkpoint the freshly loaded table, so that autovacuum and the
    checkpointer are not busy with it while the cases run."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("VACUUM ANALYZE population")
            conn.exec_driver_sql("CHECKPOINT")
    finally:
        engine.dispose()


def _run(
    ledger: Ledger, source: Path, rows: int, n: int, pg_url: str | None, progress: Callable[[str], None]
) -> list[CaseResult]:
    registrar = ledger.parties.authenticate(TOKEN)
    provider, _ = ledger.parties.register(
        registrar, NewParty(kind=PartyKind.DEPARTMENT, name="贵阳市公安局", uscc=make_uscc(9001))
    )
    user, _ = ledger.parties.register(
        registrar, NewParty(kind=PartyKind.DEPARTMENT, name="贵阳市民政局", uscc=make_uscc(9002))
    )
    spec = ResourceSpec(
        code="BENCH-POP",
        name="人口基础信息",
        format="table",
        share_type=ShareType.CONDITIONAL,
        open_type=OpenType.NONE,
        level=2,
        update_frequency="daily",
        legal_basis="bench",
        fields=demodata.TABLES["population"],
    )
    resource = ledger.catalog.create(provider, spec)
    url = f"sqlite:///{source}"
    ledger.gateway.register_source(
        provider, resource.id, SourceSpec(kind=SourceKind.SQL, location=url, table="population")
    )
    # The same rows as a query source: read and encoded in Python (the general path, as for a
    # PostgreSQL or CSV source), where the table source has SQLite write the rows' JSON text.
    queried = ledger.catalog.create(provider, dataclasses.replace(spec, code="BENCH-POP-QUERY"))
    ledger.gateway.register_source(
        provider, queried.id, SourceSpec(kind=SourceKind.SQL, location=url, query="SELECT * FROM population")
    )
    names = [f.name for f in demodata.TABLES["population"]]
    now = datetime.now(UTC)

    def grant(mode: AccessMode, fields: list[str], resource_id: str = resource.id) -> str:
        scope = Scope(
            fields=fields,
            valid_from=now - timedelta(minutes=1),
            valid_until=now + timedelta(days=1),
            mode=mode,
            max_records=1000,
            max_accesses=1_000_000,
        )
        req = ledger.sharing.submit(
            user,
            resource_id=resource_id,
            purpose_code="social_assistance",
            purpose_text="bench",
            legal_basis="bench",
            scope=scope,
            signing=Signing.CUSTODIAL,
        )
        done = ledger.sharing.decide(
            provider, req.id, approve=True, reason="", conditions=None, signing=Signing.CUSTODIAL
        )
        assert done.grant_id
        return done.grant_id

    engine = sa.create_engine(url)
    table = sa.Table("population", sa.MetaData(), autoload_with=engine)
    subjects = [r["id_number"] for r in demodata.generate("population", 100)]

    def direct(
        columns: list[str], where: Any = None, limit: int | None = 1000, on: sa.Engine = engine
    ) -> Callable[[], Any]:
        query = sa.select(*(table.c[c] for c in columns))
        if where is not None:
            query = query.where(where)
        if limit:
            query = query.limit(limit)

        def read() -> bytes:
            with on.connect() as conn:
                out = [dict(zip(columns, r, strict=True)) for r in conn.execute(query)]
            return json.dumps(out, ensure_ascii=False, default=str).encode()

        return read

    cases: list[tuple[str, AccessMode, list[str], AccessRequest, Callable[[], Any], int, str]] = [
        ("raw, 1,000 rows", AccessMode.RAW, names, AccessRequest(), direct(names), 1000, resource.id),
        (
            "raw, 1,000 rows, query source (general path)",
            AccessMode.RAW,
            names,
            AccessRequest(),
            direct(names),
            1000,
            queried.id,
        ),
        ("masked, 1,000 rows", AccessMode.MASKED, names, AccessRequest(), direct(names), 1000, resource.id),
        (
            "raw, 10 rows",
            AccessMode.RAW,
            names,
            AccessRequest(limit=10),
            direct(names, limit=10),
            10,
            resource.id,
        ),
        (
            f"aggregate by district over {rows:,} rows",
            AccessMode.AGGREGATE,
            ["district", "household_type"],
            AccessRequest(group_by=["district"], metrics=["count"]),
            direct(["district", "household_type"], limit=None),
            rows,
            resource.id,
        ),
        (
            "verify, 100 subjects",
            AccessMode.VERIFY,
            ["id_number"],
            AccessRequest(subjects=subjects, key="id_number"),
            direct(["id_number"], where=table.c.id_number.in_(subjects), limit=None),
            100,
            resource.id,
        ),
    ]
    pg_engine = None
    if pg_url is not None:
        pg_resource = ledger.catalog.create(provider, dataclasses.replace(spec, code="BENCH-POP-PG"))
        ledger.gateway.register_source(
            provider, pg_resource.id, SourceSpec(kind=SourceKind.SQL, location=pg_url, table="population")
        )
        pg_engine = sa.create_engine(pg_url)
        cases.insert(
            2,
            (
                "raw, 1,000 rows, PostgreSQL table (general path)",
                AccessMode.RAW,
                names,
                AccessRequest(),
                direct(names, on=pg_engine),
                1000,
                pg_resource.id,
            ),
        )
    results: list[CaseResult] = []
    log = ledger.gateway.log
    record = log.record
    indexer = ledger.subject_indexer
    for label, mode, fields, req, baseline, per_access, resource_id in cases:
        gid = grant(mode, fields, resource_id)
        request = dataclasses.replace(req, grant=gid)
        reps = n if per_access <= 1000 else max(3, n // 50)
        progress(f"{label}: {reps} accesses")
        ledger.gateway.access(user, resource_id, request)  # warm the grant cache and the source engine
        baseline()

        def mediated(r: AccessRequest = request, rid: str = resource_id) -> Any:
            return ledger.gateway.access(user, rid, r)

        indexer.catch_up()  # the previous case's subjects: not this case's cost
        timed = _Timed(record)
        log.record = timed  # type: ignore[method-assign]
        try:
            run = _paired(mediated, baseline, reps)
        finally:
            log.record = record  # type: ignore[method-assign]
        started = time.perf_counter()
        indexed = indexer.catch_up()
        index_ms = (time.perf_counter() - started) * 1000 / max(indexed, 1)
        gateway_ms = statistics.median(run.mediated) * 1000
        direct_ms = statistics.median(run.direct) * 1000
        per_s = reps / sum(run.mediated)
        cpu_ms = run.cpu / reps * 1000
        results.append(
            CaseResult(
                case=label,
                rows=per_access,
                n=reps,
                gateway_ms=gateway_ms,
                log_ms=statistics.median(timed.times) * 1000,
                cpu_ms=cpu_ms,
                index_ms=index_ms,
                direct_ms=direct_ms,
                accesses_per_s=per_s,
                rows_per_s=per_s * per_access,
                overhead_pct=(gateway_ms / direct_ms - 1) * 100,
            )
        )
    engine.dispose()
    if pg_engine is not None:
        pg_engine.dispose()
    return results


def render(results: list[CaseResult]) -> Table:
    table = Table(title="sharetrail bench gateway — mediated access vs direct SQLAlchemy read")
    columns = (
        "case",
        "n",
        "gateway ms (p50)",
        "of it log ms (p50)",
        "gateway cpu ms",
        "subject index ms (later)",
        "direct ms (p50)",
        "overhead",
        "accesses/s",
        "rows/s",
    )
    for col in columns:
        table.add_column(col, justify="left" if col == "case" else "right")
    for r in results:
        table.add_row(
            r["case"],
            str(r["n"]),
            f"{r['gateway_ms']:.2f}",
            f"{r['log_ms']:.2f}",
            f"{r['cpu_ms']:.2f}",
            f"{r['index_ms']:.2f}",
            f"{r['direct_ms']:.2f}",
            f"{r['overhead_pct']:+.0f}%",
            f"{r['accesses_per_s']:.1f}",
            f"{r['rows_per_s']:,.0f}",
        )
    return table
