"""A real PostgreSQL server for tests — never a mock (STYLE.md: integration tests hit SQLite *and*
PostgreSQL).

Where the server comes from, in order:

1. ``SHARETRAIL_TEST_PG_URL`` (an SQLAlchemy URL such as
   ``postgresql+psycopg://user:pw@host:5432/db``) — used as is.
2. A throwaway cluster started for this process with the PostgreSQL server binaries
   (``initdb``/``pg_ctl`` on PATH or under ``/usr/lib/postgresql/*/bin``), on a free port,
   ``fsync=off``, trust auth, UTF-8, listening on 127.0.0.1 only; stopped (``-m immediate``) and
   deleted at session end. ``initdb`` refuses to run as root, so as root it runs as ``postgres``
   via ``runuser``. With ``CI=true``, as root and without binaries, ``apt-get install postgresql``
   is tried once.

If neither works: with ``CI=true`` the tests that need PostgreSQL **fail** (it is mandatory in
CI); otherwise they are skipped with a loud "PostgreSQL NOT TESTED" reason, and
:func:`report_missing` repeats it in the terminal summary.

Wiring in ``tests/conftest.py``::

    from tests.support.postgres import pg_server_url, pg_url, report_missing  # noqa: F401

    def pytest_terminal_summary(terminalreporter):
        report_missing(terminalreporter)
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from tests.support.ci import in_ci, unavailable

__all__ = [
    "PG_URL_ENV",
    "TempCluster",
    "drop_database",
    "fresh_database",
    "libpq_url",
    "missing_reason",
    "pg_server_url",
    "pg_url",
    "postgres_url",
    "report_missing",
    "require_postgres_url",
    "temp_cluster",
]

PG_URL_ENV = "SHARETRAIL_TEST_PG_URL"
TEST_DB = "sharetrail_test"
_TIMEOUT = 120


def _is_root() -> bool:
    return os.geteuid() == 0


# --------------------------------------------------------------------------- URLs and databases


def libpq_url(url: str) -> str:
    """An SQLAlchemy URL (``postgresql+psycopg://…``) as a libpq URI psycopg can connect with."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def fresh_database(base_url: str) -> str:
    """Create a uniquely named database on ``base_url``'s server; return its SQLAlchemy URL.

    Isolates each test from the others' tables and rows. Connects to ``base_url``'s own
    database with autocommit (``CREATE DATABASE`` cannot run in a transaction).
    """
    name = f"sharetrail_t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(libpq_url(base_url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE template0").format(sql.Identifier(name))
        )
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


def drop_database(base_url: str, url: str) -> None:
    """Drop the database named by ``url`` (made by :func:`fresh_database`), even if still in use."""
    name = make_url(url).database
    if not name:
        raise ValueError(f"URL names no database: {url!r}")
    with psycopg.connect(libpq_url(base_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# --------------------------------------------------------------------------- throwaway cluster


def _find_bin_dir() -> Path | None:
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(os.path.realpath(on_path)).parent

    def version(path: str) -> float:
        try:
            return float(Path(path).parent.name)
        except ValueError:
            return 0.0

    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def _apt_install() -> str | None:
    """Install the server with apt (root, CI only). Returns an error text or None."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "postgresql"]):
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{' '.join(cmd)}: {exc}"
        if done.returncode != 0:
            return f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()[-500:]}"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ClusterError(RuntimeError):
    """The throwaway cluster could not be created or started."""


@dataclass
class TempCluster:
    """A PostgreSQL cluster in a temporary directory, owned by this process."""

    bin_dir: Path
    root: Path
    port: int = 0
    running: bool = False
    _as_postgres: bool = field(default=False, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{TEST_DB}"

    @classmethod
    def create(cls, bin_dir: Path) -> TempCluster:
        as_postgres = _is_root()
        # /tmp rather than $TMPDIR when root: the postgres user must be able to reach the dir.
        root = Path(tempfile.mkdtemp(prefix="sharetrail-pg-", dir="/tmp" if as_postgres else None))
        cluster = cls(bin_dir=bin_dir, root=root, _as_postgres=as_postgres)
        cluster.socket_dir.mkdir()
        if as_postgres:
            shutil.chown(root, "postgres", "postgres")
            shutil.chown(cluster.socket_dir, "postgres", "postgres")
        root.chmod(0o700)
        return cluster

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        try:
            return subprocess.run(
                cmd, cwd=self.root, capture_output=True, text=True, timeout=_TIMEOUT, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ClusterError(f"{' '.join(cmd)}: {exc}") from exc

    def _check(self, done: subprocess.CompletedProcess[str]) -> None:
        if done.returncode != 0:
            log = self.log_file.read_text(errors="replace")[-1500:] if self.log_file.exists() else ""
            raise ClusterError(
                f"{' '.join(map(str, done.args))} exited {done.returncode}: "
                f"{(done.stderr or done.stdout).strip()[-1500:]}\n{log}"
            )

    def start(self, attempts: int = 3) -> None:
        """initdb, pg_ctl start on a free port (retrying if the port was taken), create the DB."""
        self._check(
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            )
        )
        error: ClusterError | None = None
        for _ in range(attempts):
            self.port = _free_port()
            options = (
                f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off"
            )
            done = self._run(
                "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options, "-w", "start"
            )
            try:
                self._check(done)
            except ClusterError as exc:
                error = exc
                continue
            self.running = True
            break
        else:
            assert error is not None
            raise error
        admin = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEST_DB)))

    def stop(self) -> None:
        """Stop immediately (nothing to keep) and delete the directory."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
            self.running = False
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class _State:
    tried: bool = False
    url: str | None = None
    cluster: TempCluster | None = None
    missing: str | None = None


_STATE = _State()


def _start_cluster() -> str:
    bin_dir = _find_bin_dir()
    if bin_dir is None and _is_root() and in_ci():
        problem = _apt_install()
        if problem is not None:
            raise ClusterError(f"no PostgreSQL server binaries and apt-get failed: {problem}")
        bin_dir = _find_bin_dir()
    if bin_dir is None:
        raise ClusterError(
            f"no PostgreSQL server binaries (initdb/pg_ctl not on PATH nor under "
            f"/usr/lib/postgresql/*/bin) and {PG_URL_ENV} is not set"
        )
    if _is_root() and shutil.which("runuser") is None:
        raise ClusterError("running as root but runuser is missing; initdb refuses to run as root")
    cluster = TempCluster.create(bin_dir)
    _STATE.cluster = cluster
    atexit.register(cluster.stop)
    try:
        cluster.start()
    except (ClusterError, psycopg.Error) as exc:
        cluster.stop()
        _STATE.cluster = None
        raise ClusterError(f"throwaway cluster did not start: {exc}") from exc
    return cluster.url


def postgres_url() -> str | None:
    """The server URL for this test process, or ``None`` (see :func:`missing_reason`).

    Starts the throwaway cluster on first call; later calls return the same URL.
    """
    if not _STATE.tried:
        _STATE.tried = True
        env_url = os.environ.get(PG_URL_ENV, "").strip()
        if env_url:
            _STATE.url = env_url
        else:
            try:
                _STATE.url = _start_cluster()
            except ClusterError as exc:
                _STATE.missing = str(exc)
    return _STATE.url


def missing_reason() -> str | None:
    """Why :func:`postgres_url` returned ``None`` (``None`` if it did not)."""
    return _STATE.missing


def temp_cluster() -> TempCluster | None:
    """The throwaway cluster this process started, if it started one."""
    return _STATE.cluster


def stop_temp_cluster() -> None:
    """Stop and delete the throwaway cluster now (session teardown; also registered with atexit)."""
    if _STATE.cluster is not None:
        _STATE.cluster.stop()
        _STATE.cluster = None
    _STATE.tried = False
    _STATE.url = None


def require_postgres_url() -> str:
    """The server URL, or fail (``CI=true``) / skip loudly (elsewhere)."""
    url = postgres_url()
    if url is not None:
        return url
    unavailable(f"PostgreSQL NOT TESTED: {_STATE.missing}", "PostgreSQL is mandatory when CI=true")


def report_missing(terminalreporter: pytest.TerminalReporter) -> None:
    """For ``pytest_terminal_summary``: shout if PostgreSQL tests were skipped."""
    if _STATE.missing is None:
        return
    terminalreporter.section("PostgreSQL NOT TESTED", sep="!", red=True, bold=True)
    terminalreporter.write_line(
        f"PostgreSQL NOT TESTED: {_STATE.missing}. Set {PG_URL_ENV} or install the PostgreSQL "
        "server (initdb/pg_ctl).",
        red=True,
        bold=True,
    )


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of a real PostgreSQL server for the whole session (its ``sharetrail_test`` database)."""
    url = require_postgres_url()
    try:
        yield url
    finally:
        stop_temp_cluster()


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """URL of a fresh, empty database of its own for one test; dropped afterwards."""
    url = fresh_database(pg_server_url)
    try:
        yield url
    finally:
        drop_database(pg_server_url, url)
