"""Engine, sessions and migrations.

SQLite (the default) runs in WAL mode with ``synchronous=FULL`` so that a committed transaction
survives power loss — the precondition for "write durably before you acknowledge". A
``postgresql+psycopg://`` URL switches to PostgreSQL; nothing else changes. Alembic migrations are
applied on every start (idempotent).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, Executable, Index, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ledger.errors import StoreError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


DEFAULT_SQLITE_TIMEOUT = 30.0
# Each connection's page cache (SQLite's default is 2 MiB). An append touches the insertion point of
# every index of ``log_entries`` — one per resource, per accessor, per provider… — so the hot pages
# of a city's log are tens of MiB; with 2 MiB they are re-read from the OS for every batch
# (docs/benchmarks.md, the simulate section: ~10 µs an event at 300k events). Pages are allocated
# as used: a small database never takes this much.
SQLITE_CACHE_MIB = 256  # the default of SHARETRAIL_SQLITE_CACHE_MIB
# WAL pages before a commit also copies the WAL into the database file (SQLite's default: 1,000,
# 4 MiB). A 10,000-event append of a city's log rewrites tens of thousands of index pages, so at the
# default every commit is followed by a checkpoint that writes them all again; at 100,000 (~400
# MiB of WAL) a hot index page is copied once per several commits (docs/benchmarks.md, the
# Guiyang replay: 96 → 85 µs an event at 400,000 events of the full catalog). Durability is the
# WAL's: a commit is fsynced there (synchronous=FULL) whatever this is.
SQLITE_WAL_AUTOCHECKPOINT_PAGES = 100_000
# (size, overflow) of a server database's pool for reads that stand alone (Store.read_statements),
# beside the main pool's (10, 20): docs/deploy.md counts both into max_connections.
STATEMENT_POOL = (4, 8)


def sqlite_timeout(url: str) -> float:
    """Seconds an SQLite writer waits for the lock: the URL's ``?timeout=`` (pysqlite's own URL
    parameter), else 30. Past it the write fails — ``StoreError``, answered 503."""
    value = make_url(url).query.get("timeout")
    return float(value) if isinstance(value, str) else DEFAULT_SQLITE_TIMEOUT


def make_engine(url: str, *, sqlite_cache_mib: int = SQLITE_CACHE_MIB) -> Engine:
    if url.startswith("sqlite"):
        timeout = sqlite_timeout(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": timeout})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # let SQLAlchemy's BEGIN below drive transactions
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA cache_size=-{sqlite_cache_mib * 1024}")
            cur.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT_PAGES}")
            cur.execute(f"PRAGMA busy_timeout={round(timeout * 1000)}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # Writers take the write lock up front (no deadlock-prone lock upgrades); readers don't,
            # so in WAL mode they never wait for a writer.
            readonly = conn.get_execution_options().get("sharetrail_readonly", False)
            conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def migrate(engine: Engine) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except SQLAlchemyError as exc:
        raise StoreError(f"database migration failed: {exc}") from exc


def _index_names(conn: Connection) -> set[str]:
    if conn.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'index'"
    else:
        query = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
    return set(conn.scalars(text(query)))


# Sorter memory of a bulk index build on PostgreSQL (its default, 64 MB, spills a 30M-row sort to
# disk in many runs); SQLite's sorter uses the connection's page cache and, with ``threads``, the
# second core.
PG_INDEX_BUILD_MEMORY = "1GB"
SQLITE_SORTER_THREADS = 2


def build_indexes(conn: Connection, indexes: list[Index]) -> None:
    """``CREATE INDEX`` each of ``indexes`` in ``conn``'s transaction, with the sorter's resources
    raised for the transaction (a bulk build sorts the whole table once per index)."""
    if not indexes:
        return
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA threads={SQLITE_SORTER_THREADS}")
    else:
        conn.exec_driver_sql(f"SET LOCAL maintenance_work_mem = '{PG_INDEX_BUILD_MEMORY}'")
    for index in indexes:
        index.create(conn)


@contextmanager
def _unavailable() -> Iterator[None]:
    """A database that cannot be reached or written (locked, full, gone) is ``StoreError`` (503)."""
    try:
        yield
    except OperationalError as exc:
        raise StoreError(f"database unavailable: {exc.orig}") from exc


class Store:
    """Owns the engine and hands out sessions; translates database failures into StoreError."""

    def __init__(self, url: str, *, sqlite_cache_mib: int = SQLITE_CACHE_MIB) -> None:
        self.url = url
        try:
            self.engine = make_engine(url, sqlite_cache_mib=sqlite_cache_mib)
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise StoreError(
                f"not a usable database URL (sqlite:///path or postgresql+psycopg://user@host/db): {exc}",
                code="invalid_db_url",
            ) from None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_engine = self.engine.execution_options(sharetrail_readonly=True)
        self._readers = sessionmaker(self._read_engine, expire_on_commit=False)
        # Reads that stand alone (read_statements) on a server database: a small pool of its own,
        # in autocommit and without the ping before each checkout — a point read is one round trip
        # (0.25 ms here) instead of three; a connection found dropped is retried once (read_rows).
        self._statements: Engine | None = (
            None
            if self.engine.dialect.name == "sqlite"
            else create_engine(
                url,
                isolation_level="AUTOCOMMIT",
                pool_size=STATEMENT_POOL[0],
                max_overflow=STATEMENT_POOL[1],
            )
        )
        url_ = make_url(url)
        file_db = url_.get_backend_name() == "sqlite" and url_.database not in (None, "", ":memory:")
        self._sqlite_path = url_.database if file_db and not url_.query.get("uri") else None
        self._local = threading.local()
        self._raw: list[sqlite3.Connection] = []
        self._raw_lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._write_timeout = sqlite_timeout(url) if self.engine.dialect.name == "sqlite" else 0.0

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def shareable(self) -> bool:
        """Whether another process can open this database by its URL (not SQLite in memory)."""
        return self.dialect != "sqlite" or self._sqlite_path is not None

    def migrate(self) -> None:
        migrate(self.engine)
        self.ensure_indexes()

    def ensure_indexes(self) -> list[str]:
        """Build every index of the schema the database lacks, and name them.

        Only a bulk load leaves one out (``LogStore.bulk_load`` drops the trail's indexes of
        ``log_entries`` and builds them once at its end); if its process died in between, the next
        start builds them here, before anything reads the log. One catalogue query when nothing
        is missing."""
        from ledger.store.models import Base  # the schema; models import nothing from here

        wanted = [ix for table in Base.metadata.sorted_tables for ix in table.indexes]
        try:
            with self.engine.begin() as conn:
                present = _index_names(conn)
                missing = [ix for ix in wanted if ix.name not in present]
                build_indexes(conn, missing)
        except SQLAlchemyError as exc:
            raise StoreError(f"building missing indexes failed: {exc}") from exc
        return [str(ix.name) for ix in missing]

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on normal exit (durably, before the caller acknowledges)."""
        with self._writing(), _unavailable(), self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """On SQLite, this process's writers take turns on a lock before ``BEGIN IMMEDIATE``.

        SQLite lets one writer in at a time; the others wait in its busy handler, which *sleeps* —
        1, 2, 5, 10 … up to 100 ms a try — and does not wake when the lock is freed. Under a steady
        stream of writes a waiting thread kept losing the lock to new arrivals and slept its way to
        seconds: ``POST /v1/access-events`` p99 2.6 s at 700 requests/s (docs/benchmarks.md, "API:
        the request path"). Threads of one process now queue here and the next goes in as soon as
        the last commits; other processes still meet SQLite's own lock. Waiting here is bounded by
        the same timeout as SQLite's, and ends as SQLite's does (``StoreError`` "database is
        locked", 503). Re-entrant: a write session opened inside another in the same thread meets
        SQLite's lock as before."""
        if self.dialect != "sqlite":
            yield
            return
        if not self._write_lock.acquire(timeout=self._write_timeout):
            # what SQLite itself answers a writer that waited its timeout out
            raise StoreError("database unavailable: database is locked")
        try:
            yield
        finally:
            self._write_lock.release()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction (never takes SQLite's write lock)."""
        with _unavailable(), self._readers() as session, session.begin():
            yield session

    @contextmanager
    def read_core(self) -> Iterator[Connection]:
        """A read-only transaction on a Core connection, for hot point reads (Merkle nodes of a
        proof) where the ORM session's bookkeeping would cost more than the query."""
        with _unavailable(), self._read_engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def read_statements(self) -> Iterator[Connection]:
        """A Core connection for reads that each stand alone (immutable rows, a single-statement
        answer). On a server database no transaction goes around them and no ping before: one
        round trip a statement where a read transaction on the main pool costs four (the ping,
        ``BEGIN``, the query, ``ROLLBACK``): 0.25 against 0.77 ms a point read here. A connection
        the server dropped fails the statement (:meth:`read_rows` retries it once). On SQLite,
        :meth:`read_core`."""
        if self._statements is None:
            with self.read_core() as conn:
                yield conn
            return
        with _unavailable(), self._statements.connect() as conn:
            yield conn

    def raw_reader(self) -> sqlite3.Connection | None:
        """This thread's own read-only SQLite connection, outside SQLAlchemy's pool and
        transactions; None unless the store is an SQLite file.

        For point reads of immutable rows (the Merkle log's nodes, which are written once and never
        change): each statement is its own read snapshot, and a cold inclusion proof then costs
        one SQLite statement instead of a pooled connection's checkout, ``BEGIN``, query and
        rollback through the engine — three quarters of its time before (docs/benchmarks.md, the
        log section). Closed by :meth:`close`."""
        if self._sqlite_path is None:
            return None
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self._sqlite_path,
                    timeout=sqlite_timeout(self.url),
                    isolation_level=None,
                    check_same_thread=False,
                )
                conn.execute("PRAGMA query_only=1")
            except sqlite3.Error as exc:
                raise StoreError(f"database unavailable: {exc}") from exc
            with self._raw_lock:
                self._raw.append(conn)
            self._local.conn = conn
        return conn

    def read_rows(self, sql: str | Executable, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """The rows of one read-only statement (SQL text with ``:name`` parameters, or a Core
        statement) as plain tuples: on an SQLite file, SQL text goes through the thread's raw reader
        — one statement is its own snapshot, no ORM, no type conversion — and the rest through
        :meth:`read_statements`, retried once on a connection the server had dropped (a restarted
        PostgreSQL: the pool then reconnects).

        For the reads every API request makes (the log's size, the latest checkpoint's size, a
        proof's nodes): an ORM read transaction costs ~0.24 ms on SQLite, a raw statement ~7 µs
        (docs/benchmarks.md, "API: the request path")."""
        raw = self.raw_reader() if isinstance(sql, str) else None
        if raw is not None:
            try:
                return raw.execute(cast(str, sql), params or {}).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"database unavailable: {exc}") from exc
        statement = text(sql) if isinstance(sql, str) else sql
        for attempt in (1, 2):
            try:
                with self.read_statements() as conn:
                    return [tuple(row) for row in conn.execute(statement, params or {})]
            except StoreError as exc:
                dropped = isinstance(exc.__cause__, DBAPIError) and exc.__cause__.connection_invalidated
                if attempt == 2 or not dropped:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._raw_lock:
            for conn in self._raw:
                conn.close()
            self._raw.clear()
        self._local = threading.local()
        self.engine.dispose()
        if self._statements is not None:
            self._statements.dispose()
