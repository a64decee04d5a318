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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
