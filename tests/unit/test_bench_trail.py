"""Smoke test of the trail benchmark's quick mode: every filter runs on a real log and reports; the
benchmark's leaves are exactly the gateway's."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from ledger.bench.trail import (
    CASES,
    OPERATOR_ID,
    City,
    TrailSizes,
    _abridge,
    bulk_append,
    render,
    run_trail_bench,
)
from ledger.log.events import AccessEvent, EventKind
from ledger.log.store import LogStore
from ledger.log.subject_index import SubjectIndexer
from ledger.store.db import Store


@pytest.mark.timeout(120)
def test_quick_run_reports_every_filter(tmp_path: Path) -> None:
    db = tmp_path / "trail.sqlite"
    result = run_trail_bench(TrailSizes.quick(), db=db)
    assert result.events == 5000 and result.build_seconds is not None and result.build_seconds > 0
    assert [r.case for r in result.rows] == [c.name for c in CASES]
    for row in result.rows:
        assert row.n > 0 and 0 < row.p50 <= row.p95 <= row.p99 <= row.max, row
        assert row.naive and row.plan and row.plan != "?", row
    accessor = result.row("accessor").plan.split(" + ")
    assert "accessor_idx" in accessor and "sort" not in accessor, accessor  # (accessor, idx): no sort
    assert render(result).row_count == len(result.rows) + len(result.extras)
    again = run_trail_bench(TrailSizes.quick(), db=db)  # the kept log is reused, not rebuilt
    assert again.build_seconds is None and len(again.rows) == len(result.rows)
    with pytest.raises(RuntimeError, match="holds 5,000 events"):
        run_trail_bench(TrailSizes(events=6000, samples=1), db=db)


def test_leaves_are_the_gateways() -> None:
    """The benchmark builds each leaf as a dict; it must equal what ``AccessEvent.leaf`` makes."""
    town = City(TrailSizes.quick(), datetime.now(UTC))
    drafts = list(town.drafts())
    rng = random.Random(1)
    checked = {"denied": 0, "grant": 0, "subjects": 0}
    for draft in rng.sample(drafts, 300):
        entry = town.entry(draft)
        body = dict(entry.body())
        event = AccessEvent(
            event_id=body["event_id"],
            kind=EventKind(body["kind"]),
            accessor=body["accessor"],
            provider=body["provider"],
            resource=body["resource"],
            grant=body.get("grant"),
            purpose=body["purpose"],
            fields=body["fields"],
            mode=body["mode"],
            record_count=body["record_count"],
            query_hash=body["query_hash"],
            result_hash=body.get("result_hash"),
            subjects=body["subjects"],
            time=draft.time,
            gateway=body["gateway"],
            reason=body.get("reason"),
            level=body["level"],
        )
        assert event.leaf(recorded_by=OPERATOR_ID) == body
        checked["denied"] += body["kind"] == "denied"
        checked["grant"] += "grant" in body
        checked["subjects"] += bool(body["subjects"])
    assert all(checked.values()), checked  # each optional part of a leaf was compared at least once


def test_plan_abridged() -> None:
    assert _abridge(["SEARCH log_entries USING INDEX ix_log_entries_accessor (accessor=?)"]) == "accessor"
    assert (
        _abridge(
            [
                "SEARCH log_entries USING INDEX ix_log_entries_time (time>? AND time<?)",
                "USE TEMP B-TREE FOR ORDER BY",
            ]
        )
        == "time + sort"
    )
    assert _abridge(["SCAN log_entries"]) == "scan"
    assert (
        _abridge(
            [
                "MULTI-INDEX OR",
                "INDEX 1",
                "SEARCH log_entries USING INDEX ix_log_entries_accessor (accessor=?)",
            ]
        )
        == "accessor"
    )
    assert _abridge(["Limit", "->  Index Scan Backward using log_entries_pkey on log_entries"]) == "pk"
    assert (
        _abridge(["Limit", "  ->  Sort", "    ->  Bitmap Index Scan on ix_log_entries_purpose"])
        == "sort + purpose"
    )


def test_bulk_path_writes_what_append_writes(tmp_path: Path) -> None:
    """The benchmark's bulk path must yield exactly ``LogStore.append``'s rows and tree."""
    town = City(TrailSizes.quick(), datetime.now(UTC))
    entries = [town.entry(d) for d in town.drafts()][:3001]
    stores = {name: Store(f"sqlite:///{tmp_path / name}.sqlite") for name in ("append", "bulk")}
    try:
        for store in stores.values():
            store.migrate()
        log = LogStore(stores["append"])
        for start, end in ((0, 1), (1, 1000), (1000, 3001)):  # uneven batches: the frontier carries over
            log.append(entries[start:end])
            bulk_append(stores["bulk"], entries[start:end])
        for store in stores.values():
            assert SubjectIndexer(store=store).catch_up() == 3001
        queries = (
            "SELECT * FROM log_entries ORDER BY idx",
            "SELECT * FROM log_subjects ORDER BY idx, subject_hash",
            "SELECT * FROM log_nodes ORDER BY id",
            "SELECT * FROM log_head",
        )
        for sql in queries:
            with stores["append"].read() as a, stores["bulk"].read() as b:
                want, got = a.execute(text(sql)).all(), b.execute(text(sql)).all()
            assert want == got and want, sql
        assert LogStore(stores["bulk"]).root(3001) == log.root(3001)
    finally:
        for store in stores.values():
            store.close()
