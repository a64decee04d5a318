"""A throw-away PostgreSQL server for benchmarks, with durable commits.

The minimal start logic of ``tests/support/postgres.py`` (``ledger`` never imports ``tests``), with
one deliberate difference: ``fsync``, ``synchronous_commit`` and ``full_page_writes`` keep their
defaults (on), so a commit is on disk before the benchmark counts it as acknowledged — the tests
turn them off for speed, a benchmark must not. ``initdb`` refuses to run as root, so as root the
server runs as ``postgres`` through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import sql

DATABASE = "sharetrail_bench"
_TIMEOUT = 120


class PgUnavailable(RuntimeError):
    """No PostgreSQL server binaries, or the server did not start."""


def find_bin_dir() -> Path | None:
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(os.path.realpath(on_path)).parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PgServer:
    """``with PgServer() as url:`` — initdb, start on a free loopback port, create a database, and
    on exit stop the server (``-m fast``) and delete its directory."""

    def __init__(self) -> None:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise PgUnavailable("no PostgreSQL server binaries (initdb/pg_ctl)")
        self.bin_dir = bin_dir
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres and shutil.which("runuser") is None:
            raise PgUnavailable("running as root but runuser is missing; initdb refuses root")
        self.root: Path | None = None
        self.port = 0
        self.running = False

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *args: str) -> None:
        assert self.root is not None
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        try:
            done = subprocess.run(
                cmd, cwd=self.root, capture_output=True, text=True, timeout=_TIMEOUT, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PgUnavailable(f"{' '.join(cmd)}: {exc}") from exc
        if done.returncode != 0:
            raise PgUnavailable(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()[-800:]}")

    def start(self) -> str:
        # /tmp rather than $TMPDIR when root: the postgres user must be able to reach the directory.
        self.root = Path(
            tempfile.mkdtemp(prefix="sharetrail-bench-pg-", dir="/tmp" if self.as_postgres else None)
        )
        sock = self.root / "sock"
        sock.mkdir()
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(sock, "postgres", "postgres")
        self.root.chmod(0o700)
        data = str(self.root / "data")
        self._run("initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C")
        self.port = _free_port()
        options = f"-p {self.port} -k {sock} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "-D", data, "-l", str(self.root / "server.log"), "-o", options, "-w", "start")
        self.running = True
        admin = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
        return self.url

    def stop(self) -> None:
        if self.root is None:
            return
        if self.running:
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")
            self.running = False
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self) -> str:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
