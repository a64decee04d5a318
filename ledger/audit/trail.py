"""The regulator's trail (谁来拿数据，拿数据干什么): filtered, paginated queries over the one log.

Filters run on the indexed trail columns of ``log_entries`` (accessor, provider, resource, grant or
contract, purpose, kind, time — copied from each entry at append time) and on the data-subject index;
each row is then read from the entry's canonical bytes, which stay the authority (the verifier
recomputes every leaf from them). Pages are keyset-paginated on the log index, newest first, so a
page costs the same at index 10 million as at index 10.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, DateTime, Row, Select, String, func, literal_column, select, union
from sqlalchemy.orm import Session

from ledger.errors import Forbidden, InvalidInput
from ledger.log import store as log_store
from ledger.log.events import AccessMode, EventKind
from ledger.log.subject_index import SubjectTail, subject_tail
from ledger.spreadsheet import safe_row
from ledger.store.db import Store
from ledger.store.models import LogEntry, LogSubject, LogTimeBlock, Party, Resource
from ledger.types import PartyKind

MAX_PAGE = 1000
MAX_EXPORT = 100_000
AUDITORS = (PartyKind.REGULATOR, PartyKind.REGISTRAR)
CSV_COLUMNS = (
    "index",
    "time",
    "kind",
    "accessor",
    "accessor_name",
    "provider",
    "provider_name",
    "resource",
    "resource_name",
    "purpose",
    "grant",
    "contract",
    "mode",
    "fields",
    "record_count",
    "reason",
    "result_hash",
    "bundle",
)


@dataclass(frozen=True)
class _SubjectPart:
    """One side of a data-subject filter: the index below ``cursor`` (``tail`` None) or the live
    tail's matching log indices."""

    hash: bytes
    cursor: int
    tail: list[int] | None


@dataclass(frozen=True)
class TrailQuery:
    party: str | None = None  # accessor or provider
    accessor: str | None = None
    provider: str | None = None
    resource: str | None = None
    purpose: str | None = None
    grant: str | None = None  # a grant id or an open-contract id
    mode: AccessMode | None = None
    kind: EventKind | None = None
    since: datetime | None = None
    until: datetime | None = None
    subject: str | None = None  # an ID number (hashed here) or its keyed hash 0x…
    before: int | None = None  # keyset cursor: entries with a smaller log index
    limit: int = 100


class TrailService:
    def __init__(self, *, store: Store, hash_subject: Callable[[str], str]) -> None:
        self.store = store
        self.hash_subject = hash_subject  # an ID number -> its keyed hash (SubjectService.hash_of)

    def _blocks(self, session: Session, q: TrailQuery) -> tuple[int, int] | None:
        """The log indices ``[lo, hi)`` that entries in the time window can have: the blocks whose
        time span meets the window (``log_time_blocks``, kept by the append, migrations 0016 and
        0018); None without a window. Entries arrive in roughly time order, so the span is tight;
        an event recorded late only widens it (the time condition is applied as well)."""
        if q.since is None and q.until is None:
            return None
        stmt = select(func.min(LogTimeBlock.block), func.max(LogTimeBlock.block))
        if q.since is not None:
            stmt = stmt.where(LogTimeBlock.max_time >= q.since)
        if q.until is not None:
            stmt = stmt.where(LogTimeBlock.min_time < q.until)
        first, last = session.execute(stmt).one()
        if first is None:
            return (0, 0)
        bits = log_store.TIME_BLOCK_BITS
        return int(first) << bits, (int(last) + 1) << bits

    def _statement(
        self,
        q: TrailQuery,
        limit: int,
        window: tuple[int, int] | None,
        tail: SubjectTail | None = None,
        *,
        driver: str | None = None,
    ) -> Select[int, bytes]:
        """The page: its log indices are chosen first from the indexes (newest first, at most
        ``limit``), then only those entries' bytes are read (a deferred join: a filter matching
        millions of rows never reads them, and a sort, where the index order is not the log's, sorts
        integers). ``party`` is accessor *or* provider: one index scan each, merged, rather than a
        sort of every row either index matches. A data subject is likewise the subject index below
        its cursor or the live ``tail`` past it (``ledger.log.subject_index``)."""
        parties: list[ColumnElement[bool] | None] = [None]
        if q.party:
            parties = [LogEntry.accessor == q.party, LogEntry.provider == q.party]
        parts: list[_SubjectPart | None] = [None]
        if tail is not None:
            parts = [_SubjectPart(self._subject(q.subject or ""), tail.cursor, None)]
            if tail.indices:
                parts.append(_SubjectPart(b"", tail.cursor, tail.indices))
        branches = [
            self._indices(q, party, limit, window, part, driver) for party in parties for part in parts
        ]
        if len(branches) > 1:
            merged = union(*(select(b.subquery().c.idx) for b in branches)).subquery()
            page = select(merged.c.idx).order_by(merged.c.idx.desc()).limit(limit)
        else:
            page = branches[0]
        chosen = page.subquery()
        return (
            select(LogEntry.idx, LogEntry.entry)
            .where(LogEntry.idx.in_(select(chosen.c.idx)))
            .order_by(LogEntry.idx.desc())
        )

    def _indices(
        self,
        q: TrailQuery,
        party: ColumnElement[bool] | None,
        limit: int,
        window: tuple[int, int] | None,
        subject: _SubjectPart | None,
        driver: str | None = None,
        *,
        by_time: bool = False,
    ) -> _AnySelect:
        """One branch's page of log indices. With a ``driver`` column, on SQLite every other
        column's condition is written ``+column`` so that only the driver's indexes can serve
        it: ``(column, idx)`` for a log-index range (``window``; the time then ``+time`` too), or
        ``(column, time, …)`` walked newest first in time (``by_time``: rows ``(idx, time)``)."""
        sqlite = self.store.dialect == "sqlite"
        stmt = select(LogEntry.idx, LogEntry.time) if by_time else select(LogEntry.idx)
        if party is not None:
            stmt = stmt.where(party)
        for name in _DRIVERS:
            value = _driver_value(q, name)
            if value:
                column: Any = LogEntry.__table__.c[name]
                if driver is not None and name != driver and sqlite:
                    column = literal_column(f"+log_entries.{name}", String())
                stmt = stmt.where(column == value)
        if q.mode is not None:
            stmt = stmt.where(LogEntry.mode == q.mode.value)
        narrow = party is not None or _narrow(q)
        if q.kind is not None:
            # Beside a column filter the kind only sifts: ``kind || ''`` keeps the planner off the kind
            # indexes, which would walk every refusal in the log to find one party's (a 10M-event
            # log: p95 469 ms for "provider + kind=denied", 21 ms when the provider's index drives).
            kind = LogEntry.kind + "" if narrow else LogEntry.kind
            stmt = stmt.where(kind == q.kind.value)
        if window is not None:
            stmt = stmt.where(LogEntry.idx >= window[0], LogEntry.idx < window[1])
        # A window alone (or with the kind or mode) is read by log index, newest first, within its
        # blocks: on SQLite ``+time`` keeps the planner off the time indexes, which would read every
        # entry of the window and sort their indices (one day of a 10M-event log: ~27,000).
        time = LogEntry.time
        if window is not None and sqlite:
            time = literal_column("+log_entries.time", DateTime(timezone=True))  # type: ignore[assignment]
        if q.since is not None:
            stmt = stmt.where(time >= q.since)
        if q.until is not None:
            stmt = stmt.where(time < q.until)
        if subject is not None and subject.tail is not None:
            stmt = stmt.where(LogEntry.idx.in_(subject.tail))
        elif subject is not None:
            stmt = stmt.join(LogSubject, LogSubject.idx == LogEntry.idx).where(
                LogSubject.subject_hash == subject.hash, LogEntry.idx < subject.cursor
            )
        if q.before is not None:
            stmt = stmt.where(LogEntry.idx < q.before)
        if by_time:
            return stmt.order_by(LogEntry.time.desc()).limit(limit)
        return stmt.order_by(LogEntry.idx.desc()).limit(limit)

    def _page(
        self, session: Session, q: TrailQuery, limit: int, *, used: list[_AnySelect] | None = None
    ) -> Sequence[Row[int, bytes]]:
        """The page's ``(idx, entry)`` rows, newest first, by the cheapest exact plan:

        - a time window without a column filter: read newest first by log index inside the window's
          blocks (the read starts at most one block past the window's end);
        - a window beside a resource, accessor or provider filter: that column's
          ``(column, time, …)`` index walked newest first *in time* until the page is full, then
          shown exact (:meth:`_walk_in_time`);
        - anything else, or when the walk cannot show it: each filter's own index (a window through
          the ``(column, time, …)`` index and a sort of all the matches' log indices).

        Why the walk: the hottest accessor of a 10M-event log (23 % of it) has ~190,000 entries in
        30 days; finding its newest page through a sort of all of them took p95 210 ms warm and
        seconds cold, the walk stops after the page. ``used`` collects the statements run (the
        bench explains the last one)."""
        used = [] if used is None else used
        tail = self._tail(session, q)
        blocks = self._blocks(session, q)
        if blocks is not None and not _narrow(q):
            used.append(self._statement(q, limit, blocks, tail))
            return session.execute(used[-1]).all()
        if blocks is not None and limit <= MAX_PAGE + 1:  # (an export's page is read by the sort plan)
            rows = self._walk_in_time(session, q, limit, used)
            if rows is not None:
                return rows
        used.append(self._statement(q, limit, None, tail))
        return session.execute(used[-1]).all()

    def _walk_in_time(
        self, session: Session, q: TrailQuery, limit: int, used: list[_AnySelect]
    ) -> Sequence[Row[int, bytes]] | None:
        """The newest ``limit`` matches of a windowed query on a resource, accessor or provider, or
        None when this plan does not apply or cannot show its page exact.

        The driving column's ``(column, time, …)`` index is read backwards from the window's end,
        ``limit`` matches at most (``found``, times ≥ ``T``, the last one's); the page is their
        ``limit`` largest log indices, down to ``m``. Every match newer in time than ``T`` is in
        ``found``, so the page is exact unless some match *after* ``m`` in the log is dated ``T`` or
        earlier — an event recorded late, or a tie at ``T``. That is looked for only where it can
        be: from ``m`` to the last time block starting at or before ``T`` (usually the rest of
        ``m``'s own block), through the driving column's ``(column, idx)`` index; if one exists
        the caller takes the sort plan."""
        driver = None if q.party or q.subject else next((n for n in _WINDOWED if _driver_value(q, n)), None)
        if driver is None:
            return None
        walk = self._indices(q, None, limit, None, None, driver, by_time=True)
        used.append(walk)
        found = session.execute(walk).all()
        page = sorted((int(i) for i, _ in found), reverse=True)[:limit]
        if len(found) == limit:
            last_time, low = found[-1][1], page[-1]
            bits = log_store.TIME_BLOCK_BITS
            reach = session.scalar(
                select(func.max(LogTimeBlock.block)).where(
                    LogTimeBlock.block >= low >> bits, LogTimeBlock.min_time <= last_time
                )
            )
            if reach is not None:
                end = (int(reach) + 1) << bits
                if q.before is not None:
                    end = min(end, q.before)
                older = replace(q, until=last_time + timedelta(microseconds=1), before=None)
                late = self._indices(older, None, 1, (low + 1, end), None, driver)
                if session.execute(late).first() is not None:
                    return None
        return session.execute(
            select(LogEntry.idx, LogEntry.entry).where(LogEntry.idx.in_(page)).order_by(LogEntry.idx.desc())
        ).all()

    def _tail(self, session: Session, q: TrailQuery) -> SubjectTail | None:
        return subject_tail(session, self._subject(q.subject)) if q.subject else None

    def _subject(self, value: str) -> bytes:
        if value.startswith("0x") and len(value) == 66:
            try:
                return bytes.fromhex(value[2:])
            except ValueError:
                pass
        return bytes.fromhex(self.hash_subject(value)[2:])

    def query(self, caller: Party, q: TrailQuery) -> dict[str, Any]:
        _check(caller)
        if not 1 <= q.limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be 1-{MAX_PAGE}", code="invalid_limit")
        if q.since and q.until and q.since >= q.until:
            raise InvalidInput("since must be before until", code="invalid_time_range")
        with self.store.read() as session:
            rows = self._page(session, q, q.limit + 1)
            page = [(int(idx), json.loads(entry)) for idx, entry in rows[: q.limit]]
            names = display_names(session, page)
        items = [_row(idx, e, names) for idx, e in page]
        more = len(rows) > q.limit
        return {"items": items, "next_before": items[-1]["index"] if more and items else None}

    def export_csv(self, caller: Party, q: TrailQuery) -> str:
        """The same rows as CSV (UTF-8 with BOM so spreadsheet programs read the Chinese names),
        each cell safe to open in one (:func:`ledger.spreadsheet.safe_cell`: OWASP CSV injection)."""
        _check(caller)
        if not 1 <= q.limit <= MAX_EXPORT:
            raise InvalidInput(f"an export holds 1-{MAX_EXPORT} rows", code="invalid_limit")
        with self.store.read() as session:
            rows = self._page(session, q, q.limit)
            page = [(int(idx), json.loads(entry)) for idx, entry in rows]
            names = display_names(session, page)
        out = io.StringIO()
        out.write("\ufeff")
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for idx, e in page:
            row = _row(idx, e, names)
            # every text cell neutralised: names, reasons, ids and purposes come from parties and
            # exchange platforms, and a spreadsheet would run one that starts like a formula
            writer.writerow(
                safe_row(
                    {
                        **row,
                        "accessor": row["accessor"]["id"],
                        "accessor_name": row["accessor"]["name"],
                        "provider": row["provider"]["id"],
                        "provider_name": row["provider"]["name"],
                        "resource": row["resource"]["id"],
                        "resource_name": row["resource"]["name"],
                        "fields": " ".join(row["fields"]),
                    }
                )
            )
        return out.getvalue()


_AnySelect = Select[*tuple[Any, ...]]
_DRIVERS = ("grant_ref", "resource", "accessor", "provider", "purpose")  # trail columns
# Columns with a (column, time, …) index, the most selective on a city's log first.
_WINDOWED = ("resource", "accessor", "provider")


def _driver_value(q: TrailQuery, name: str) -> str | None:
    if name == "grant_ref":
        return q.grant.lower() if q.grant and q.grant.startswith("0x") else q.grant
    value: str | None = getattr(q, name)
    return value


def _narrow(q: TrailQuery) -> bool:
    """A column filter: the query's page is found through that column's index."""
    return any((q.party, q.accessor, q.provider, q.resource, q.purpose, q.grant, q.subject))


def display_names(session: Any, entries: Sequence[tuple[int, dict[str, Any]]]) -> dict[str, str]:
    """Names of the parties and resources that log entries mention, in two queries."""
    parties = {e.get("accessor") for _, e in entries} | {e.get("provider") for _, e in entries}
    resources = {e.get("resource") for _, e in entries}
    names: dict[str, str] = dict(
        session.execute(select(Party.id, Party.name).where(Party.id.in_(parties))).all()
    )
    names.update(session.execute(select(Resource.id, Resource.name).where(Resource.id.in_(resources))).all())
    return names


def _check(caller: Party) -> None:
    if caller.kind not in AUDITORS:
        raise Forbidden("the trail is for the regulator and the registrar", code="forbidden_role")


def _row(idx: int, e: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    def named(key: str) -> dict[str, Any]:
        value = e.get(key)
        return {"id": value, "name": names.get(value) if isinstance(value, str) else None}

    return {
        "index": idx,
        "time": e.get("time"),
        "kind": e.get("kind"),
        "accessor": named("accessor"),
        "provider": named("provider"),
        "resource": named("resource"),
        "purpose": e.get("purpose"),
        "grant": e.get("grant"),
        "contract": e.get("contract"),
        "mode": e.get("mode"),
        "fields": e.get("fields") or [],
        "record_count": e.get("record_count"),
        "reason": e.get("reason"),
        "result_hash": e.get("result_hash"),
        "bundle": f"/v1/proofs/access/{idx}",
    }
