"""The Merkle log in the SQL store: transactional append, O(log n) proofs.

Layout (docs/log.md): ``log_entries`` holds each entry's canonical bytes at its index;
``log_nodes`` holds the hash of every perfect subtree, keyed by tile so that a proof's lower nodes
are neighbours (``layout.node_key``; level 0 are the leaf hashes); ``log_head`` is one row with the
size and the right border (frontier) of the tree.

Append (RFC 9162 §2.1.1) takes the head row's lock — ``BEGIN IMMEDIATE`` on SQLite,
``SELECT … FOR UPDATE`` on PostgreSQL — so concurrent writers, in one process or several, get one
gap-free sequence; computes the new perfect nodes from the frontier (a compact range: O(log n)
per leaf, amortised O(1)); and inserts entries, nodes and the new head in the same transaction. The
caller is told an index only after that transaction committed.

Proofs name at most 2·log2(n) perfect nodes (``merkle.inclusion_path``,
``merkle.consistency_proof_plan``), fetched by primary key in one query.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any, cast

from sqlalchemy import Connection, Dialect, LargeBinary, Table, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import base as sqlite_types
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from ledger.canonical import canonical_json_many
from ledger.errors import Conflict, InvalidInput, NotFound, StoreError
from ledger.gcpause import gc_paused
from ledger.log import layout, merkle
from ledger.log.events import TrailColumns, trail_columns
from ledger.store.db import Store
from ledger.store.models import (
    Checkpoint,
    LeafRecord,
    LogEntry,
    LogHead,
    LogNode,
    LogSubject,
    LogTimeBlock,
)

# The tables behind the models, for Core statements on the append path.
_ENTRIES = cast(Table, LogEntry.__table__)
_SUBJECTS = cast(Table, LogSubject.__table__)
_NODES = cast(Table, LogNode.__table__)
_LEAF_RECORDS = cast(Table, LeafRecord.__table__)
_HEAD = cast(Table, LogHead.__table__)
_TIME_BLOCKS = cast(Table, LogTimeBlock.__table__)
# Leading columns of the indexes LogStore.bulk_load leaves out: those led by the resource, with one
# insertion point per catalog item (a city's 18,725: a 10,000-event commit rewrites thousands of
# their pages). Every other index takes an entry at the right edge of one of a few hundred ranges at
# most (the time; a kind or purpose, an accessor, provider or grant, each followed by the log index
# or the time, which grow with the log), so it costs an append little — less than its own sort
# after the import, one scan of the whole table each (docs/benchmarks.md, the Guiyang replay).
_SCATTERED_BY = frozenset({"resource"})
_PAUSE_GC_AT = 256  # entries: a batch this large appends with the cyclic GC paused
TIME_BLOCK_BITS = 10  # log indices per time block: 1,024 (migration 0018; 16,384 in 0016)
_NODES_BY_KEY = select(_NODES.c.id, _NODES.c.hash).where(_NODES.c.id.in_(bindparam("keys", expanding=True)))


def node_key(node: merkle.NodeId) -> int:
    """The ``log_nodes`` key of a node: tile-ordered (``ledger/log/layout.py``, docs/log.md)."""
    return layout.node_key(*node)


@dataclass(frozen=True)
class NewEntry:
    """An event to append. ``event`` is the JSON object that becomes the leaf (canonicalised);
    ``request_hash`` identifies the submitted content for idempotent retries."""

    event_id: str
    kind: str
    time: datetime
    event: Mapping[str, Any] | None  # None only with both ``encoded`` and ``trail``
    accessor: str | None = None
    resource: str | None = None
    request_hash: bytes | None = None
    onchain: bool = False  # also record this leaf in its own transaction (resource level policy)
    # Subject hashes the append indexes itself, for an entry that carries only their digest (a very
    # large access); the subjects an entry carries inline are indexed by ``subject_index``.
    subjects: tuple[str, ...] | None = None
    # ``canonical_json(event)`` when the caller already has it (encoded in another process by the
    # simulator's producer); the store encodes ``event`` itself otherwise.
    encoded: bytes | None = None
    # ``trail_columns(event)`` when the caller already has them (with ``encoded``, from a producer
    # that shipped no event object: ``ledger.log.events.EncodedEntry``).
    trail: TrailColumns | None = None

    def __post_init__(self) -> None:
        if self.event is None and (self.encoded is None or self.trail is None):
            raise ValueError("a NewEntry without its event needs both its encoded leaf and trail columns")

    def body(self) -> Mapping[str, Any]:
        """The JSON object of the leaf (decoded from ``encoded`` when no event was given)."""
        if self.event is not None:
            return self.event
        return cast(Mapping[str, Any], json.loads(cast(bytes, self.encoded)))

    def trail_columns(self) -> TrailColumns:
        return self.trail if self.trail is not None else trail_columns(self.body())


def _leaves(entries: Sequence[NewEntry]) -> list[bytes]:
    """Each entry's leaf bytes: its ``encoded`` when given, else its event in RFC 8785 form, the
    events of the batch encoded together (:func:`canonical_json_many`: one plainness check)."""
    out: list[bytes | None] = [e.encoded for e in entries]
    todo = [n for n, b in enumerate(out) if b is None]
    if todo:
        events = [entries[n].event for n in todo]
        plain = [e if type(e) is dict else dict(cast(Mapping[str, Any], e)) for e in events]
        for n, leaf in zip(todo, canonical_json_many(plain), strict=True):
            out[n] = leaf
    return cast(list[bytes], out)


@dataclass(frozen=True)
class Appended:
    event_id: str
    index: int
    duplicate: bool


@dataclass(frozen=True)
class StoredEntry:
    index: int
    event_id: str
    kind: str
    entry: bytes


AppendGuard = Callable[[Session, Sequence[Appended]], None]


# The append path's statements, built once: it runs for every access.
_HEAD_FOR_UPDATE = select(_HEAD.c.size, _HEAD.c.frontier).where(_HEAD.c.id == 1).with_for_update()
_EXISTING = select(_ENTRIES.c.event_id, _ENTRIES.c.idx, _ENTRIES.c.request_hash).where(
    _ENTRIES.c.event_id.in_(bindparam("ids", expanding=True))
)
_INSERT_LEAF_RECORDS = insert(_LEAF_RECORDS)
_UPDATE_HEAD = update(_HEAD).where(_HEAD.c.id == 1)  # SET size, frontier: from the parameters


_ENTRY_COLUMNS = (
    "idx", "event_id", "kind", "accessor", "resource", "time", "request_hash", "entry",
    "provider", "grant_ref", "purpose", "mode",
)  # fmt: skip


def _bulk_insert(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    skip_existing: bool = False,
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table``: the append path's writes.

    The log appends up to 20,000 entries, their tree nodes and a gateway access's 1,000 subject
    rows per transaction, so on SQLite the tuples go straight to the driver's ``executemany`` —
    no per-row parameter dicts and no per-row ``construct_params`` (together ~20 µs an entry,
    docs/benchmarks.md, the simulate section) — each value through its column type's bind
    processor for this dialect (the ``time`` column's text form is SQLAlchemy's own, so the ORM
    reads back what it would have written). Other databases take Core's batched multi-row
    ``INSERT`` (``insertmanyvalues``). ``skip_existing`` leaves a row whose key is already there as
    it is (``INSERT OR IGNORE`` / ``ON CONFLICT DO NOTHING``)."""
    if conn.dialect.name != "sqlite":
        stmt = postgresql_insert(table).on_conflict_do_nothing() if skip_existing else insert(table)
        conn.execute(stmt, [dict(zip(columns, row, strict=True)) for row in rows])
        return
    dialect = conn.dialect
    converters = [
        (n, process)
        for n, name in enumerate(columns)
        # sqlite3 binds bytes as a BLOB itself: LargeBinary's processor only wraps each value in a
        # memoryview (three an entry, ~0.4 µs each)
        if not isinstance(table.c[name].type, LargeBinary)
        and (process := sqlite_bind_processor(table.c[name].type, dialect)) is not None
    ]
    if converters:
        converted = []
        for row in rows:
            values = list(row)
            for n, process in converters:
                values[n] = process(values[n])
            converted.append(tuple(values))
        rows = converted
    marks = ", ".join("?" * len(columns))
    verb = "INSERT OR IGNORE" if skip_existing else "INSERT"
    conn.exec_driver_sql(f"{verb} INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", rows)


_SQLITE_DATETIME_FORMAT = sqlite_types.DATETIME._storage_format  # SQLAlchemy's default text form


def sqlite_bind_processor(column_type: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """The column type's bind processor on SQLite (None if it has none); for a ``DateTime`` in
    SQLAlchemy's default storage form, one that writes a ``datetime`` with ``isoformat`` (in C:
    the same text, ``YYYY-MM-DD HH:MM:SS.ffffff`` of its fields, the zone dropped as SQLAlchemy
    drops it) — 0.3 against 1.2 µs a value — and hands anything else to SQLAlchemy's."""
    impl = column_type.dialect_impl(dialect)
    process = cast(Callable[[Any], Any] | None, impl.bind_processor(dialect))
    if (
        process is None
        or not isinstance(impl, sqlite_types.DATETIME)
        or impl._storage_format != _SQLITE_DATETIME_FORMAT
    ):
        return process

    def fast(value: Any) -> Any:
        if type(value) is datetime:
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")
        return process(value)

    return fast


def insert_subjects(conn: Connection, rows: list[tuple[bytes, int]], *, skip_existing: bool = False) -> None:
    """Index data subjects: ``(keyed hash, log index)`` rows, sorted, so they reach the
    primary-key B-tree in its own order (the append's for a large access; the subject indexer's,
    which ``skip_existing``)."""
    rows.sort()
    _bulk_insert(conn, _SUBJECTS, ("subject_hash", "idx"), rows, skip_existing=skip_existing)


def time_blocks(base: int, times: Sequence[datetime]) -> dict[int, tuple[datetime, datetime]]:
    """The earliest and latest of ``times`` (of log indices ``base``, ``base + 1``, …) per block."""
    blocks: dict[int, tuple[datetime, datetime]] = {}
    bits = TIME_BLOCK_BITS
    for n, moment in enumerate(times):
        block = (base + n) >> bits
        span = blocks.get(block)
        if span is None:
            blocks[block] = (moment, moment)
        elif moment < span[0]:
            blocks[block] = (moment, span[1])
        elif moment > span[1]:
            blocks[block] = (span[0], moment)
    return blocks


def _time_block_upsert(dialect: str) -> Any:
    """``INSERT … ON CONFLICT (block) DO UPDATE`` widening a block's span: built once per dialect
    (building it — ``excluded`` makes a proxy of every column — cost more than running it)."""
    stmt = _UPSERT_TIME_BLOCKS.get(dialect)
    if stmt is None:
        upsert = sqlite_insert if dialect == "sqlite" else postgresql_insert
        earlier, later = (func.min, func.max) if dialect == "sqlite" else (func.least, func.greatest)
        base = upsert(_TIME_BLOCKS)
        stmt = _UPSERT_TIME_BLOCKS[dialect] = base.on_conflict_do_update(
            index_elements=[_TIME_BLOCKS.c.block],
            set_={
                "min_time": earlier(_TIME_BLOCKS.c.min_time, base.excluded.min_time),
                "max_time": later(_TIME_BLOCKS.c.max_time, base.excluded.max_time),
            },
        )
    return stmt


_UPSERT_TIME_BLOCKS: dict[str, Any] = {}


def _widen_time_blocks(conn: Connection, blocks: Mapping[int, tuple[datetime, datetime]]) -> None:
    """Merge the appended entries' time spans into ``log_time_blocks`` (insert or widen)."""
    conn.execute(
        _time_block_upsert(conn.dialect.name),
        [{"block": b, "min_time": lo, "max_time": hi} for b, (lo, hi) in blocks.items()],
    )


def _split(frontier: bytes) -> list[bytes]:
    return [frontier[i : i + 32] for i in range(0, len(frontier), 32)]


class NodeCache:
    """A bounded cache of tree node hashes by node id. A perfect-subtree hash never changes once
    written (the tables are insert-only), so entries need no invalidation — only a size bound.

    Reads are plain ``dict`` lookups, without a lock (CPython's dict is safe to read while another
    thread writes) and without LRU bookkeeping: a proof reads ~20 nodes, and moving each to the end
    of an ordered dict under a lock cost as much as the rest of a warm proof. When full, the
    oldest tenth of the entries is dropped (first in, first out): a hot upper node that goes is
    read back once."""

    def __init__(self, capacity: int = 500_000) -> None:
        self.capacity = capacity
        self.data: dict[merkle.NodeId, bytes] = {}
        self._lock = threading.Lock()  # writers only: eviction iterates the dict

    def get_many(
        self, keys: Sequence[merkle.NodeId]
    ) -> tuple[dict[merkle.NodeId, bytes], list[merkle.NodeId]]:
        found: dict[merkle.NodeId, bytes] = {}
        missing: list[merkle.NodeId] = []
        get = self.data.get
        for key in keys:
            value = get(key)
            if value is None:
                missing.append(key)
            else:
                found[key] = value
        return found, missing

    def put_many(self, items: Mapping[merkle.NodeId, bytes]) -> None:
        with self._lock:
            data = self.data
            data.update(items)
            excess = len(data) - self.capacity
            if excess > 0:
                drop = list(islice(iter(data), excess + self.capacity // 10))
                for key in drop:
                    del data[key]


_LOW = layout.TILE_HEIGHT  # a proof's lower part: the siblings inside the leaf's tile
_UPPER_MEMO = 1 << 15  # memoised upper parts (one per tile-level subtree and tree size): ~20 MB


def _low_subtree(index: int, size: int) -> tuple[int, int]:
    """``(start, height)`` of the subtree a proof of leaf ``index`` in ``D[size]`` is split at:
    the leaf's tile (``2^_LOW`` aligned leaves) when the tile is whole — the perfect subtrees of
    height ``_LOW`` and more cover exactly the whole tiles, ``[0, size >> _LOW << _LOW)`` — and
    otherwise the leaf's perfect subtree (:func:`merkle.perfect_subtree`, smaller than a tile).
    Below it the proof is the ``height`` siblings ``(level, (index >> level) ^ 1)``, all in the
    leaf's tile; above it the same for every leaf of the subtree."""
    if index >= 0 and index >> _LOW < size >> _LOW:
        return index >> _LOW << _LOW, _LOW
    return merkle.perfect_subtree(index, size)


class _RecordedBefore(Exception):
    """An optimistic append met an ``event_id`` already in the log (rolled back; look it up)."""


class LogStore:
    def __init__(self, store: Store, *, cache_nodes: int = 500_000) -> None:
        self.store = store
        self.cache = NodeCache(cache_nodes)
        # MTH of the right-border ranges proofs and roots need, by (start, end): immutable too.
        self._ranges: dict[tuple[int, int], bytes] = {}
        # The proof elements above each tile-level subtree, by (start, height, tree size): immutable.
        self._upper: dict[tuple[int, int, int], list[bytes]] = {}
        self._known_size = 0  # the log only grows: a size seen once stays valid
        # The latest checkpoint read, by its size: a checkpoint row is written once and never changed
        self._latest: Checkpoint | None = None

    # -- append ---------------------------------------------------------------------------------
    def append(self, entries: Sequence[NewEntry], *, guard: AppendGuard | None = None) -> list[Appended]:
        """Append a batch in one transaction; idempotent by ``event_id``.

        ``guard`` runs inside the transaction, after the new rows are written and before the commit,
        with the freshly appended results (duplicates excluded): it writes state that must commit
        with the events (a grant's access counter) or raises to roll the whole batch back.
        """
        if not entries:
            return []
        ids = [e.event_id for e in entries]
        if len(set(ids)) != len(ids):
            raise InvalidInput("a batch names the same event_id twice", code="duplicate_event_id")
        # The rows, nodes and results are small containers without cycles, tens per entry:
        # collecting while they pile up cost a 10,000-entry batch more than its writes
        # (docs/benchmarks.md, "The append without the garbage collector"). A gateway's single
        # access gains nothing from a pause, so only batches take one.
        with gc_paused() if len(entries) >= _PAUSE_GC_AT else nullcontext():
            encoded = _leaves(entries)
            request_hashes = [
                e.request_hash or hashlib.sha256(b).digest() for e, b in zip(entries, encoded, strict=True)
            ]
            # Optimistic first: event ids are almost always new, so the batch is inserted without
            # looking them up first, and the ``event_id`` unique constraint tells if one was not —
            # the transaction then rolls back and the batch is appended again, reading the ids that
            # exist (a retry returns their indices, or a conflict). The lookup of every id cost a
            # 10,000-event import ~6 µs an event, and each gateway access one more query.
            try:
                return self._append(entries, encoded, request_hashes, guard, lookup=False)
            except _RecordedBefore:
                return self._append(entries, encoded, request_hashes, guard, lookup=True)

    def _append(
        self,
        entries: Sequence[NewEntry],
        encoded: Sequence[bytes],
        request_hashes: Sequence[bytes],
        guard: AppendGuard | None,
        *,
        lookup: bool,
    ) -> list[Appended]:
        ids = [e.event_id for e in entries]
        try:
            with self.store.session() as session:
                # Core statements on the session's connection, built once (below): the ORM's unit
                # of work, and building and cache-keying a statement per call, cost more than the rows.
                conn = session.connection()
                head = conn.execute(_HEAD_FOR_UPDATE).one()
                existing = (
                    {
                        row.event_id: (row.idx, row.request_hash)
                        for row in conn.execute(_EXISTING, {"ids": ids})
                    }
                    if lookup
                    else {}
                )
                results: list[Appended] = []
                fresh: list[int] = []
                for i, entry in enumerate(entries):
                    seen = existing.get(entry.event_id)
                    if seen is None:
                        fresh.append(i)
                        continue
                    if bytes(seen[1]) != request_hashes[i]:
                        raise Conflict(
                            f"event_id {entry.event_id!r} was already recorded with different content "
                            f"(log index {seen[0]})",
                            code="event_id_conflict",
                        )
                    results.append(Appended(entry.event_id, seen[0], True))
                if fresh:
                    frontier = merkle.CompactRange(size=head.size, hashes=_split(head.frontier))
                    leaves = [merkle.leaf_hash(encoded[i]) for i in fresh]
                    nodes, frontier = frontier.append(leaves)
                    base = head.size
                    rows = []
                    for n, i in enumerate(fresh):
                        e = entries[i]
                        rows.append(
                            (
                                base + n,
                                e.event_id,
                                e.kind,
                                e.accessor,
                                e.resource,
                                e.time,
                                request_hashes[i],
                                encoded[i],
                                *e.trail_columns(),
                            )
                        )
                    _bulk_insert(conn, _ENTRIES, _ENTRY_COLUMNS, rows)
                    _widen_time_blocks(conn, time_blocks(base, [entries[i].time for i in fresh]))
                    subjects = [
                        (bytes.fromhex(h[2:]), base + n)
                        for n, i in enumerate(fresh)
                        for h in set(entries[i].subjects or ())
                    ]
                    if subjects:
                        insert_subjects(conn, subjects)
                    _bulk_insert(conn, _NODES, ("id", "hash"), [(node_key(n), h) for n, h in nodes])
                    onchain = [
                        {"idx": base + n, "leaf_hash": leaves[n]}
                        for n, i in enumerate(fresh)
                        if entries[i].onchain
                    ]
                    if onchain:
                        conn.execute(_INSERT_LEAF_RECORDS, onchain)
                    conn.execute(_UPDATE_HEAD, {"size": frontier.size, "frontier": b"".join(frontier.hashes)})
                    appended = [Appended(entries[i].event_id, base + n, False) for n, i in enumerate(fresh)]
                    if guard is not None:
                        guard(session, appended)
                    results.extend(appended)
        except IntegrityError as exc:
            if not lookup:
                raise _RecordedBefore from exc  # an event id is taken: append again, looking first
            # Another writer recorded one of these event ids between our read and insert.
            raise Conflict("concurrent append of the same event_id; retry", code="event_id_race") from exc
        order = {eid: n for n, eid in enumerate(ids)}
        return sorted(results, key=lambda r: order[r.event_id])

    @contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Append a large import faster: the trail's indexes of ``log_entries`` that scatter an
        append (those led by the resource) are dropped for the duration and each built once, by one
        sort, at the end.

        Appended one batch at a time, an entry is an insert at one of thousands of insertion points
        in each of those B-trees (one per catalog item), and each commit rewrites every index page it
        touched; at a city's scale that is a large part of an append's cost (docs/benchmarks.md, the
        Guiyang replay). The indexes led by an accessor, a provider or a grant (a few hundred
        insertion points, each at the right edge of its range) are kept: they cost an append
        ~12 µs an event, less than the full-table scan and sort each would take afterwards.
        Nothing else changes inside: each append is the same durable transaction, with its tree
        nodes, the ``event_id`` uniqueness (a constraint, kept) and the head; proofs, anchors and
        verify read by log index. Trail queries by resource scan meanwhile — slow, still exact.
        The indexes are built whether the block ends normally or not, and if the process dies
        inside, the next ``Store.migrate`` (every start) builds them before anything reads the
        log."""
        indexes = sorted(
            (ix for ix in _ENTRIES.indexes if next(iter(ix.columns)).name in _SCATTERED_BY),
            key=lambda ix: str(ix.name),
        )
        try:
            with self.store.engine.begin() as conn:
                for index in indexes:
                    index.drop(conn, checkfirst=True)
        except SQLAlchemyError as exc:
            raise StoreError(f"dropping the log's indexes for a bulk load failed: {exc}") from exc
        try:
            yield
        finally:
            self.store.ensure_indexes()

    # -- reads ----------------------------------------------------------------------------------
    def size(self) -> int:
        rows = self.store.read_rows("SELECT size FROM log_head WHERE id = 1")
        if not rows:
            raise StoreError("the log's head row is missing (the database was not migrated)")
        return int(rows[0][0])

    def frontier(self) -> merkle.CompactRange:
        with self.store.read() as session:
            head = session.execute(select(LogHead).where(LogHead.id == 1)).scalar_one()
            return merkle.CompactRange(size=head.size, hashes=_split(head.frontier))

    def _check_size(self, tree_size: int) -> None:
        if tree_size <= self._known_size:
            return
        size = self.size()
        self._known_size = max(self._known_size, size)
        if tree_size > size:
            raise InvalidInput(
                f"tree_size {tree_size} exceeds the log size {size}", code="tree_size_too_large"
            )

    def nodes(self, ids: Sequence[merkle.NodeId]) -> dict[merkle.NodeId, bytes]:
        """Node hashes by id: from the immutable-node cache, the rest in one primary-key query
        (on SQLite through the thread's raw reader: nodes never change, so no transaction)."""
        found, missing = self.cache.get_many(ids)
        if missing:
            wanted = {node_key(n): n for n in missing}  # the rows come back by key: no key_node
            keys = sorted(wanted)
            fetched: dict[merkle.NodeId, bytes] = {}
            raw = self.store.raw_reader()
            if raw is not None:
                try:
                    for start in range(0, len(keys), 500):
                        part = keys[start : start + 500]
                        sql = f"SELECT id, hash FROM log_nodes WHERE id IN ({','.join('?' * len(part))})"
                        fetched.update((wanted[key], value) for key, value in raw.execute(sql, part))
                except sqlite3.Error as exc:
                    raise StoreError(f"database unavailable: {exc}") from exc
            else:
                for start in range(0, len(keys), 500):
                    rows = self.store.read_rows(_NODES_BY_KEY, {"keys": keys[start : start + 500]})
                    fetched.update((wanted[int(key)], bytes(value)) for key, value in rows)
            self.cache.put_many(fetched)
            found.update(fetched)
        return found

    def tlog_tile(self, level: int, index: int, width: int) -> bytes:
        """The ``width`` hashes of C2SP tlog tile ``level``/``index`` (tree level ``8·level``,
        nodes ``index·256 …``), concatenated: one key-range read (``layout.tlog_tile_keys``). The
        caller checks the tile lies inside the tree it serves; a hash missing there is damage
        (:class:`merkle.MissingNodeError`, naming the first one)."""
        low, high = layout.tlog_tile_keys(level, index, width)
        rows = self._node_range(low, high)
        if len(rows) != width:
            have = {key for key, _ in rows}
            missing = next(key for key in range(low, high) if key not in have)
            raise merkle.MissingNodeError(layout.key_node(missing))
        return b"".join(value for _, value in rows)

    def _node_range(self, low: int, high: int) -> list[tuple[int, bytes]]:
        """``(key, hash)`` of the stored nodes with keys in ``[low, high)``, in key order (the
        driver's rows as they come: no conversion per row)."""
        sql = "SELECT id, hash FROM log_nodes WHERE id >= :low AND id < :high ORDER BY id"
        return self.store.read_rows(sql, {"low": low, "high": high})

    def _range_root(self, start: int, end: int) -> bytes:
        """``MTH(D[start:end])`` of a right-border range, from its perfect nodes; memoised."""
        value = self._ranges.get((start, end))
        if value is None:
            group = merkle.perfect_nodes_for_range(start, end)
            value = merkle.fold(group, self.nodes(group))
            if len(self._ranges) >= 4096:
                self._ranges.clear()
            self._ranges[(start, end)] = value
        return value

    def root(self, tree_size: int) -> bytes:
        if tree_size == 0:
            return merkle.EMPTY_ROOT
        self._check_size(tree_size)
        return self._range_root(0, tree_size)

    def _above(self, start: int, height: int, size: int) -> list[bytes]:
        """The proof elements above the perfect subtree ``[start, start + 2^height)`` of
        ``D[size]`` (a node of the tree: aligned, inside it) — the same for each of its leaves;
        memoised."""
        key = (start, height, size)
        value = self._upper.get(key)
        if value is None:
            nodes, at, range_start = merkle.inclusion_path(start, size)
            upper = nodes[height:]  # the first ``height`` are the siblings inside the subtree
            found = self.nodes(upper)
            try:
                value = [found[n] for n in upper]
            except KeyError as exc:
                raise merkle.MissingNodeError(exc.args[0]) from None
            if at >= 0:
                value.insert(at - height, self._range_root(range_start, size))
            self._remember(key, value)
        return value

    def _remember(self, key: tuple[int, int, int], value: list[bytes]) -> None:
        if len(self._upper) >= _UPPER_MEMO:
            self._upper.clear()
        self._upper[key] = value

    def inclusion_proof(self, index: int, tree_size: int) -> list[bytes]:
        return self.leaf_and_inclusion_proof(index, tree_size)[1]

    def leaf_and_inclusion_proof(self, index: int, tree_size: int) -> tuple[bytes, list[bytes]]:
        """The leaf hash and its proof. Warm: the leaf and its siblings inside its tile-level
        subtree (:func:`_low_subtree`) from the node cache, the elements above that subtree from
        their memo. Otherwise :meth:`_subtree_proof`, which reads what is missing in one query and
        fills the memo of the leaf's tile."""
        self._check_size(tree_size)
        start, height = _low_subtree(index, tree_size)
        upper = self._upper.get((start, height, tree_size))
        if upper is None:
            return self._subtree_proof(index, tree_size)
        get = self.cache.data.get
        lower = [get((level, (index >> level) ^ 1)) for level in range(height)]
        leaf = get((0, index))
        if leaf is None or None in lower:
            return self._subtree_proof(index, tree_size)
        return leaf, cast(list[bytes], lower) + upper

    def _subtree_proof(self, index: int, tree_size: int) -> tuple[bytes, list[bytes]]:
        """The proof split at the leaf's perfect subtree: its siblings inside from the node cache
        or one read (the lowest eight share the leaf's tile), the rest memoised per subtree. The
        tile's memo is the siblings above the tile plus that rest — kept for the next proof."""
        start, height = merkle.perfect_subtree(index, tree_size)
        wanted = [(level, (index >> level) ^ 1) for level in range(height)]
        wanted.append((0, index))
        get = self.cache.data.get
        lower = [get(n) for n in wanted]
        if None in lower:
            found = self.nodes(wanted)
            lower = [found.get(n) for n in wanted]
            if lower[-1] is None:
                raise NotFound(f"no log entry at index {index}", code="entry_not_found")
            if None in lower:
                raise merkle.MissingNodeError(wanted[lower.index(None)])
        leaf = cast(bytes, lower.pop())
        above = self._above(start, height, tree_size)
        if height > _LOW:
            self._remember((index >> _LOW << _LOW, _LOW, tree_size), cast(list[bytes], lower[_LOW:]) + above)
        return leaf, cast(list[bytes], lower) + above

    def inclusion_proofs(self, indices: Sequence[int], tree_size: int) -> list[list[bytes]]:
        """Many inclusion proofs against one tree size with one read of the nodes they need (audit
        exports, bundles for a data subject); the parts above each perfect subtree are shared."""
        self._check_size(tree_size)
        places = [(index, *merkle.perfect_subtree(index, tree_size)) for index in indices]
        found = self.nodes([(level, (i >> level) ^ 1) for i, _, height in places for level in range(height)])
        try:
            return [
                [found[(level, (i >> level) ^ 1)] for level in range(height)]
                + self._above(start, height, tree_size)
                for i, start, height in places
            ]
        except KeyError as exc:
            raise merkle.MissingNodeError(exc.args[0]) from None

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        self._check_size(second)
        plan = merkle.consistency_proof_plan(first, second)
        return merkle.assemble(plan, self.nodes(merkle.plan_nodes(plan)))

    def leaf_hash(self, index: int) -> bytes:
        found = self.nodes([(0, index)])
        if (0, index) not in found:
            raise NotFound(f"no log entry at index {index}", code="entry_not_found")
        return found[(0, index)]

    def entry(self, index: int) -> StoredEntry:
        with self.store.read() as session:
            row = session.get(LogEntry, index)
        if row is None:
            raise NotFound(f"no log entry at index {index}", code="entry_not_found")
        return StoredEntry(row.idx, row.event_id, row.kind, bytes(row.entry))

    def entries(self, start: int, end: int) -> list[StoredEntry]:
        with self.store.read() as session:
            rows = session.execute(
                select(LogEntry.idx, LogEntry.event_id, LogEntry.kind, LogEntry.entry)
                .where(LogEntry.idx >= start, LogEntry.idx < end)
                .order_by(LogEntry.idx)
            )
            return [StoredEntry(i, e, k, bytes(b)) for i, e, k, b in rows]

    def iter_chunks(self, start: int, end: int, chunk: int = 20_000) -> Iterator[tuple[int, int]]:
        for a in range(start, end, chunk):
            yield a, min(end, a + chunk)

    # -- per-leaf records -------------------------------------------------------------------------
    def pending_leaf_records(self, limit: int = 100) -> list[tuple[int, bytes]]:
        with self.store.read() as session:
            rows = session.execute(
                select(LeafRecord.idx, LeafRecord.leaf_hash)
                .where(LeafRecord.tx_hash.is_(None))
                .order_by(LeafRecord.idx)
                .limit(limit)
            )
            return [(int(i), bytes(h)) for i, h in rows]

    def mark_leaf_recorded(self, index: int, tx_hash: str, block_number: int) -> None:
        with self.store.session() as session:
            row = session.get(LeafRecord, index)
            if row is not None:
                row.tx_hash, row.block_number = tx_hash, block_number

    def leaf_record(self, index: int) -> LeafRecord | None:
        with self.store.read() as session:
            return session.get(LeafRecord, index)

    # -- checkpoints ------------------------------------------------------------------------------
    def latest_checkpoint(self) -> Checkpoint | None:
        """The checkpoint of the largest size. One index read of that size; the row itself only
        when it is not the one read last (checkpoint rows never change once written)."""
        size = self.store.read_rows("SELECT max(size) FROM checkpoints")[0][0]
        if size is None:
            return None
        latest = self._latest
        if latest is not None and latest.size == size:
            return latest
        with self.store.read() as session:
            latest = session.scalar(select(Checkpoint).order_by(Checkpoint.size.desc()).limit(1))
        self._latest = latest
        return latest

    def checkpoint_covering(self, index: int) -> Checkpoint | None:
        """The smallest anchored checkpoint that includes leaf ``index``."""
        with self.store.read() as session:
            return session.scalar(
                select(Checkpoint).where(Checkpoint.size > index).order_by(Checkpoint.size).limit(1)
            )

    def checkpoint(self, size: int) -> Checkpoint | None:
        with self.store.read() as session:
            return session.get(Checkpoint, size)

    def record_checkpoint(self, checkpoint: Checkpoint) -> None:
        with self.store.session() as session:
            if session.get(Checkpoint, checkpoint.size) is None:
                session.add(checkpoint)
