"""The data-subject index (``log_subjects``), filled from the log by a cursor, off the append path.

An access event carries the keyed hashes of its data subjects' ID numbers inline (``"subjects"``,
up to ``INLINE_SUBJECTS`` of them). The tracker (谁看了我的数据) and the regulator's subject filter
look them up through ``log_subjects``: a B-tree keyed by ``(subject hash, log index)``. Written by
the append, its 1,000 rows for one 1,000-person access land on ~1,000 different pages, and the
commit writes every one of them — most of a gateway access's cost, and growing with the index
(docs/benchmarks.md, the gateway section). So the rows are written here instead, in large sorted
batches, by :class:`SubjectIndexer`:

**Maintained exactly once, from a cursor.** ``log_subject_cursor.next_index`` says every entry below
it has its inline subjects in ``log_subjects``. A pass takes the next chunk of entries, reads the
subjects each one carries (the database hands over only the entries that name one), inserts the
rows sorted, and moves the cursor — in one transaction that first locks the cursor row, so a crash
leaves rows and cursor unchanged, and two workers (a lost leader lock) cannot both add a chunk.
An access with more subjects than its entry carries (only a digest inline) is the exception: the
append writes its rows itself, because the log cannot give them back.

**Read exactly.** :func:`subject_tail` completes the index for a reader: the entries at or past the
cursor whose bytes mention the subject (a byte search over the live tail, then the same parse the
indexer does) and the append's own rows there. Readers take the index below the cursor and the tail
above it (the trail and the tracker merge the two by log index). Entries are immutable and rows
below the cursor commit with it, so the union is exact whatever the indexer does meanwhile, under
PostgreSQL's READ COMMITTED as well. If the indexer has fallen more than ``TAIL_LIMIT`` entries
behind (a bulk import, the indexer stopped), a subject read answers 503 ``subject_index_behind``
with a retry hint rather than scan an unbounded tail.

The loop runs in ``serve`` (one leader among the workers: ``<data dir>/subjects.lock`` or a
PostgreSQL advisory lock) and is woken by every append; ``sharetrail simulate`` and the benchmarks
call :meth:`SubjectIndexer.catch_up`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, LargeBinary, func, literal, or_, select
from sqlalchemy.orm import Session

from ledger.errors import StoreError
from ledger.log.leader import CursorLoop, cursor_at, log_size
from ledger.log.store import insert_subjects
from ledger.store.db import Store
from ledger.store.models import LogEntry, LogSubject, SubjectIndexCursor

log = logging.getLogger("sharetrail.subjects")

CURSOR_ID = 1
SUBJECT_LOCK_KEY = int.from_bytes(b"st-subjx", "big", signed=True)
TAIL_LIMIT = 20_000  # entries past the cursor a subject read scans; beyond it: 503, retry
BATCH_ENTRIES = 20_000  # entries per indexer transaction, at most
BATCH_ROWS = 200_000  # subject rows per indexer transaction, about (a chunk ends at the entry past it)
_SUBJECT = re.compile(r"0x[0-9a-f]{64}")
_SUBJECTS = re.compile(r"(?:0x[0-9a-f]{64})+")
_MARK = b'"subjects":'
# What every entry with a subject to index contains: a stored entry is RFC 8785 canonical JSON (no
# whitespace, lower-case hex kept as written), so each well-formed subject of its list is written
# '"0x…"' right after the list's '[' or a ','. Most entries name no subject (``"subjects":[]``, or
# hashes only as values of keys, after a ':'); the indexer has the database skip them (a city's 30M
# entries read by SQLAlchemy at ~100k rows/s, or skipped by SQLite's ``instr`` at the speed of the
# table scan).
_LIST_HASHES = (b'["0x', b',"0x')


def subjects_of(event: Mapping[str, Any]) -> set[str]:
    """The keyed subject hashes an event carries inline: the well-formed strings of its
    ``subjects`` list (``0x`` + 64 lower-case hex digits); anything else there is not indexed."""
    subjects = event.get("subjects")
    if not isinstance(subjects, list):
        return set()
    if (
        set(map(type, subjects)) == {str}
        and set(map(len, subjects)) == {66}
        and _SUBJECTS.fullmatch("".join(subjects))
    ):  # all well-formed (a gateway's 1,000): one regex pass over them, not 1,000
        return set(subjects)
    return {s for s in subjects if isinstance(s, str) and _SUBJECT.fullmatch(s)}


def _mentions(session: Session, *needles: bytes) -> ColumnElement[bool]:
    """The entry's bytes contain one of ``needles`` — tested by the database, so the rows that do
    not are never sent to Python."""
    postgres = session.get_bind().dialect.name == "postgresql"
    tests = []
    for needle in needles:
        value = literal(needle, LargeBinary)
        if postgres:
            tests.append(func.position(value.op("IN")(LogEntry.entry)) > 0)
        else:
            tests.append(func.instr(LogEntry.entry, value) > 0)
    return or_(*tests)


def entry_subjects(entry: bytes) -> set[str]:
    """:func:`subjects_of` a stored entry's canonical bytes (most entries name no subject: a byte
    search spares them the JSON parse)."""
    if _MARK not in entry:
        return set()
    try:
        event = json.loads(entry)
    except ValueError:
        return set()
    return subjects_of(event) if isinstance(event, dict) else set()


def index_cursor(session: Session) -> int:
    """Every entry below this index has its inline subjects in ``log_subjects``."""
    return cursor_at(session, SubjectIndexCursor, CURSOR_ID) or 0


@dataclass(frozen=True)
class SubjectTail:
    """What the index does not hold yet about one subject: ``cursor`` (entries below it are in the
    index) and ``indices``, the entries at or past it about the subject, ascending."""

    cursor: int
    indices: list[int]


def subject_tail(session: Session, subject: bytes) -> SubjectTail:
    """The entries at or past the cursor about ``subject`` (see the module doc): with the index
    below the cursor, every entry about the subject."""
    cursor = index_cursor(session)
    behind = log_size(session) - cursor
    if behind > TAIL_LIMIT:
        raise StoreError(
            f"the data-subject index is catching up with the log ({behind:,} "
            f"{'entry' if behind == 1 else 'entries'} behind); retry shortly",
            code="subject_index_behind",
            retry_after=5,
        )
    hashed = "0x" + subject.hex()
    found = set(
        session.scalars(
            select(LogSubject.idx).where(LogSubject.subject_hash == subject, LogSubject.idx >= cursor)
        )
    )
    if behind > 0:
        mentions = _mentions(session, b'"' + hashed.encode() + b'"')
        rows = session.execute(select(LogEntry.idx, LogEntry.entry).where(LogEntry.idx >= cursor, mentions))
        found.update(int(idx) for idx, entry in rows if hashed in entry_subjects(bytes(entry)))
    return SubjectTail(cursor, sorted(found))


@dataclass(frozen=True)
class IndexPolicy:
    interval: float = 2.0  # seconds between passes (SHARETRAIL_SUBJECT_INDEX_INTERVAL)
    max_backoff: float = 60.0
    batch: int = BATCH_ENTRIES


class SubjectIndexer(CursorLoop):
    """Keeps ``log_subjects`` up with the log: :meth:`process` one chunk, :meth:`catch_up` all, or
    :meth:`start` the loop (one leader among the workers)."""

    thread_name = "sharetrail-subjects"
    what = "subject indexer"
    lock_key = SUBJECT_LOCK_KEY
    lock_file = "subjects.lock"
    cursor_model = SubjectIndexCursor
    cursor_id = CURSOR_ID

    def __init__(self, *, store: Store, policy: IndexPolicy | None = None) -> None:
        self.policy = policy or IndexPolicy()
        super().__init__(store=store, policy=self.policy, logger=log)

    def apply(self, session: Session, start: int, end: int) -> int:
        """Index the subjects of entries ``[start, end)``, ending the chunk early once it holds
        ``BATCH_ROWS`` rows."""
        rows: list[tuple[bytes, int]] = []
        entries = session.execute(
            select(LogEntry.idx, LogEntry.entry)
            .where(LogEntry.idx >= start, LogEntry.idx < end, _mentions(session, *_LIST_HASHES))
            .order_by(LogEntry.idx)
        )
        for idx, entry in entries:
            for subject in entry_subjects(bytes(entry)):
                rows.append((bytes.fromhex(subject[2:]), int(idx)))
            if len(rows) >= BATCH_ROWS:
                end = int(idx) + 1
                break
        entries.close()
        if rows:  # a row the append wrote (a large access) stays as it is
            insert_subjects(session.connection(), rows, skip_existing=True)
        return end

    def restart(self, session: Session) -> None:
        """Nothing to undo: the log is read again from the first entry, and rows already in the
        index stay as they are (``_insert`` skips them)."""
