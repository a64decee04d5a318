"""The operator's commands fail in one line they can act on — ``error <code>: <message>`` on stderr,
exit status 2 — never a traceback; ``verify`` audits an existing ledger and never creates one."""

from __future__ import annotations

import socket
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app as cli
from ledger.runtime import Ledger
from ledger.settings import Settings


def _run(args: list[str], **env: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, args, env={f"SHARETRAIL_{k.upper()}": v for k, v in env.items()})
    return result.exit_code, result.stdout, result.stderr


def test_verify_refuses_a_directory_without_a_ledger_and_creates_nothing(tmp_path: Path) -> None:
    """It used to bootstrap a new registrar, keys and contracts there and report the empty log
    "intact" — after the demo, `sharetrail verify` in the checkout looked at ./.sharetrail."""
    empty = tmp_path / "nothing-here"
    code, out, err = _run(["verify"], data_dir=str(empty))
    assert code == 2 and out == ""
    assert err.startswith(f"error no_ledger: no sharetrail data directory at {empty} (no master.key): ")
    assert "the demo's data directory is .sharetrail-demo" in err
    assert not empty.exists()


def test_verify_names_a_missing_database_or_chain(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", anchor_loop=False)
    with Ledger.open(settings):
        pass
    code, out, err = _run(["verify"], data_dir=str(tmp_path / "data"))
    assert code == 0 and "intact" in out, (out, err)
    (tmp_path / "data" / "chain.sqlite").rename(tmp_path / "chain.sqlite")
    code, _, err = _run(["verify"], data_dir=str(tmp_path / "data"))
    assert code == 2 and err.startswith("error no_ledger: no embedded chain in ")
    (tmp_path / "chain.sqlite").rename(tmp_path / "data" / "chain.sqlite")
    code, _, err = _run(
        ["verify"], data_dir=str(tmp_path / "data"), db_url=f"sqlite:///{tmp_path}/gone.sqlite"
    )
    assert code == 2 and err.startswith(f"error no_ledger: no database at {tmp_path}/gone.sqlite")


def test_bad_settings_are_one_line(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    code, _, err = _run(["init"], data_dir=data, db_url="garbage")
    assert code == 2
    assert err.startswith("error invalid_db_url: not a usable database URL (sqlite:///path or postgresql")
    assert "Traceback" not in err and len(err.splitlines()) == 1
    code, _, err = _run(["init"], data_dir=data, anchor_interval="soon")
    assert code == 2 and err.startswith("error invalid_setting: SHARETRAIL_ANCHOR_INTERVAL: ")
    code, _, err = _run(["init"], data_dir=data, chain="http://127.0.0.1:1")
    assert code == 2 and err.startswith("error chain_unavailable: ") and "Traceback" not in err


def test_serve_refuses_a_busy_port_before_opening_anything(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        code, out, err = _run(["serve", "--port", str(port)], data_dir=str(tmp_path / "data"))
    assert code == 2 and "listening" not in out
    assert err.startswith(f"error port_unavailable: cannot listen on 127.0.0.1:{port}: ")
    assert not (tmp_path / "data").exists()
