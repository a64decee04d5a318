"""``sharetrail bench …``: benchmarks that print figures (docs/benchmarks.md records them)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

bench_app = typer.Typer(
    no_args_is_help=True,
    help="Benchmarks; each prints its figures beside the naive approach (docs/benchmarks.md).",
)


@bench_app.command("chain")
def chain(
    n: Annotated[int, typer.Option(min=1, help="timed transactions per case")] = 200,
    external: Annotated[bool, typer.Option(help="also run on a throw-away Hardhat node")] = True,
) -> None:
    """Party registrations/s on the embedded chain, with and without coincurve, and on an external node."""
    from rich.console import Console

    from ledger.bench.chain import render, run_chain_bench

    err = Console(stderr=True)
    results = run_chain_bench(n, external=external, progress=lambda msg: err.print(msg, style="dim"))
    Console().print(render(results))


@bench_app.command("log")
def log(
    quick: Annotated[bool, typer.Option(help="tiny sizes: a smoke run of every measure")] = False,
    leaves: Annotated[
        int, typer.Option(min=1, help="largest size of the comparison with pymerkle")
    ] = 1_000_000,
    proof_leaves: Annotated[int, typer.Option(min=1, help="log size for the proof latency")] = 10_000_000,
    postgres: Annotated[bool, typer.Option(help="also append to a throw-away PostgreSQL server")] = True,
    http: Annotated[bool, typer.Option(help="also time POST /v1/access-events on uvicorn")] = True,
) -> None:
    """Acknowledged events/s, proofs vs pymerkle, proof latency, ack → anchored, verify rate."""
    from rich.console import Console

    from ledger.bench.log import Sizes, render, run_log_bench

    if quick:
        sizes = Sizes.quick()
    else:
        compare = tuple(sorted({min(100_000, leaves), leaves}))
        sizes = Sizes(compare=compare, proof_leaves=proof_leaves)
    err = Console(stderr=True)
    result = run_log_bench(
        sizes,
        postgres=postgres,
        http_app_factory="api.app:create_app" if http else None,
        progress=lambda msg: err.print(msg, style="dim"),
    )
    Console().print(render(result))


@bench_app.command("gateway")
def gateway(
    rows: Annotated[int, typer.Option(min=100, help="demo people in the source table")] = 100_000,
    n: Annotated[int, typer.Option(min=1, help="timed accesses per case")] = 200,
    postgres: Annotated[
        bool, typer.Option(help="also the raw case on a PostgreSQL table (a throw-away server)")
    ] = True,
) -> None:
    """Mediated accesses/s per mode (raw, masked, aggregate, verify) beside a direct SQLAlchemy read."""
    from contextlib import ExitStack

    from rich.console import Console

    from ledger.bench._pg import PgServer, PgUnavailable
    from ledger.bench.gateway import render, run_gateway_bench

    err = Console(stderr=True)
    with ExitStack() as stack:
        pg_url = None
        if postgres:
            try:
                pg_url = stack.enter_context(PgServer())
            except PgUnavailable as exc:
                err.print(f"PostgreSQL case skipped: {exc}", style="yellow")
        results = run_gateway_bench(
            rows=rows, n=n, pg_url=pg_url, progress=lambda msg: err.print(msg, style="dim")
        )
    Console().print(render(results))


@bench_app.command("share")
def share(
    n: Annotated[int, typer.Option(min=1, help="timed workflows per case")] = 100,
    external: Annotated[bool, typer.Option(help="also run on a throw-away Hardhat node")] = True,
) -> None:
    """Requests → decisions → grants per second (custodial, client, co-signed, auto-grant, floor), gas."""
    from rich.console import Console

    from ledger.bench.share import render, run_share_bench

    err = Console(stderr=True)
    results = run_share_bench(n, external=external, progress=lambda msg: err.print(msg, style="dim"))
    Console().print(render(results))


@bench_app.command("trail")
def trail(
    quick: Annotated[bool, typer.Option(help="a 5,000-event city: a smoke run of every filter")] = False,
    events: Annotated[int, typer.Option(min=1000, help="events in the log")] = 10_000_000,
    samples: Annotated[int, typer.Option(min=1, help="timed queries per filter")] = 200,
    naive_samples: Annotated[int, typer.Option(min=0, help="naive JSON-scan queries per filter")] = 3,
    naive_budget: Annotated[float, typer.Option(min=0.1, help="seconds per naive query, at most")] = 10.0,
    db: Annotated[
        Path | None, typer.Option(help="SQLite file to build the log in and keep (reused if it exists)")
    ] = None,
    postgres: Annotated[bool, typer.Option(help="on a throw-away PostgreSQL server instead")] = False,
) -> None:
    """Filtered trail queries (p50/p95/p99 per filter) on a large log, beside a JSON scan of the entries."""
    from dataclasses import replace

    from rich.console import Console

    from ledger.bench.trail import TrailSizes, render, run_trail_bench

    sizes = TrailSizes.quick() if quick else TrailSizes(events=events, samples=samples)
    if not quick:
        sizes = replace(sizes, naive_samples=naive_samples, naive_budget=naive_budget)
    err = Console(stderr=True)
    say = lambda msg: err.print(msg, style="dim")  # noqa: E731
    if postgres:
        from ledger.bench._pg import PgServer

        with PgServer() as url:
            result = run_trail_bench(sizes, db_url=url, progress=say)
    else:
        result = run_trail_bench(sizes, db=db, progress=say)
    Console().print(render(result))


@bench_app.command("all")
def all_(
    quick: Annotated[bool, typer.Option(help="tiny sizes: a smoke run of every section")] = False,
    big_log: Annotated[
        int, typer.Option(min=1000, help="events of the log for the trail p95 and the proof latency")
    ] = 10_000_000,
    compare: Annotated[int, typer.Option(min=1, help="leaves of the comparison with pymerkle")] = 1_000_000,
    load_seconds: Annotated[float, typer.Option(min=0.5, help="measured seconds per API load run")] = 20.0,
    big_log_db: Annotated[
        Path | None,
        typer.Option(help="reuse this log of exactly --big-log events (from `sharetrail bench trail --db`)"),
    ] = None,
    postgres: Annotated[bool, typer.Option(help="also on a throw-away PostgreSQL server")] = True,
) -> None:
    """Every headline figure in one run and one table, each beside its comparison.

    Ingest, the Merkle log against pymerkle, proof latency, verify, trail p95, API throughput under
    concurrency.
    """
    from dataclasses import replace

    from rich.console import Console

    from ledger.bench.suite import SuiteSizes, render, run_suite

    if quick:
        sizes = SuiteSizes.quick()
    else:
        sizes = SuiteSizes(big_log=big_log, compare=compare)
        sizes = replace(sizes, load=replace(sizes.load, seconds=load_seconds))
    err = Console(stderr=True)
    result = run_suite(
        sizes,
        app_factory="api.app:create_app",
        postgres=postgres,
        big_log_db=big_log_db,
        progress=lambda msg: err.print(msg, style="dim"),
    )
    Console(width=max(Console().width, 200)).print(render(result))


bench_app.command("suite", help="The same as `sharetrail bench all`.")(all_)


@bench_app.command("load")
def load(
    quick: Annotated[bool, typer.Option(help="a short smoke run")] = False,
    seconds: Annotated[float, typer.Option(min=0.5, help="measured seconds per run")] = 20.0,
    concurrency: Annotated[int, typer.Option(min=1, help="concurrent clients")] = 32,
    workers: Annotated[list[int] | None, typer.Option(min=1, help="uvicorn worker counts to run")] = None,
    postgres: Annotated[bool, typer.Option(help="also on a throw-away PostgreSQL server")] = True,
) -> None:
    """API requests/s and p50/p99 of a checkpoint / proof / ingest mix against uvicorn workers."""
    from rich.console import Console

    from ledger.bench.load import LoadSizes
    from ledger.bench.suite import SuiteSizes, render, run_api

    sizes = LoadSizes.quick() if quick else LoadSizes(seconds=seconds, concurrency=concurrency)
    if workers:
        from dataclasses import replace

        sizes = replace(sizes, workers=tuple(workers))
    err = Console(stderr=True)
    result = run_api(
        SuiteSizes(load=sizes),
        app_factory="api.app:create_app",
        postgres=postgres,
        progress=lambda msg: err.print(msg, style="dim"),
    )
    Console(width=max(Console().width, 200)).print(render(result, "sharetrail bench load"))
