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
