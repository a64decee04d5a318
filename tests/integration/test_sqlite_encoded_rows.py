"""Rows a SQLite table source encodes itself (``SourceReader.encoded_rows``): byte for byte the
general path's canonical text, on real SQLite files — or ``None`` (the general path then reads)
whenever SQLite's JSON would not be RFC 8785's."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ledger.errors import StoreError
from ledger.gateway import sources
from ledger.gateway.columns import encode_rows
from ledger.gateway.query import Condition
from ledger.gateway.sources import EnginePool, SourceKind, SourceReader, SourceSpec
from ledger.sharing.catalog import FieldSpec

SAFE = 2**53 - 1
# (name, declared type): TEXT, INTEGER, NUMERIC (DATE, BOOLEAN) and no type (BLOB) affinity.
COLUMNS = [("id_number", "TEXT"), ("name", "VARCHAR(64)"), ("n", "INTEGER"), ("born", "DATE"),
           ("flag", "BOOLEAN"), ("any", "")]  # fmt: skip
NAMES = [name for name, _ in COLUMNS]
FIELDS = [FieldSpec(name=name) for name in NAMES]

_text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=6)
_safe = st.integers(min_value=-SAFE, max_value=SAFE)
_cell = st.one_of(
    st.none(),
    _text,
    _safe,
    st.sampled_from(["1.5", "007", "9007199254740993", "-0", "1e3", "X"]),  # numeric-looking text
)
_odd = st.one_of(  # what the general path must deliver instead
    st.floats(allow_nan=False, allow_infinity=False),  # a real
    st.integers(min_value=SAFE + 1, max_value=2**63 - 1),  # beyond a double's exact integers
    st.binary(max_size=3),  # a BLOB: json_object refuses it
)


@st.composite
def _rows(draw: st.DrawFn) -> list[list[Any]]:
    """Up to 12 rows; in about half of the tables one cell holds an odd value."""
    rows: list[list[Any]] = draw(
        st.lists(st.lists(_cell, min_size=len(NAMES), max_size=len(NAMES)), max_size=12)
    )
    if draw(st.booleans()) and rows:
        row, column = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, len(NAMES) - 1))
        rows[row][column] = draw(_odd)
    return rows


@pytest.fixture
def pool() -> Iterator[EnginePool]:
    engines = EnginePool()
    yield engines
    engines.close()


def _write(path: Path, rows: list[list[Any]]) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE IF EXISTS people")
        conn.execute("CREATE TABLE people (" + ", ".join(f'"{n}" {t}'.rstrip() for n, t in COLUMNS) + ")")
        conn.executemany(f"INSERT INTO people VALUES ({', '.join('?' * len(COLUMNS))})", rows)
    conn.close()


def _stored(path: Path) -> list[tuple[Any, ...]]:
    """The rows as SQLite holds them (after each column's affinity), in scan order."""
    with sqlite3.connect(path) as conn:
        found = conn.execute(f"SELECT {', '.join(NAMES)} FROM people").fetchall()
    conn.close()
    return found


def _reader(path: Path, pool: EnginePool, table: str = "people") -> SourceReader:
    return SourceReader(SourceSpec(SourceKind.SQL, f"sqlite:///{path}", table=table), FIELDS, pool)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=_rows(),
    wanted=st.lists(st.sampled_from(NAMES), min_size=1, unique=True),
    limit=st.integers(min_value=1, max_value=14),
    condition=st.sampled_from([None, ("n", "gte", 0), ("name", "ne", None), ("flag", "in", (0, 1))]),
)
def test_same_bytes_as_the_general_path_or_none(
    tmp_path: Path,
    pool: EnginePool,
    rows: list[list[Any]],
    wanted: list[str],
    limit: int,
    condition: tuple[str, str, Any] | None,
) -> None:
    path = tmp_path / "people.sqlite"
    _write(path, rows)  # a new table each example: a new schema version, the column cache re-read
    conditions = [] if condition is None else [Condition(*condition)]
    reader = _reader(path, pool)
    encoded = reader.encoded_rows(conditions, limit, wanted, ["id_number"])
    general = [row for batch in reader.batches(conditions, limit + 1) for row in batch]
    delivered = general[:limit]
    # What the database read under the same filter holds in the delivered and ID columns.
    raw = [r for r in _stored(path) if _kept(r, conditions)][:limit]
    at = {name: i for i, name in enumerate(NAMES)}
    delivered_raw = [r[at[n]] for r in raw for n in wanted]
    unsafe = any(
        type(v) is float or (type(v) is int and abs(v) > SAFE) or isinstance(v, bytes) for v in delivered_raw
    ) or any(isinstance(r[0], bytes) for r in raw)
    event("general path" if unsafe else "encoded by SQLite")
    if unsafe:
        assert encoded is None
        return
    assert encoded is not None
    columns = [[row[at[n]] for row in delivered] for n in wanted]
    assert encoded.array == ("[" + ",".join(encode_rows(wanted, columns, len(delivered))) + "]").encode()
    assert encoded.count == len(delivered)
    assert encoded.truncated is (len(general) > limit)
    assert encoded.id_values == [row[0] for row in raw]


def _kept(row: tuple[Any, ...], conditions: list[Condition]) -> bool:
    """SQLite's own answer for one of the test's conditions (its comparison rules, not Python's)."""
    if not conditions:
        return True
    c = conditions[0]
    value = row[NAMES.index(c.field)]
    with sqlite3.connect(":memory:") as conn:
        if c.op == "gte":
            (kept,) = conn.execute("SELECT ? >= ?", (value, c.value)).fetchone()
        elif c.op == "ne":
            kept = value is not None
        else:
            (kept,) = conn.execute("SELECT ? IN (?, ?)", (value, *c.value)).fetchone()
    return bool(kept)


def _table_t(path: Path, pool: EnginePool, declared: str, value: str) -> SourceReader:
    """A reader of table ``t (id_number TEXT, v <declared>)`` holding one row with ``v = <value>``
    (an SQL expression)."""
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE t (id_number TEXT, v {declared})")
        conn.execute(f"INSERT INTO t VALUES ('110101199003074514', {value})")
    conn.close()
    spec = SourceSpec(SourceKind.SQL, f"sqlite:///{path}", table="t")
    return SourceReader(spec, [FieldSpec("id_number"), FieldSpec("v")], pool)


def test_a_changed_table_is_read_at_its_new_schema(tmp_path: Path, pool: EnginePool) -> None:
    """The column types are cached per schema version: a table recreated with a number where text
    was is checked again, in the same statement that reads it."""
    path = tmp_path / "t.sqlite"
    reader = _table_t(path, pool, "TEXT", "'1.5'")
    first = reader.encoded_rows([], 10, ["v"], ["id_number"])
    assert first is not None and first.array == b'[{"v":"1.5"}]'
    assert first.id_values == ["110101199003074514"] and first.count == 1 and first.truncated is False
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE t")
        conn.execute("CREATE TABLE t (id_number TEXT, v NUMERIC)")
        conn.execute("INSERT INTO t VALUES ('110101199003074514', '1.5')")  # stored as the real 1.5
    conn.close()
    assert reader.encoded_rows([], 10, ["v"], ["id_number"]) is None
    assert [row for batch in reader.batches([], 10) for row in batch] == [("110101199003074514", 1.5)]


def test_only_sqlite_tables_whose_json_is_canonical(
    tmp_path: Path, pool: EnginePool, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "p.sqlite"
    _write(path, [["110101199003074514", "张伟", 1, "2020-01-01", 1, None]])
    fields = ["name", "n"]
    assert _reader(path, pool).encoded_rows([], 5, fields, []) is not None
    query = SourceSpec(SourceKind.SQL, f"sqlite:///{path}", query="SELECT * FROM people")
    assert SourceReader(query, FIELDS, pool).encoded_rows([], 5, fields, []) is None
    assert _reader(path, pool, table="main.people").encoded_rows([], 5, fields, []) is None
    assert _reader(path, pool).encoded_rows([], 0, fields, []) is None
    csv_path = tmp_path / "p.csv"
    csv_path.write_text("name,n\n张伟,1\n", encoding="utf-8")
    csv_reader = SourceReader(SourceSpec(SourceKind.CSV, str(csv_path)), FIELDS[1:3], pool)
    assert csv_reader.encoded_rows([], 5, fields, []) is None
    # A SQLite whose JSON text differs from RFC 8785 (the probe failed) leaves every source alone.
    monkeypatch.setattr(sources, "_SQLITE_JSON", {version: False for version in _versions(pool, path)})
    assert _reader(path, pool).encoded_rows([], 5, fields, []) is None


def test_views_and_virtual_tables_take_the_general_path(tmp_path: Path, pool: EnginePool) -> None:
    """A view's column is declared by the first branch of a UNION (TEXT here) whatever the second
    holds (a real), and a virtual table returns what its module likes: neither is encoded by SQLite,
    and the general path delivers the real as a number."""
    path = tmp_path / "v.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE a (id_number TEXT, v TEXT)")
        conn.execute("CREATE TABLE b (id_number TEXT, v REAL)")
        conn.execute("INSERT INTO a VALUES ('110101199003074514', 'x')")
        conn.execute("INSERT INTO b VALUES ('110101199003074522', 1.5)")
        conn.execute("CREATE VIEW u AS SELECT id_number, v FROM a UNION ALL SELECT id_number, v FROM b")
        conn.execute("CREATE VIRTUAL TABLE f USING fts5(id_number, v)")
        conn.execute("INSERT INTO f VALUES ('110101199003074514', 'x')")
    conn.close()
    fields = [FieldSpec("id_number"), FieldSpec("v")]
    for table in ("u", "f"):
        reader = SourceReader(SourceSpec(SourceKind.SQL, f"sqlite:///{path}", table=table), fields, pool)
        assert reader.encoded_rows([], 10, ["v"], ["id_number"]) is None
    view = SourceReader(SourceSpec(SourceKind.SQL, f"sqlite:///{path}", table="u"), fields, pool)
    assert [row for batch in view.batches([], 10) for row in batch] == [
        ("110101199003074514", "x"),
        ("110101199003074522", 1.5),
    ]
    upper = SourceReader(SourceSpec(SourceKind.SQL, f"sqlite:///{path}", table="A"), fields, pool)
    assert upper.encoded_rows([], 10, ["v"], ["id_number"]) is not None  # names match as SQLite does


def test_text_that_is_not_utf8_is_refused_as_by_the_general_path(tmp_path: Path, pool: EnginePool) -> None:
    """SQLite stores a TEXT value without checking its UTF-8; its JSON would carry the bad bytes.
    The fast path steps aside, and the general path reports the source as failing."""
    reader = _table_t(tmp_path / "bad.sqlite", pool, "TEXT", "CAST(X'C328' AS TEXT)")
    assert reader.encoded_rows([], 10, ["v"], ["id_number"]) is None
    with pytest.raises(StoreError) as info:
        list(reader.batches([], 10))
    assert info.value.code == "source_unavailable"


def _versions(pool: EnginePool, path: Path) -> list[str]:
    with pool.connect(f"sqlite:///{path}") as conn:
        return [".".join(map(str, conn.dialect.server_version_info or ()))]


def test_the_probe_agrees_on_this_sqlite(tmp_path: Path, pool: EnginePool) -> None:
    """The SQLite the suite runs on writes RFC 8785 text for the probe's values: the fast path
    is what the gateway tests exercise here, not silently the general one."""
    path = tmp_path / "p.sqlite"
    _write(path, [])
    with pool.connect(f"sqlite:///{path}") as conn:
        assert sources._sqlite_json_canonical(conn) is True
