"""``sharetrail bench …``: benchmarks that print figures (docs/benchmarks.md records them)."""

from __future__ import annotations

from typing import Annotated

import typer

bench_app = typer.Typer(
    no_args_is_help=True, help="benchmarks; each prints its figures beside the naive approach"
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
) -> None:
    """Mediated accesses/s per mode (raw, masked, aggregate, verify) beside a direct SQLAlchemy read."""
    from rich.console import Console

    from ledger.bench.gateway import render, run_gateway_bench

    err = Console(stderr=True)
    results = run_gateway_bench(rows=rows, n=n, progress=lambda msg: err.print(msg, style="dim"))
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
