"""The data-subject index off the append path (``ledger.log.subject_index``, migration 0017): the
indexer fills ``log_subjects`` from the log exactly once, readers see every entry about a subject
whether it is indexed yet or not, a reader refuses an unbounded tail with the exact error, and the
migration starts the cursor at the log's size and gives the rows back on the way down — on SQLite
and PostgreSQL."""

from __future__ import annotations

import hashlib
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, text

from api.app import create_app
from ledger.audit.trail import TrailQuery, TrailService
from ledger.errors import StoreError
from ledger.gateway.subjects import SubjectService
from ledger.log import subject_index
from ledger.log.service import LogService
from ledger.log.store import LogStore, NewEntry
from ledger.log.subject_index import SubjectIndexer, entry_subjects, index_cursor, subjects_of
from ledger.settings import Settings
from ledger.store.db import Store, make_engine
from ledger.store.models import LogSubject, Party, SubjectIndexCursor
from ledger.types import PartyKind
from tests.support.migrations import alembic_to

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
REGULATOR = Party(id="regulator", kind=PartyKind.REGULATOR, name="监管")
PEOPLE = ["0x" + hashlib.sha256(f"person-{n}".encode()).hexdigest() for n in range(6)]


def test_subjects_an_event_carries() -> None:
    a, b = PEOPLE[:2]
    assert subjects_of({"subjects": [b, a, a]}) == {a, b}
    # only the well-formed strings are indexed; anything else in the list is not
    mixed = [a, a.upper(), a + "\n", a[:-1], 7, None, {"x": b}, "0x" + "g" * 64]
    assert subjects_of({"subjects": mixed}) == {a}
    assert subjects_of({"subjects": a}) == set()
    assert subjects_of({"subject": [a]}) == set()
    assert entry_subjects(b'{"kind":"access","subjects":["' + a.encode() + b'"]}') == {a}
    assert entry_subjects(b'{"kind":"access","note":"' + a.encode() + b'"}') == set()  # named, not a subject
    assert entry_subjects(b'{"subjects":[') == set()  # not JSON: nothing
    assert entry_subjects(b'["subjects":]') == set()


def _entry(n: int, rng: random.Random) -> NewEntry:
    accessor = f"dept-{rng.randrange(2)}"
    event: dict[str, Any] = {
        "kind": "access",
        "accessor": accessor,
        "provider": "provider-1",
        "resource": "res-1",
        "purpose": "P01",
        "mode": "raw",
        "time": (T0 + timedelta(minutes=n)).isoformat(),
    }
    shape = rng.random()
    if shape < 0.6:
        event["subjects"] = sorted(set(rng.sample(PEOPLE, rng.randrange(1, 4))))
    elif shape < 0.7:  # a subject's hash elsewhere in the entry only: not about that person
        event["note"] = rng.choice(PEOPLE)
    elif 0.75 <= shape < 0.8:  # the list, empty: the database skips the entry
        event["subjects"] = []
    elif 0.8 <= shape < 0.85:  # nothing well-formed in the list: skipped, nothing indexed
        event["subjects"] = [rng.choice(PEOPLE).upper()]
    elif 0.85 <= shape < 0.9:  # a well-formed subject after other items: indexed (subjects_of)
        event["subjects"] = [7, rng.choice(PEOPLE).upper(), rng.choice(PEOPLE)]
    elif 0.9 <= shape < 0.95:  # a subject list nested deeper: handed over, not about that person
        event["meta"] = {"subjects": [rng.choice(PEOPLE)]}
    big = None
    if 0.7 <= shape < 0.75:  # a large access: only a digest inline, the append indexes its rows
        big = tuple(sorted(set(rng.sample(PEOPLE, 2))))
        event["subjects_digest"] = "0x" + hashlib.sha256("".join(big).encode()).hexdigest()
    return NewEntry(
        f"e-{n}",
        "access",
        T0 + timedelta(minutes=n),
        event,
        accessor=accessor,
        resource="res-1",
        subjects=big,
    )


def _expected(entries: list[NewEntry]) -> dict[str, list[int]]:
    about: dict[str, list[int]] = {p: [] for p in PEOPLE}
    for idx, e in enumerate(entries):
        for person in set(e.subjects or ()) | subjects_of(e.body()):
            about[person].append(idx)
    return about


def _trail(trail: TrailService, person: str, **extra: Any) -> list[int]:
    got: list[int] = []
    before = None
    while True:
        page = trail.query(REGULATOR, TrailQuery(subject=person, limit=3, before=before, **extra))
        got += [item["index"] for item in page["items"]]
        if (before := page["next_before"]) is None:
            return got


def _tracker(tracker: SubjectService, person: str) -> list[int]:
    got: list[int] = []
    after = -1
    while True:
        page = tracker.accesses(bytes.fromhex(person[2:]), after=after, limit=3)
        got += [item["index"] for item in page["accesses"]]
        if (after := page["next_after"]) is None:
            return got


def test_readers_see_every_access_indexed_or_not(db_url: str) -> None:
    rng = random.Random(17)
    store = Store(db_url)
    store.migrate()
    log = LogStore(store)
    entries = [_entry(n, rng) for n in range(60)]
    for start in range(0, 60, 7):
        log.append(entries[start : start + 7])
    about = _expected(entries)
    accessor = {n: e.accessor for n, e in enumerate(entries)}
    trail = TrailService(store=store, hash_subject=lambda s: s)
    tracker = SubjectService(store=store, log=cast(LogService, None), subject_key=b"k")
    indexer = SubjectIndexer(store=store)
    for stage in ("nothing indexed", "partly indexed", "all indexed"):
        for person, indices in about.items():
            assert _trail(trail, person) == indices[::-1], (stage, person)
            assert _tracker(tracker, person) == indices, (stage, person)
            mine = [i for i in indices if accessor[i] == "dept-1"]
            assert _trail(trail, person, accessor="dept-1") == mine[::-1], (stage, person)
            assert _trail(trail, person, party="dept-0") == [i for i in indices if i not in mine][::-1]
        if stage == "nothing indexed":
            assert indexer.process(batch=23) == 23
            assert indexer.status() == (23, 60)
        elif stage == "partly indexed":
            assert indexer.catch_up(batch=10) == 60 - 23
    assert indexer.process() == 0
    with store.read() as session:
        rows = {
            (bytes(h), int(i)) for h, i in session.execute(select(LogSubject.subject_hash, LogSubject.idx))
        }
    assert rows == {(bytes.fromhex(p[2:]), i) for p, indices in about.items() for i in indices}
    store.close()


def test_indexer_adds_each_row_once(db_url: str) -> None:
    """A lost cursor row makes the indexer read the log again; rows already there (its own, and the
    append's for a large access) stay single."""
    rng = random.Random(5)
    store = Store(db_url)
    store.migrate()
    entries = [_entry(n, rng) for n in range(40)]
    LogStore(store).append(entries)
    indexer = SubjectIndexer(store=store)
    assert indexer.catch_up() == 40
    with store.session() as session:
        session.execute(delete(SubjectIndexCursor))
    assert indexer.catch_up() == 40
    with store.read() as session:
        assert index_cursor(session) == 40
        count = session.scalar(select(func.count()).select_from(LogSubject))
    assert count == sum(len(v) for v in _expected(entries).values())
    store.close()


def test_a_tail_too_long_to_scan_is_refused(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subject_index, "TAIL_LIMIT", 5)
    rng = random.Random(9)
    store = Store(db_url)
    store.migrate()
    LogStore(store).append([_entry(n, rng) for n in range(8)])
    trail = TrailService(store=store, hash_subject=lambda s: s)
    with pytest.raises(StoreError) as refused:
        trail.query(REGULATOR, TrailQuery(subject=PEOPLE[0]))
    assert refused.value.code == "subject_index_behind"
    assert refused.value.message == (
        "the data-subject index is catching up with the log (8 entries behind); retry shortly"
    )
    assert refused.value.details == {"retry_after": 5}
    assert trail.query(REGULATOR, TrailQuery(accessor="dept-0"))["items"]  # other filters answer
    SubjectIndexer(store=store).process(batch=3)  # 5 behind: scanned
    trail.query(REGULATOR, TrailQuery(subject=PEOPLE[0]))
    store.close()


def test_the_api_answers_503_with_a_retry_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subject_index, "TAIL_LIMIT", 0)
    settings = Settings(
        data_dir=tmp_path, bootstrap_token="st_subject-index", anchor_loop=False, subject_indexer=False
    )
    with TestClient(create_app(settings)) as client:
        ledger = client.app.state.ledger  # type: ignore[attr-defined]
        rng = random.Random(3)
        ledger.log.log.append([_entry(0, rng)])
        registrar = {"Authorization": "Bearer st_subject-index"}
        answer = client.get("/v1/audit/trail", params={"subject": PEOPLE[1]}, headers=registrar)
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "5"
        assert answer.json()["error"]["code"] == "subject_index_behind"
        assert answer.json()["error"]["message"] == (
            "the data-subject index is catching up with the log (1 entry behind); retry shortly"
        )
        ledger.subject_indexer.catch_up()
        answer = client.get("/v1/audit/trail", params={"subject": PEOPLE[1]}, headers=registrar)
        assert answer.status_code == 200


def test_0017_starts_at_the_log_size_and_gives_rows_back_going_down(db_url: str) -> None:
    engine = make_engine(db_url)
    url = engine.url.render_as_string(hide_password=False)
    rng = random.Random(11)
    entries = [replace(_entry(n, rng), subjects=None) for n in range(30)]
    try:
        alembic_to(engine, "0016")
        with engine.begin() as conn:  # what the old append left: a log of 12 and their rows
            conn.execute(text("UPDATE log_head SET size = 12 WHERE id = 1"))
        old = _expected(entries[:12])
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO log_subjects (subject_hash, idx) VALUES (:h, :i)"),
                [{"h": bytes.fromhex(p[2:]), "i": i} for p, indices in old.items() for i in indices],
            )
        alembic_to(engine, "0017")
        store = Store(url)
        with store.read() as session:
            assert index_cursor(session) == 12
        store.close()
        # Entries past the cursor, not indexed yet: the way down indexes them for the old code.
        with engine.begin() as conn:  # back to the empty log the head's frontier still describes
            conn.execute(text("UPDATE log_head SET size = 0 WHERE id = 1"))
        store = Store(url)
        LogStore(store).append(entries)
        store.close()
        with engine.begin() as conn:  # the first 12 stand for the old log; their rows are there
            conn.execute(text("UPDATE log_subject_cursor SET next_index = 12"))
        alembic_to(engine, "0016", down=True)
        with engine.connect() as conn:
            rows = {
                (bytes(h), int(i))
                for h, i in conn.execute(text("SELECT subject_hash, idx FROM log_subjects"))
            }
        want = _expected(entries)
        assert rows == {(bytes.fromhex(p[2:]), i) for p, indices in want.items() for i in indices}
    finally:
        engine.dispose()
