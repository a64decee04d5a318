"""``sharetrail bench all``: the issue-8 figures in one run and one table, each beside its comparison.

- **ingest** — acknowledged events/s: in-process ``LogStore.append`` and HTTP
  ``POST /v1/access-events``, 1000 per batch, on SQLite and on PostgreSQL (fsync on); beside the naive
  designs: one database transaction per event on the same backend, one chain transaction per event.
- **merkle** — append and inclusion proofs of our durable log; beside pymerkle 7 on the same entries
  (in memory and SQLite).
- **proofs** — ``LogStore.inclusion_proof`` p50/p99 at 10M leaves; beside the mean at the pymerkle
  comparison's size, ours and pymerkle's SQLite tree.
- **verify** — the full ``verify`` (every leaf and root recomputed, the anchors checked), events/s;
  beside the naive audit, each entry checked by its own inclusion proof.
- **trail** — ``TrailService.query`` p95 at 10M events (worst and median filter); beside the 100 ms
  target and the naive JSON scan of the same filter.
- **api** — requests/s and p50/p99 of a checkpoint / proof / ingest mix under concurrency against
  ``uvicorn --workers 2``; beside the same mix against one worker.

Everything comes from the benchmark modules that measure it (``ledger.bench.log``, ``.trail``,
``.load``); this module runs them with one set of sizes and puts their figures side by side. The
10M-event log is built once, by the trail benchmark (its bulk path: the Merkle nodes and the trail
columns as the store writes them), and the proof latency is measured on the same file.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.table import Table

from ledger.bench import log as logbench
from ledger.bench.load import LoadSizes, run_load_bench
from ledger.log import merkle
from ledger.runtime import Ledger
from ledger.settings import Settings

Say = Callable[[str], None]


@dataclass(frozen=True)
class SuiteSizes:
    ingest_events: int = 100_000  # in-process, per backend
    http_events: int = 50_000  # HTTP, per backend
    per_event: int = 1000  # the naive one-transaction-per-event append, per backend
    naive_chain: int = 200  # one chain transaction per event
    compare: int = 1_000_000  # leaves of the pymerkle comparison
    proofs: int = 2000
    big_log: int = 10_000_000  # events of the trail / proof-latency log
    latency_samples: int = 2000
    trail_samples: int = 200
    trail_naive_samples: int = 3  # the naive JSON scan, per filter
    trail_naive_budget: float = 5.0  # seconds before a naive scan is abandoned
    verify_events: int = 200_000
    naive_verify: int = 2000  # entries checked one proof each
    load: LoadSizes = field(default_factory=LoadSizes)

    @classmethod
    def quick(cls) -> SuiteSizes:
        return cls(
            ingest_events=2000,
            http_events=2000,
            per_event=50,
            naive_chain=5,
            compare=2000,
            proofs=100,
            big_log=5000,
            latency_samples=100,
            trail_samples=10,
            trail_naive_samples=1,
            trail_naive_budget=1.0,
            verify_events=3000,
            naive_verify=100,
            load=LoadSizes.quick(),
        )


@dataclass(frozen=True)
class Figure:
    section: str
    figure: str
    value: float
    unit: str
    beside: str = ""  # the comparison, with its own figure
    ratio: str = ""  # ours against the comparison, or a target's verdict
    n: int = 0
    seconds: float = 0.0


@dataclass
class SuiteResult:
    figures: list[Figure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def get(self, section: str, prefix: str) -> Figure:
        for f in self.figures:
            if f.section == section and f.figure.startswith(prefix):
                return f
        raise KeyError(f"{section}: {prefix}")


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _x(ours: float, theirs: float) -> str:
    return f"{ours / theirs:,.1f}×" if theirs else "—"


# --------------------------------------------------------------------------- naive baselines


def per_event_rate(url: str, n: int, case: str) -> logbench.Row:
    """The naive append: ``LogStore.append`` of one event at a time, a durable transaction each."""
    log = logbench._open_log(url)
    try:
        log.append(logbench._entries("warm1-", 0, 2))
        entries = logbench._entries("one-", 0, n)
        start = time.perf_counter()
        for entry in entries:
            log.append([entry])
        seconds = time.perf_counter() - start
    finally:
        log.store.close()
    return logbench.Row(logbench.M_ACK, case, n, seconds, n / seconds, "events/s")


def naive_verify_rate(ledger: Ledger, n: int) -> tuple[int, float]:
    """Check ``n`` entries (spread over the log) the naive way: each re-hashed and checked by its own
    RFC 9162 inclusion proof against the latest anchored root. Returns (entries, seconds)."""
    log = ledger.log.log
    checkpoint = log.latest_checkpoint()
    if checkpoint is None:
        raise RuntimeError("nothing anchored to verify against")
    size, root = checkpoint.size, bytes(checkpoint.root)
    step = max(1, size // n)
    indices = list(range(0, size, step))[:n]
    start = time.perf_counter()
    for index in indices:
        entry = log.entry(index)
        proof = log.inclusion_proof(index, size)
        merkle.verify_inclusion(merkle.leaf_hash(entry.entry), index, size, proof, root)
    return len(indices), time.perf_counter() - start


@contextlib.contextmanager
def _pg_databases(say: Say, skipped: list[str]) -> Iterator[Callable[[], str] | None]:
    """A throw-away PostgreSQL server (fsync on) and a maker of fresh databases on it; None (and a
    line in ``skipped``) without PostgreSQL binaries."""
    from ledger.bench._pg import PgServer, PgUnavailable

    try:
        server = PgServer()
        url = server.start()
    except PgUnavailable as exc:
        skipped.append(f"PostgreSQL: {exc}")
        yield None
        return
    try:
        import psycopg
        from psycopg import sql
        from sqlalchemy.engine import make_url

        def fresh() -> str:
            name = f"bench_{uuid.uuid4().hex[:12]}"
            admin = f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return make_url(url).set(database=name).render_as_string(hide_password=False)

        say(f"PostgreSQL server up on port {server.port}")
        yield fresh
    finally:
        server.stop()


# --------------------------------------------------------------------------- sections


def ingest(
    sizes: SuiteSizes, workdir: Path, pg: Callable[[], str] | None, app_factory: str, say: Say
) -> list[Figure]:
    backends: dict[str, Callable[[], str]] = {
        "SQLite": lambda: f"sqlite:///{workdir / uuid.uuid4().hex}.sqlite"
    }
    if pg is not None:
        backends["PostgreSQL"] = pg
    say(f"ingest: naive, {sizes.naive_chain} chain transactions (one per event) …")
    settings = Settings(
        data_dir=workdir / "naive-chain", bootstrap_token=logbench.BOOTSTRAP_TOKEN, anchor_loop=False
    )
    with Ledger.open(settings) as ledger:
        chain = logbench.naive_rate(ledger, sizes.naive_chain)
    figures: list[Figure] = []
    for backend, make_url in backends.items():
        say(f"ingest, {backend}: one transaction per event, {sizes.per_event:,} events …")
        naive = per_event_rate(make_url(), sizes.per_event, f"1 transaction per event, {backend}")
        say(f"ingest, {backend}: in-process, {sizes.ingest_events:,} events …")
        local = logbench.ack_rate(make_url(), sizes.ingest_events, "in-process")
        say(f"ingest, {backend}: HTTP, {sizes.http_events:,} events …")
        remote = logbench.http_rate(
            app_factory,
            sizes.http_events,
            workdir,
            say,
            db_url=None if backend == "SQLite" else make_url(),
        )
        beside = (
            f"naive: 1 DB transaction per event ({backend}) {_rate(naive.value)}/s; "
            f"1 chain transaction per event (embedded, Anchor.recordLeaf) {_rate(chain.value)}/s"
        )
        for label, row in (
            (f"in-process LogStore.append, 1000/batch, {backend}", local),
            (f"HTTP POST /v1/access-events, 1000/request, 1 uvicorn worker, {backend}", remote),
        ):
            figures.append(
                Figure(
                    "ingest",
                    label,
                    row.value,
                    "events/s",
                    beside,
                    f"{_x(row.value, naive.value)} / {_x(row.value, chain.value)}",
                    row.n,
                    row.seconds,
                )
            )
    return figures


def merkle_vs_pymerkle(sizes: SuiteSizes, workdir: Path, say: Say) -> tuple[list[Figure], dict[str, float]]:
    say(f"merkle: ours vs pymerkle at {sizes.compare:,} leaves …")
    rows, _ = logbench.compare(sizes.compare, sizes.proofs, workdir, say)

    def value(suffix: str) -> logbench.Row:
        return next(r for r in rows if r.case.endswith(suffix))

    ours = value("append, ours (LogStore, SQLite, durable per 1000, given the encoded entries)")
    mem = value("append, pymerkle InmemoryTree.append_entry (not durable)")
    bulk = value("append, pymerkle SqliteTree.append_entries (1 transaction)")
    single = value("append, pymerkle SqliteTree.append_entry (1 commit each)")
    cold = value("proofs, ours LogStore.inclusion_proof (1 call each, cold cache)")
    batched = value("proofs, ours LogStore.inclusion_proofs (1 node read for all)")
    warm = value("proofs, ours LogStore.inclusion_proof, same indices again (warm cache)")
    pm_mem = value("proofs, pymerkle InmemoryTree.prove_inclusion")
    pm_sql = value("proofs, pymerkle SqliteTree.prove_inclusion")
    pm_sql_warm = value("proofs, pymerkle SqliteTree.prove_inclusion, same indices again (its cache warm)")
    at = f"{sizes.compare:,} leaves"
    figures = [
        Figure(
            "merkle",
            f"append, ours (SQLite, durable per 1000), {at}",
            ours.value,
            "leaves/s",
            f"pymerkle SqliteTree.append_entries (1 transaction) {_rate(bulk.value)}/s; "
            f"InmemoryTree {_rate(mem.value)}/s",
            f"{_x(ours.value, bulk.value)} / {_x(ours.value, mem.value)}",
            ours.n,
            ours.seconds,
        ),
        Figure(
            "merkle",
            f"append, ours, {at} (vs a commit per entry)",
            ours.value,
            "leaves/s",
            f"pymerkle SqliteTree.append_entry (1 commit each) {_rate(single.value)}/s",
            _x(ours.value, single.value),
            ours.n,
            ours.seconds,
        ),
    ]
    for label, row in (
        ("inclusion proofs, ours LogStore.inclusion_proof (cold cache)", cold),
        ("inclusion proofs, ours LogStore.inclusion_proofs (batched)", batched),
        ("inclusion proofs, ours, same indices again (warm cache)", warm),
    ):
        figures.append(
            Figure(
                "merkle",
                f"{label}, {at}",
                row.value,
                "proofs/s",
                f"pymerkle InmemoryTree {_rate(pm_mem.value)}/s; SqliteTree {_rate(pm_sql.value)}/s"
                + (f" (again, its cache warm: {_rate(pm_sql_warm.value)}/s)" if row is warm else ""),
                f"{_x(row.value, pm_mem.value)} / {_x(row.value, pm_sql.value)}"
                + (f" (/ {_x(row.value, pm_sql_warm.value)})" if row is warm else ""),
                row.n,
                row.seconds,
            )
        )
    means = {"ours": 1000 / cold.value, "pymerkle SqliteTree": 1000 / pm_sql.value}
    return figures, means


def big_log(
    sizes: SuiteSizes, workdir: Path, means: dict[str, float], say: Say, db: Path | None = None
) -> tuple[list[Figure], list[str]]:
    """The trail query p95 and the proof latency, on one log of ``big_log`` events: built here by the
    trail benchmark, or ``db``, an SQLite file that ``sharetrail bench trail --db`` built before
    (holding exactly ``big_log`` events; only read here)."""
    figures: list[Figure] = []
    skipped: list[str] = []
    path = db or workdir / "big.sqlite"
    if db is not None:
        _require_current_schema(db)
        skipped.append(f"the {sizes.big_log:,}-event log was reused from {db} (its build is not timed here)")
    try:
        from ledger.bench.trail import TARGET_P95_MS, TrailSizes, run_trail_bench
    except ImportError as exc:
        skipped.append(f"trail p95 — see `sharetrail bench trail` ({exc})")
    else:
        base = TrailSizes.quick() if sizes.big_log < 100_000 else TrailSizes()
        trail_sizes = replace(
            base,
            events=sizes.big_log,
            samples=sizes.trail_samples,
            naive_samples=sizes.trail_naive_samples,
            naive_budget=sizes.trail_naive_budget,
        )
        say(f"trail: building a {sizes.big_log:,}-event log and timing the filters …")
        result = run_trail_bench(trail_sizes, db=path, progress=say)
        rows = sorted(result.rows, key=lambda r: r.p95)
        worst, median_p95 = rows[-1], statistics.median(r.p95 for r in rows)
        verdict = "met" if worst.p95 <= TARGET_P95_MS else "MISSED"
        figures.append(
            Figure(
                "trail",
                f"TrailService.query p95 at {sizes.big_log:,} events, "
                f"worst of {len(rows)} filters ({worst.case})",
                worst.p95,
                "ms",
                f"target ≤ {TARGET_P95_MS:g} ms; naive JSON scan, same filter: {worst.naive or '—'}",
                verdict,
                worst.n,
                0.0,
            )
        )
        figures.append(
            Figure(
                "trail",
                f"TrailService.query p95 at {sizes.big_log:,} events, median of the {len(rows)} filters",
                median_p95,
                "ms",
                f"best filter ({rows[0].case}) {rows[0].p95:.2f} ms",
                "met" if median_p95 <= TARGET_P95_MS else "MISSED",
                sum(r.n for r in rows),
                0.0,
            )
        )
    say(f"proofs: inclusion proof latency at {sizes.big_log:,} leaves …")
    rows_lat = logbench.proof_latency(path, sizes.big_log, sizes.latency_samples, say)
    p50 = next(r for r in rows_lat if r.case.endswith(" p50"))
    p99 = next(r for r in rows_lat if r.case.endswith(" p99"))
    build = [r for r in rows_lat if r.case.startswith("build")]
    if build:
        skipped.append(
            f"the {sizes.big_log:,}-leaf log for the proofs was built by LogStore.append "
            f"({build[0].seconds:.0f} s)"
        )
    beside = (
        f"mean at {sizes.compare:,} leaves: ours {means['ours']:.2f} ms, "
        f"pymerkle SqliteTree {means['pymerkle SqliteTree']:.2f} ms"
    )
    for row, label in ((p50, "p50"), (p99, "p99")):
        figures.append(
            Figure(
                "proofs",
                f"LogStore.inclusion_proof at {sizes.big_log:,} leaves, {label}",
                row.value,
                "ms",
                beside,
                "",
                row.n,
                row.seconds,
            )
        )
    return figures, skipped


def _require_current_schema(db: Path) -> None:
    """A reused log must already be at the migrations' head: opening it must not rebuild indexes of
    millions of rows (or change a file another benchmark owns)."""
    import sqlite3

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from ledger.store.db import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        found = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    if found is None or found[0] != head:
        raise RuntimeError(
            f"{db} is at migration {found and found[0]}, not {head}: rebuild it or leave it out"
        )


def verify_section(sizes: SuiteSizes, workdir: Path, say: Say) -> list[Figure]:
    settings = Settings(
        data_dir=workdir / "verify", bootstrap_token=logbench.BOOTSTRAP_TOKEN, anchor_loop=False
    )
    with Ledger.open(settings) as ledger:
        say(f"verify: {sizes.verify_events:,} events, full audit …")
        rows = logbench.verify_rate(ledger, sizes.verify_events, say)
        say(f"verify: naive, {sizes.naive_verify:,} entries by their own inclusion proofs …")
        n, seconds = naive_verify_rate(ledger, sizes.naive_verify)
    full = rows[0]
    naive = n / seconds
    return [
        Figure(
            "verify",
            f"full verify (SQLite, embedded chain), {full.n:,} entries",
            full.value,
            "events/s",
            f"naive: each entry by its own inclusion proof {_rate(naive)}/s ({n:,} sampled); "
            "target ≥ 100,000/s",
            f"{_x(full.value, naive)}; {'met' if full.value >= 100_000 else 'MISSED'}",
            full.n,
            full.seconds,
        )
    ]


def api_section(
    sizes: SuiteSizes, pg: Callable[[], str] | None, app_factory: str, say: Say, chain_url: str | None = None
) -> tuple[list[Figure], list[str]]:
    """The load against 1 and 2 workers, on ``chain_url`` or a Hardhat node started here."""
    from ledger.chain.devnode import HardhatNode

    backends: dict[str, str | None] = {"SQLite": None}
    if pg is not None:
        backends["PostgreSQL"] = pg()
    with contextlib.ExitStack() as stack:
        if chain_url is None:
            try:
                chain_url = stack.enter_context(HardhatNode()).url
            except RuntimeError as exc:
                return [], [f"API load: needs a Hardhat node for several workers ({exc})"]
        say("api: the load runs …")
        results = run_load_bench(
            sizes.load, app_factory=app_factory, chain_url=chain_url, backends=backends, progress=say
        )
    figures: list[Figure] = []
    mix = "/".join(
        f"{op} {w}" for op, w in zip(("checkpoint", "proof", "ingest"), sizes.load.mix, strict=True)
    )
    for result in results:
        one = next((r for r in results if r.backend == result.backend and r.workers == 1), result)
        errors = f"; errors {result.errors}" if result.errors else ""
        ops = ", ".join(f"{op} p99 {s.p99:.0f} ms" for op, s in result.ops.items())
        figures.append(
            Figure(
                "api",
                f"{result.label}: mix {mix}, {result.concurrency} clients (p50 {result.p50:.1f} ms, "
                f"p99 {result.p99:.1f} ms; {ops}){errors}",
                result.rps,
                "req/s",
                "—" if result is one else f"1 worker: {_rate(one.rps)} req/s, p99 {one.p99:.1f} ms",
                "" if result is one else _x(result.rps, one.rps),
                result.requests,
                result.seconds,
            )
        )
    return figures, []


# --------------------------------------------------------------------------- the run


def run_suite(
    sizes: SuiteSizes,
    *,
    app_factory: str,
    postgres: bool = True,
    chain_url: str | None = None,
    big_log_db: Path | None = None,
    progress: Say | None = None,
) -> SuiteResult:
    """Every section, in one run; ``app_factory`` (``"api.app:create_app"``) for the HTTP figures;
    ``chain_url``: an external node for the multi-worker load (else a Hardhat node is started);
    ``big_log_db``: a log built before by ``sharetrail bench trail --db`` to reuse."""
    say = progress or (lambda _msg: None)
    result = SuiteResult()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sharetrail-bench-suite-") as tmp:
        workdir = Path(tmp)
        with contextlib.ExitStack() as stack:
            pg = stack.enter_context(_pg_databases(say, result.skipped)) if postgres else None
            result.figures += ingest(sizes, workdir, pg, app_factory, say)
            merkle_figures, means = merkle_vs_pymerkle(sizes, workdir, say)
            result.figures += merkle_figures
            big, notes = big_log(sizes, workdir, means, say, big_log_db)
            result.figures += big
            result.skipped += notes
            result.figures += verify_section(sizes, workdir, say)
            api, notes = api_section(sizes, pg, app_factory, say, chain_url)
            result.figures += api
            result.skipped += notes
    result.seconds = time.perf_counter() - started
    return result


def run_api(
    sizes: SuiteSizes, *, app_factory: str, postgres: bool = True, progress: Say | None = None
) -> SuiteResult:
    """The API section alone (``sharetrail bench load``)."""
    say = progress or (lambda _msg: None)
    result = SuiteResult()
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        pg = stack.enter_context(_pg_databases(say, result.skipped)) if postgres else None
        figures, notes = api_section(sizes, pg, app_factory, say)
    result.figures, result.seconds = figures, time.perf_counter() - started
    result.skipped += notes
    return result


def render(result: SuiteResult, title: str = "sharetrail bench all") -> Table:
    table = Table(title=f"{title} ({result.seconds / 60:.1f} min)")
    for name in ("section", "figure", "value", "unit", "beside it", "ours / it", "n", "s"):
        table.add_column(name, justify="right" if name in ("value", "n", "s") else "left")
    for f in result.figures:
        table.add_row(
            f.section,
            f.figure,
            _rate(f.value),
            f.unit,
            f.beside,
            f.ratio,
            f"{f.n:,}" if f.n else "",
            f"{f.seconds:.2f}" if f.seconds else "",
        )
    for note in result.skipped:
        table.add_row("note", note, "", "", "", "", "", "")
    return table
