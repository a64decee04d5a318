"""The ``sharetrail`` command (DESIGN.md public contract).

It lives in the top layer because ``serve`` and ``demo`` run the web app; the other commands call
straight into ``ledger``.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def _operator_errors() -> Iterator[None]:
    """A failure the operator can act on (a setting, the database, the chain, a busy port) is one
    line on stderr, ``error <code>: <message>``, and exit status 2 — not a traceback."""
    from pydantic import ValidationError

    from ledger.errors import LedgerError

    try:
        yield
    except LedgerError as exc:
        typer.echo(f"error {exc.code}: {exc.message}", err=True)
        raise typer.Exit(2) from None
    except ValidationError as exc:  # the SHARETRAIL_* settings
        problems = "; ".join(
            f"SHARETRAIL_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        typer.echo(f"error invalid_setting: {problems}", err=True)
        raise typer.Exit(2) from None


def _settings() -> Settings:
    with _operator_errors():
        return Settings()


def _check_port(host: str, port: int) -> None:
    """Refuse a port another server holds before starting anything (uvicorn would say so only after
    the ledger had opened and the start-up had printed that it listens)."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        typer.echo(f"error port_unavailable: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None


def _serve(settings: Settings, host: str, port: int, *, demo: bool) -> None:
    import uvicorn

    from ledger.runtime import Ledger

    _check_port(host, port)
    with _operator_errors():
        ledger = Ledger.open(settings)
    try:
        if ledger.bootstrap.registrar_token and not demo:  # the demo prints every party's token
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
    _serve(_settings(), host, port, demo=False)


@app.command()
def demo(host: HostOpt = "127.0.0.1", port: PortOpt = 8000) -> None:
    """Serve a seeded city scenario (its own data dir unless SHARETRAIL_DATA_DIR is set)."""
    if "SHARETRAIL_DATA_DIR" not in os.environ:
        os.environ["SHARETRAIL_DATA_DIR"] = str(Path(".sharetrail-demo").resolve())
    _serve(_settings(), host, port, demo=True)


@app.command()
def init() -> None:
    """Prepare the data directory, database and chain once: migrations, keys, the registrar, contracts.

    Run it before starting several workers (uvicorn --workers N) on a new deployment, so that they
    do not all try to deploy the contracts at the same time.
    """
    from ledger.runtime import Ledger

    with _operator_errors(), Ledger.open(_settings()) as ledger:
        if ledger.bootstrap.registrar_token:
            typer.echo(f"registrar token (shown once): {ledger.bootstrap.registrar_token}")
        typer.echo(f"chain {ledger.chain.kind} id {ledger.chain.chain_id}; database {ledger.store.dialect}")
        for name, contract in ledger.contracts.items():
            typer.echo(f"{name}: {contract.address}")


def _missing_ledger(settings: Settings) -> str | None:
    """Why ``settings`` name no existing ledger (verify must audit one, not create an empty one), or
    None: the master key, the embedded chain and the SQLite database are files of the data dir."""
    data_dir = settings.data_dir
    if not (data_dir / "master.key").is_file():
        return f"no sharetrail data directory at {data_dir.resolve()} (no master.key)"
    if settings.is_embedded and not (data_dir / "chain.sqlite").is_file():
        return f"no embedded chain in {data_dir.resolve()} (no chain.sqlite)"
    path = settings.database_url.partition("?")[0].removeprefix("sqlite:///")
    if settings.database_url.startswith("sqlite:///") and not Path(path).is_file():
        return f"no database at {path}"
    return None


@app.command()
def verify() -> None:
    """Full integrity audit of the database against the chain; exit 1 naming each broken record."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ledger.log.verify import verify as run_verify
    from ledger.runtime import Ledger

    console = Console(stderr=True)
    settings = _settings()
    missing = _missing_ledger(settings)
    if missing:
        typer.echo(
            f"error no_ledger: {missing}: nothing to verify (set SHARETRAIL_DATA_DIR, and SHARETRAIL_DB_URL "
            "and SHARETRAIL_CHAIN if the ledger uses them; the demo's data directory is .sharetrail-demo)",
            err=True,
        )
        raise typer.Exit(2)
    with _operator_errors(), Ledger.open(settings) as ledger:
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
    trust: Annotated[
        list[str] | None,
        typer.Option(
            "--trust",
            help="a contract address you trust (the log's Anchor, ShareLedger, OpenContracts); repeat it; "
            "the bundle may then name no other",
        ),
    ] = None,
) -> None:
    """Check a proof bundle with nothing but a chain endpoint.

    Prints ``OK (<what was verified>): …`` and exits 0 — saying explicitly when the bundle claims no
    grant or contract, so authorization was not checked — or ``FAILED <code>: …`` and exits 1."""
    import json

    from api.errors import MAX_JSON_DEPTH, json_depth
    from ledger.errors import LedgerError
    from ledger.log.authority import describe
    from ledger.log.bundle import verify_bundle

    def failed(code: str, message: str) -> typer.Exit:
        typer.echo(f"FAILED {code}: {message}")
        return typer.Exit(1)

    try:
        raw = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    except OSError as exc:
        raise failed("malformed_bundle", f"cannot read {file}: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise failed("malformed_bundle", f"{file} is not UTF-8 text (byte {exc.start})") from exc
    # Before parsing: the embedded chain's py-evm raises the recursion limit, so json.loads of deeply
    # nested brackets would overflow the C stack (a segfault) instead of raising.
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and json_depth(raw) > MAX_JSON_DEPTH:
        raise failed("malformed_bundle", f"{file} is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        bundle = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise failed("malformed_bundle", f"{file} is not JSON: {str(exc)[:200]}") from exc
    try:
        verify_bundle(bundle, rpc, trusted=trust)
    except LedgerError as exc:  # VerificationError, or InvalidInput of a malformed part
        raise failed(exc.code, exc.message) from exc
    typer.echo(
        f"OK ({describe(bundle)}): log entry {bundle['leaf_index']} is included in the root anchored "
        f"at tree size {bundle['tree_size']} on chain {bundle['anchor']['chain_id']}"
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

    if since_last and state is None:
        raise typer.BadParameter("--since-last needs --state (the file that remembers the last run)")
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
    if report.previous_size is None:
        grew = ""
    elif report.previous_size == report.size:
        grew = "; unchanged since the last run"
    else:
        grew = f"; grew from {report.previous_size:,} (append-only)"
    checked = f"; {report.entries:,} entries match their leaves" if entries else ""
    tiles = f"all {report.tiles:,} tiles" if report.tiles != 1 else "its one tile"
    typer.echo(
        f"OK: {report.origin} size {report.size:,} root 0x{report.root.hex()} is signed, anchored on chain "
        f"and matches {tiles}{grew}{checked}"
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
        Path | None,
        typer.Option(help="a fresh directory \\[default: ./.sharetrail-sim/<UTC time>-seed<seed>]"),
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
