"""Data sources: where a resource's rows live, registered by the resource's provider.

A source is a CSV or Parquet file, or a table / read-only query in any SQLAlchemy database. The
gateway reads through it with the grant's row filter pushed down (a SQL ``WHERE`` for databases, a
streaming filter for files), so a 1,000-row access of a million-row table never loads the table.

Safety rules (the provider is trusted with its own data, not with the server):
- files, and SQLite databases, must lie under one of the configured source roots
  (``SHARETRAIL_SOURCE_ROOTS``; default ``<data_dir>/sources``) — no reading ``/etc/passwd``;
- the ledger's own database is never a source (it holds tokens and sealed keys);
- a query is one ``SELECT``/``WITH`` statement, and every connection is read-only
  (``PRAGMA query_only`` on SQLite, ``SET TRANSACTION READ ONLY`` elsewhere);
- the location is sealed at rest (a database URL can carry a password) and never echoed with it.
"""

from __future__ import annotations

import csv
import enum
import json
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from ledger.canonical import canonical_json
from ledger.errors import InvalidInput, StoreError
from ledger.gateway.query import Condition, matches
from ledger.sharing.catalog import FieldSpec

QUERY_RE = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")
BATCH_ROWS = 2000  # rows fetched, converted and shaped at a time


class SourceKind(enum.StrEnum):
    CSV = "csv"
    PARQUET = "parquet"
    SQL = "sql"


@dataclass(frozen=True)
class SourceSpec:
    kind: SourceKind
    location: str  # a file path (csv, parquet) or a SQLAlchemy URL (sql)
    table: str | None = None
    query: str | None = None

    def public(self) -> dict[str, Any]:
        """What may be shown back: the location without a password."""
        location = self.location
        if self.kind is SourceKind.SQL:
            location = make_url(location).render_as_string(hide_password=True)
        return {"kind": self.kind.value, "location": location, "table": self.table, "query": self.query}


# -- value conversion ---------------------------------------------------------------------------
_TRUE = {"1", "true", "t", "yes", "y", "是"}
_FALSE = {"0", "false", "f", "no", "n", "否"}


def _from_text(text: str, type_: str) -> Any:
    """A CSV cell as the catalog field's type (CSV has only strings); empty is null."""
    if text == "":
        return None
    kind = type_.lower()
    try:
        if kind in ("integer", "int", "bigint"):
            return int(text)
        if kind in ("number", "float", "decimal", "double"):
            value = float(text)
            return int(value) if value.is_integer() and "." not in text else value
        if kind in ("boolean", "bool"):
            lowered = text.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
    except ValueError:
        pass
    return text


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def plain(value: Any) -> Any:
    """A database value as a JSON value (dates ISO 8601, decimals as numbers, bytes as hex)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "0x" + bytes(value).hex()
    return str(value)


def json_ready(rows: Sequence[Sequence[Any]]) -> Sequence[Sequence[Any]]:
    """``rows`` with every value a JSON value (:func:`plain`), converted column by column: a column
    whose values are all JSON scalars already (the common case) is left alone, found by one pass in C."""
    if not rows:
        return rows
    columns = list(zip(*rows, strict=True))
    odd = [i for i, column in enumerate(columns) if not set(map(type, column)) <= _JSON_SCALARS]
    if not odd:
        return rows
    for i in odd:
        columns[i] = _plain_column(columns[i])
    return list(zip(*columns, strict=True))


def _plain_column(column: Sequence[Any]) -> tuple[Any, ...]:
    """:func:`plain` over a column; a column of dates (a PostgreSQL ``date``) in one comprehension."""
    if set(map(type, column)) <= _DATES:
        return tuple(None if value is None else value.isoformat() for value in column)
    return tuple(map(plain, column))


_DATES = frozenset({date, type(None)})


# -- rows encoded by SQLite ---------------------------------------------------------------------
@dataclass(frozen=True)
class EncodedRows:
    """Rows a SQLite source encoded itself: ``array`` is the RFC 8785 text (UTF-8) of the JSON
    array of row objects (the delivered fields), ``count`` its length, ``truncated`` whether more
    rows matched than were read, ``id_values`` the values of each ID field of those rows, in order."""

    array: bytes
    count: int
    truncated: bool
    id_values: list[Any]


_SAFE_INT = 2**53 - 1

# What the probe binds: every control character, the characters JSON escapes, some it must not
# (DEL, U+2028, non-ASCII, a non-BMP character), the integer bounds and null — the values a
# SQLite row may hold in the columns the fast path encodes.
_PROBE: tuple[Any, ...] = (
    "".join(map(chr, range(32))) + '"\\/\x7f\u2028\u2029é中😀',
    "",
    _SAFE_INT,
    -_SAFE_INT,
    0,
    None,
)
_SQLITE_JSON: dict[str, bool] = {}  # SQLite library version -> its JSON text is RFC 8785's


def _sqlite_json_canonical(conn: sa.Connection) -> bool:
    """Whether this SQLite library's ``json_object`` / ``json_group_array`` write the same text as
    RFC 8785 for strings, safe integers and null: checked once per library version, by encoding
    :data:`_PROBE` both ways (a SQLite without JSON functions, or one that escapes differently,
    leaves every source on the general path)."""
    version = ".".join(map(str, conn.dialect.server_version_info or ()))
    known = _SQLITE_JSON.get(version)
    if known is not None:
        return known
    keys = [f"k{i}" for i in range(len(_PROBE))]
    pairs = ", ".join(f"'{key}', ?" for key in keys)
    try:
        (text,) = conn.exec_driver_sql(f"SELECT json_group_array(json_object({pairs}))", _PROBE).one()
        agrees = bool(text == "[" + canonical_json(dict(zip(keys, _PROBE, strict=True))).decode() + "]")
    except SQLAlchemyError:
        agrees = False
    _SQLITE_JSON[version] = agrees
    return agrees


def _affinity(declared: str) -> str:
    """The type affinity SQLite gives a column declared ``declared`` (its documentation, "Datatypes
    In SQLite" §3.1, rules in order)."""
    upper = declared.upper()
    if "INT" in upper:
        return "INTEGER"
    if any(word in upper for word in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if "BLOB" in upper or not upper:
        return "BLOB"
    if any(word in upper for word in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


# -- readers ------------------------------------------------------------------------------------
class SourceReader:
    """Reads rows of one registered source for one catalog field list."""

    def __init__(self, spec: SourceSpec, fields: Sequence[FieldSpec], engines: EnginePool) -> None:
        self.spec = spec
        self.fields = list(fields)
        self.types = {f.name: f.type for f in fields}
        self.engines = engines

    def columns(self) -> list[str]:
        """The source's column names (used to check the catalog's fields at registration); a source
        that cannot be opened or queried is refused as the provider's input, not a server error."""
        try:
            return self._columns()
        except StoreError as exc:
            raise InvalidInput(f"the source cannot be read: {exc.message}", code="source_unreadable") from exc
        except (SQLAlchemyError, OSError, UnicodeError, csv.Error, ValueError) as exc:
            raise InvalidInput(
                f"the source cannot be read: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                code="source_unreadable",
            ) from exc

    def _columns(self) -> list[str]:
        if self.spec.kind is SourceKind.CSV:
            with open(self.spec.location, encoding="utf-8-sig", newline="") as fh:
                header = next(csv.reader(fh), [])
            return [h.strip() for h in header]
        if self.spec.kind is SourceKind.PARQUET:
            import pyarrow.parquet as pq

            return list(pq.read_schema(self.spec.location).names)
        with self._connect() as conn:
            result = conn.execute(sa.select(sa.text("*")).select_from(self._from_clause(None)).limit(0))
            return list(result.keys())

    def rows(
        self, conditions: Sequence[Condition], limit: int | None, columns: Sequence[str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Rows that satisfy every condition, at most ``limit`` of them: all catalog fields, or only
        ``columns`` (the filter may still name others)."""
        names = list(columns) if columns is not None else [f.name for f in self.fields]
        for batch in self.batches(conditions, limit, columns=columns):
            for values in batch:
                yield dict(zip(names, values, strict=True))

    def batches(
        self,
        conditions: Sequence[Condition],
        limit: int | None,
        size: int = BATCH_ROWS,
        columns: Sequence[str] | None = None,
    ) -> Iterator[Sequence[Sequence[Any]]]:
        """The same rows as :meth:`rows`, as lists of at most ``size`` tuples (catalog field order,
        or ``columns``'s) with JSON values: the gateway shapes, masks and hashes them column by
        column. Only ``columns`` are read from a database (an aggregate over two columns of a wide
        table does not fetch the others)."""
        if limit is not None and limit <= 0:
            return
        if self.spec.kind is SourceKind.SQL:
            yield from self._sql_batches(conditions, limit, size, columns)
            return
        batch: list[tuple[Any, ...]] = []
        for row in self._file_rows(conditions, limit):  # filtered on whole rows, then narrowed
            batch.append(tuple(row.values()) if columns is None else tuple(row[n] for n in columns))
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _file_rows(self, conditions: Sequence[Condition], limit: int | None) -> Iterator[dict[str, Any]]:
        produced = 0
        source = self._csv_rows() if self.spec.kind is SourceKind.CSV else self._parquet_rows()
        try:
            for row in source:
                if matches(conditions, row):
                    yield row
                    produced += 1
                    if limit is not None and produced >= limit:
                        return
        except (OSError, UnicodeError, csv.Error, ValueError) as exc:
            raise _source_failed(exc) from exc

    def _csv_rows(self) -> Iterator[dict[str, Any]]:
        names = [f.name for f in self.fields]
        with open(self.spec.location, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            for raw in reader:
                yield {n: _from_text((raw.get(n) or "").strip(), self.types[n]) for n in names}

    def _parquet_rows(self) -> Iterator[dict[str, Any]]:
        import pyarrow.parquet as pq

        names = [f.name for f in self.fields]
        parquet = pq.ParquetFile(self.spec.location)
        for batch in parquet.iter_batches(batch_size=4096, columns=names):
            for record in batch.to_pylist():
                yield {n: plain(record.get(n)) for n in names}

    # SQL
    def _connect(self) -> sa.Connection:
        return self.engines.connect(self.spec.location)

    def _from_clause(self, names: Sequence[str] | None) -> sa.FromClause:
        if self.spec.query:
            cols: list[sa.ColumnClause[Any]] = [
                sa.column(n) for n in (names or [f.name for f in self.fields])
            ]
            return sa.text(self.spec.query).columns(*cols).subquery("src")
        assert self.spec.table
        schema, _, table = self.spec.table.rpartition(".")
        return sa.table(table, *(sa.column(n) for n in names or ()), schema=schema or None)

    def _sql_batches(
        self, conditions: Sequence[Condition], limit: int | None, size: int, columns: Sequence[str] | None
    ) -> Iterator[Sequence[Sequence[Any]]]:
        names = [f.name for f in self.fields]
        source = self._from_clause(names)
        selected = names if columns is None else list(columns)
        query = sa.select(*(source.c[n] for n in selected)).where(*(_where(source, c) for c in conditions))
        if limit is not None:
            query = query.limit(limit)
        try:
            with self._connect() as conn:
                # A result that fits in one batch (a raw access of up to ``size`` rows) is fetched in
                # one go; a larger one (an aggregate over the table, a long stream) through a
                # server-side cursor a batch at a time, so it is never held whole. On PostgreSQL
                # the cursor's DECLARE, FETCH and CLOSE were three round trips of a 1,000-row read.
                if limit is not None and limit <= size:
                    result = conn.execute(query)
                    # The DBAPI's rows as they are: the columns are untyped, so SQLAlchemy would
                    # only wrap each in a Row (~0.4 ms of a 1,000-row read). Its errors are the
                    # driver's own here, not wrapped by SQLAlchemy (text that is not UTF-8).
                    try:
                        rows = result.cursor.fetchall()
                    except conn.dialect.loaded_dbapi.Error as exc:
                        raise _source_failed(exc) from exc
                    finally:
                        result.close()
                    if rows:
                        yield json_ready(rows)
                    return
                result = conn.execution_options(stream_results=True, yield_per=size).execute(query)
                for part in result.partitions(size):
                    yield json_ready(part)
        except SQLAlchemyError as exc:
            raise _source_failed(exc) from exc

    def encoded_rows(
        self, conditions: Sequence[Condition], limit: int, wanted: Sequence[str], id_fields: Sequence[str]
    ) -> EncodedRows | None:
        """The first ``limit`` rows satisfying ``conditions``, the ``wanted`` fields of each encoded
        as RFC 8785 JSON by the database itself, or ``None`` when that is not possible and the
        caller reads :meth:`batches` instead.

        A SQLite table only: its ``json_object`` / ``json_group_array`` write exactly the canonical
        text for strings, integers within ±(2**53 − 1) and nulls (checked once per SQLite version,
        :func:`_sqlite_json_canonical`), in C, about twice as fast as fetching the rows into Python
        and encoding them there (docs/benchmarks.md, "Gateway"). One statement, so one snapshot:
        the array, each ID field's values, a check that no delivered column that can hold a number
        holds a real or an unsafe integer, the count of matching rows up to ``limit + 1`` (is there
        more?), and the schema version the column types were read at. A real, an unsafe integer or
        a BLOB (which ``json_object`` refuses) sends the access to the general path, which encodes,
        or refuses, such values the same way for every source kind."""
        table = self.spec.table
        if self.spec.kind is not SourceKind.SQL or not table or "." in table or not wanted or limit <= 0:
            return None
        if make_url(self.spec.location).get_backend_name() != "sqlite":
            return None  # known from the URL: no connection taken for nothing
        try:
            with self._connect() as conn:
                if not _sqlite_json_canonical(conn):
                    return None
                url = self.spec.location
                for attempt in (0, 1):
                    columns = _TABLE_COLUMNS.get((url, table))
                    if columns is None or attempt:
                        columns = _table_columns(conn, table)
                        if columns is None:
                            return None  # not cached: a view replaced by a table is seen at once
                        _TABLE_COLUMNS[(url, table)] = columns
                    statement = _encoded_statement(
                        table,
                        tuple(wanted),
                        tuple(id_fields),
                        columns.non_text,
                        repr(conditions),
                        tuple(conditions),
                    )
                    array, count, bad, available, version, *ids = conn.execute(
                        statement, {"limit": limit, "more": limit + 1}
                    ).one()
                    if version == columns.version:
                        break
                else:
                    return None  # the table changes under us: read it the general way
        except SQLAlchemyError:
            return None  # e.g. a BLOB: the general path delivers it as hex, or reports the failure
        if bad:
            return None
        try:  # SQLite does not check that TEXT is UTF-8; the general path's driver would refuse it
            array.decode("utf-8")
        except UnicodeDecodeError:
            return None
        id_values = [value for column in ids for value in json.loads(column)]
        return EncodedRows(array=array, count=count, truncated=available > limit, id_values=id_values)


class _TableColumns(NamedTuple):
    version: int  # the database's schema version when ``non_text`` was read
    non_text: frozenset[str]


_TABLE_COLUMNS: dict[tuple[str, str], _TableColumns] = {}  # (source URL, table): read once per schema


def _table_columns(conn: sa.Connection, table: str) -> _TableColumns | None:
    """The columns of ``table`` whose affinity is not TEXT — only they can hold a number, which the
    fast path must check is a safe integer (a TEXT column turns every number written to it into
    text) — with the schema version they were read at. Only an ordinary table stores its values
    under its columns' affinities: a view's column takes its declared type from the first branch
    of a ``UNION`` whatever the others hold, and a virtual table's module returns what it likes —
    for those there is no answer (None) and the general path reads."""
    quote = conn.dialect.identifier_preparer.quote
    (version,) = conn.exec_driver_sql("PRAGMA schema_version").one()
    kind = conn.exec_driver_sql(
        "SELECT type, sql FROM sqlite_master WHERE name = ? COLLATE NOCASE", (table,)
    ).first()
    if kind is None or kind[0] != "table" or str(kind[1] or "").upper().startswith("CREATE VIRTUAL"):
        return None
    rows = conn.exec_driver_sql(f"PRAGMA table_info({quote(table)})")
    return _TableColumns(version, frozenset(row[1] for row in rows if _affinity(row[2] or "") != "TEXT"))


@lru_cache(maxsize=256)
def _encoded_statement(
    table: str,
    wanted: tuple[str, ...],
    id_fields: tuple[str, ...],
    non_text: frozenset[str],
    conditions_key: str,  # repr: 1, 1.0 and True are equal, but not the same filter on a TEXT column
    conditions: tuple[Condition, ...],
) -> sa.Select[Any]:
    """The statement of :meth:`SourceReader.encoded_rows`, built once per table, fields and filter
    (building it cost about as much as running it); ``limit`` and ``more`` are its parameters."""
    del conditions_key
    names = list(dict.fromkeys([*wanted, *id_fields]))
    source = sa.table(table, *(sa.column(n) for n in dict.fromkeys([*names, *(c.field for c in conditions)])))
    where = [_where(source, c) for c in conditions]
    rows = sa.select(*(source.c[n] for n in names)).where(*where).limit(sa.bindparam("limit")).subquery("r")
    order = sorted(wanted, key=lambda n: n.encode("utf-16-be"))
    members = [part for n in order for part in (sa.literal(n), rows.c[n])]
    unsafe: list[Any] = [
        sa.case(
            (sa.func.typeof(rows.c[n]) == "real", 1),
            (sa.func.typeof(rows.c[n]) == "integer", sa.func.abs(rows.c[n]) > _SAFE_INT),
            else_=0,
        )
        for n in wanted
        if n in non_text
    ]
    if len(unsafe) > 1:
        unsafe = [sa.func.max(*unsafe)]  # SQLite's max() of several arguments: the scalar one
    matching = sa.select(sa.literal(1)).select_from(source).where(*where).limit(sa.bindparam("more"))
    return sa.select(
        # As a BLOB: the UTF-8 bytes as SQLite wrote them (checked, not decoded and encoded again)
        sa.cast(sa.func.json_group_array(sa.func.json_object(*members)), sa.LargeBinary),
        sa.func.count(),
        sa.func.max(unsafe[0]) if unsafe else sa.literal(0),
        sa.select(sa.func.count()).select_from(matching.subquery()).scalar_subquery(),
        sa.literal_column("(SELECT schema_version FROM pragma_schema_version)"),
        *(sa.func.json_group_array(rows.c[n]) for n in id_fields),
    ).select_from(rows)


def _source_failed(exc: Exception) -> StoreError:
    return StoreError(
        f"the data source of this resource failed: {type(exc).__name__}", code="source_unavailable"
    )


def _where(source: sa.FromClause, cond: Condition) -> sa.ColumnElement[bool]:
    clause: sa.ColumnElement[bool] = _clause(source.c[cond.field], cond)
    return clause


def _clause(col: Any, cond: Condition) -> Any:
    value = cond.value
    if cond.op == "eq":
        return col.is_(None) if value is None else col == value
    if cond.op == "ne":
        return col.is_not(None) if value is None else sa.or_(col != value, col.is_(None))
    if cond.op == "lt":
        return col < value
    if cond.op == "lte":
        return col <= value
    if cond.op == "gt":
        return col > value
    if cond.op == "gte":
        return col >= value
    if cond.op == "in":
        return col.in_(list(value))
    if cond.op == "prefix":
        return col.startswith(str(value), autoescape=True)
    raise InvalidInput(f"unsupported operator {cond.op!r}", code="invalid_row_filter")


class EnginePool:
    """One read-only engine per source URL, created on first use, disposed with the ledger."""

    def __init__(self) -> None:
        self._engines: dict[str, Engine] = {}
        self._lock = threading.Lock()

    def connect(self, url: str) -> sa.Connection:
        with self._lock:
            engine = self._engines.get(url)
            if engine is None:
                engine = self._engines[url] = _read_only_engine(url)
        try:
            return engine.connect()
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot connect to the data source: {type(exc).__name__}", code="source_unavailable"
            ) from exc

    def close(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()


def _read_only_engine(url: str) -> Engine:
    parsed = make_url(url)
    # A SQLite connection does not go stale; a server's may (restarted, idle-timed out).
    engine = sa.create_engine(parsed, pool_pre_ping=parsed.get_backend_name() != "sqlite")
    if parsed.get_backend_name() == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _ro(dbapi_conn: Any, _: Any) -> None:
            dbapi_conn.execute("PRAGMA query_only = ON")

    else:

        @sa.event.listens_for(engine, "begin")
        def _ro_tx(conn: sa.Connection) -> None:
            # On the raw DBAPI connection: the statement must not inherit stream_results (a
            # server-side cursor cannot DECLARE a SET).
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None
            cursor = dbapi.cursor()
            try:
                cursor.execute("SET TRANSACTION READ ONLY")
            finally:
                cursor.close()

    return engine


# -- validation of a registration ----------------------------------------------------------------
def check_spec(spec: SourceSpec, *, roots: Sequence[Path], ledger_db_url: str) -> SourceSpec:
    """Refuse what a provider may not register; returns the spec with its path resolved."""
    if spec.kind in (SourceKind.CSV, SourceKind.PARQUET):
        if spec.table or spec.query:
            raise InvalidInput("a file source takes no table or query", code="invalid_source")
        path = _under_roots(spec.location, roots)
        if not path.is_file():
            raise InvalidInput(f"no such file under the source roots: {spec.location}", code="source_missing")
        return SourceSpec(kind=spec.kind, location=str(path))
    if bool(spec.table) == bool(spec.query):
        raise InvalidInput("a SQL source names exactly one of table or query", code="invalid_source")
    if spec.table and not IDENT_RE.fullmatch(spec.table):
        raise InvalidInput("table must be a plain identifier (schema.table allowed)", code="invalid_source")
    if spec.query is not None and (not QUERY_RE.match(spec.query) or ";" in spec.query):
        raise InvalidInput(
            "query must be a single SELECT (or WITH … SELECT) statement", code="invalid_source"
        )
    try:
        url = make_url(spec.location)
    except ArgumentError as exc:
        raise InvalidInput("location is not a SQLAlchemy database URL", code="invalid_source") from exc
    if _same_database(url, make_url(ledger_db_url)):
        raise InvalidInput("the ledger's own database cannot be a data source", code="forbidden_source")
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise InvalidInput("a SQLite source names a database file", code="invalid_source")
        path = _under_roots(url.database, roots)
        if not path.is_file():
            raise InvalidInput("no such SQLite file under the source roots", code="source_missing")
        return SourceSpec(
            kind=spec.kind, location=str(url.set(database=str(path))), table=spec.table, query=spec.query
        )
    return spec


def _under_roots(location: str, roots: Sequence[Path]) -> Path:
    path = Path(location).expanduser().resolve()
    if not any(path.is_relative_to(root) for root in roots):
        where = ", ".join(str(r) for r in roots)
        raise InvalidInput(
            f"data source files must lie under a source root ({where}); set SHARETRAIL_SOURCE_ROOTS",
            code="source_outside_roots",
        )
    return path


def _same_database(a: sa.URL, b: sa.URL) -> bool:
    if a.get_backend_name() != b.get_backend_name():
        return False
    if a.get_backend_name() == "sqlite":
        return bool(a.database) and Path(a.database or "").resolve() == Path(b.database or "").resolve()
    return (a.host or "localhost", a.port, a.database) == (b.host or "localhost", b.port, b.database)
