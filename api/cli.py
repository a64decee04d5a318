"""The ``sharetrail`` command (DESIGN.md public contract).

It lives in the top layer because ``serve`` and ``demo`` run the web app; the other commands call
straight into ``ledger``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from api.app import create_app
from ledger.settings import Settings

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="sharetrail: auditable data-sharing ledger"
)

HostOpt = Annotated[str, typer.Option(help="interface to listen on")]
PortOpt = Annotated[int, typer.Option(help="TCP port")]


def _serve(settings: Settings, host: str, port: int, *, demo: bool) -> None:
    import uvicorn

    from ledger.runtime import Ledger

    ledger = Ledger.open(settings)
    try:
        if ledger.bootstrap.registrar_token:
            typer.echo(f"registrar token (shown once): {ledger.bootstrap.registrar_token}")
        if demo:
            from ledger.demo import seed

            for line in seed(ledger):
                typer.echo(line)
        typer.echo(f"sharetrail listening on http://{host}:{port}  (OpenAPI: http://{host}:{port}/docs)")
        sys.stdout.flush()
        uvicorn.run(create_app(settings, ledger=ledger), host=host, port=port, log_level="warning")
    finally:
        ledger.close()


@app.command()
def serve(host: HostOpt = "127.0.0.1", port: PortOpt = 8000) -> None:
    """Run the API, the console and (by default) the embedded chain."""
    _serve(Settings(), host, port, demo=False)


@app.command()
def demo(host: HostOpt = "127.0.0.1", port: PortOpt = 8000) -> None:
    """Serve a seeded city scenario (its own data dir unless SHARETRAIL_DATA_DIR is set)."""
    if "SHARETRAIL_DATA_DIR" not in os.environ:
        os.environ["SHARETRAIL_DATA_DIR"] = str(Path(".sharetrail-demo").resolve())
    _serve(Settings(), host, port, demo=True)


@app.command()
def init() -> None:
    """Prepare the data directory, database and chain once: migrations, keys, the registrar, contracts.

    Run it before starting several workers (``uvicorn --workers N``) on a new deployment, so that
    they do not all try to deploy the contracts at the same time."""
    from ledger.runtime import Ledger

    with Ledger.open(Settings()) as ledger:
        if ledger.bootstrap.registrar_token:
            typer.echo(f"registrar token (shown once): {ledger.bootstrap.registrar_token}")
        typer.echo(f"chain {ledger.chain.kind} id {ledger.chain.chain_id}; database {ledger.store.dialect}")
        for name, contract in ledger.contracts.items():
            typer.echo(f"{name}: {contract.address}")


@app.command()
def verify() -> None:
    """Full integrity audit of the database against the chain; exit 1 naming each broken record."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ledger.log.verify import verify as run_verify
    from ledger.runtime import Ledger

    console = Console(stderr=True)
    with Ledger.open(Settings()) as ledger:
        total = max(ledger.log.log.size(), 1)
        columns = (TextColumn("verifying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("verify", total=total)
            report = run_verify(
                ledger.store,
                ledger.chain,
                ledger.contracts["Anchor"],
                progress=lambda done: bar.update(task, completed=min(done, total)),
            )
    typer.echo(
        f"entries: {report.entries}  anchored size: {report.anchored_size}  "
        f"checkpoints checked: {report.checkpoints}"
    )
    if report.intact:
        typer.echo("intact: every record matches the roots anchored on chain")
        return
    for problem in report.problems:
        typer.echo(problem.describe())
    typer.echo(f"BROKEN: {len(report.problems)} problem(s)")
    raise typer.Exit(1)


@app.command("verify-bundle")
def verify_bundle_cmd(
    file: Annotated[Path, typer.Argument(help="proof bundle JSON file ('-' for stdin)")],
    rpc: Annotated[str, typer.Option("--rpc", help="chain JSON-RPC endpoint URL")],
) -> None:
    """Check a proof bundle with nothing but a chain endpoint."""
    import json

    from ledger.errors import VerificationError
    from ledger.log.bundle import verify_bundle

    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
        bundle = json.loads(text)
    except (OSError, ValueError) as exc:
        typer.echo(f"FAILED malformed_bundle: cannot read {file}: {exc}")
        raise typer.Exit(1) from exc
    try:
        verify_bundle(bundle, rpc)
    except VerificationError as exc:
        typer.echo(f"FAILED {exc.code}: {exc.message}")
        raise typer.Exit(1) from exc
    typer.echo(
        f"OK: log entry {bundle['leaf_index']} is included in the root anchored at tree size "
        f"{bundle['tree_size']} on chain {bundle['anchor']['chain_id']}"
    )


@app.command()
def monitor(
    url: Annotated[str, typer.Option("--url", help="the sharetrail server, e.g. https://ledger.example.gov")],
    rpc: Annotated[str, typer.Option("--rpc", help="chain JSON-RPC endpoint URL")],
    token: Annotated[
        str, typer.Option("--token", envvar="SHARETRAIL_TOKEN", help="an API token (env SHARETRAIL_TOKEN)")
    ],
    key: Annotated[
        str | None, typer.Option("--key", help="the operator's note verifier key (else pinned on first run)")
    ] = None,
    state: Annotated[
        Path | None, typer.Option("--state", help="JSON file: the pinned key and the checkpoint seen last")
    ] = None,
    entries: Annotated[
        bool,
        typer.Option("--entries", help="also check every entry (regulator, registrar or operator token)"),
    ] = False,
    since_last: Annotated[
        bool,
        typer.Option(
            "--since-last",
            help="with --state: skip level-0 tiles and entries inside the tree checked last time",
        ),
    ] = False,
    workers: Annotated[int, typer.Option(min=1, max=64, help="tile requests in flight")] = 8,
) -> None:
    """Check the whole log from outside: signed checkpoint, its anchor on chain, every tile, growth."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ledger.errors import VerificationError
    from ledger.log.monitor import monitor as run_monitor

    console = Console(stderr=True)
    columns = (TextColumn("tiles"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("tiles", total=None)
            report = run_monitor(
                url.rstrip("/"),
                token,
                rpc,
                key=key,
                state_path=state,
                entries=entries,
                since_last=since_last,
                workers=workers,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except VerificationError as exc:
        typer.echo(f"FAILED {exc.code}: {exc.message}")
        raise typer.Exit(1) from exc
    grew = "" if report.previous_size is None else f"; grew from {report.previous_size:,} (append-only)"
    checked = f"; {report.entries:,} entries match their leaves" if entries else ""
    typer.echo(
        f"OK: {report.origin} size {report.size:,} root 0x{report.root.hex()} is signed, anchored on chain "
        f"and matches all {report.tiles:,} tiles{grew}{checked}"
    )


CountOpt = Annotated[int | None, typer.Option(min=0, help="set this count (overrides --scale)")]
SIM_SQLITE_CACHE_MIB = 4096  # ledger.sim.run.SimOptions' default (imported lazily there)


@app.command()
def simulate(
    scale: Annotated[float, typer.Option(min=1e-9, help="multiply every default count")] = 1.0,
    departments: CountOpt = None,
    resources: CountOpt = None,
    grants: CountOpt = None,
    events: CountOpt = None,
    days: Annotated[int | None, typer.Option(min=1, help="length of the simulated period")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="a fresh directory [default: ./.sharetrail-sim/<UTC time>-seed<seed>]")
    ] = None,
    db_url: Annotated[str | None, typer.Option(help="an empty database (postgresql+psycopg:// …)")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 2021,
    sqlite_cache_mib: Annotated[
        int, typer.Option(min=2, help="SQLite page cache per connection, MiB (allocated as used)")
    ] = SIM_SQLITE_CACHE_MIB,
    defer_indexes: Annotated[
        bool, typer.Option(help="build the log's trail indexes once after the events, as an import does")
    ] = True,
) -> None:
    """A synthetic city through the real services, anchored and verified; exit 1 unless intact.

    Defaults (Guiyang 2021): 423 departments, 18,725 catalog items, 2,000 grants, 30.54M events, 365 days.
    """
    from rich.console import Console

    from ledger.errors import LedgerError
    from ledger.sim.city import build_scale
    from ledger.sim.report import render
    from ledger.sim.run import SimOptions, default_data_dir
    from ledger.sim.run import simulate as run_simulation

    try:
        size = build_scale(
            scale, departments=departments, resources=resources, grants=grants, events=events, days=days
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    target = data_dir or default_data_dir(seed)
    typer.echo(f"simulating {size} in {target.resolve()}")
    options = SimOptions(
        scale=size,
        data_dir=target,
        db_url=db_url,
        seed=seed,
        sqlite_cache_mib=sqlite_cache_mib,
        defer_indexes=defer_indexes,
    )
    try:
        report = run_simulation(options, console=Console(stderr=True))
    except LedgerError as exc:
        typer.echo(f"simulate failed: {exc.code}: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    Console(width=max(Console().width, 120)).print(render(report))
    if not report.intact:
        raise typer.Exit(1)


from api.cli_bench import bench_app  # noqa: E402

app.add_typer(bench_app, name="bench")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
