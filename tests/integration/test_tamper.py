"""Tampering with the database directly is caught by `verify`, which names the exact log index.

The attacker here is privileged: it edits the SQLite file (or PostgreSQL) directly and drops or
bypasses the append-only triggers first. The chain's anchored roots are the only trust anchor.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from ledger.log.layout import leaf_key_range
from ledger.log.store import NewEntry, node_key
from ledger.log.verify import ProblemKind, Report, verify
from ledger.runtime import Ledger
from ledger.settings import Settings

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
TRIGGERS = [f"{t}_no_{a}" for t in ("log_entries", "log_nodes", "checkpoints") for a in ("update", "delete")]


def _append(ledger: Ledger, start: int, end: int) -> None:
    ledger.log.log.append(
        [
            NewEntry(
                event_id=f"ev{i}",
                kind="access",
                time=NOW,
                event={"n": i, "purpose": "social_assistance", "accessor": f"dept{i % 3}"},
            )
            for i in range(start, end)
        ]
    )


@pytest.fixture
def built(settings: Settings) -> Iterator[Settings]:
    """40 entries, anchored at sizes 20 and 40."""
    with Ledger.open(settings) as ledger:
        _append(ledger, 0, 20)
        assert ledger.anchorer.anchor_once() is not None
        _append(ledger, 20, 40)
        assert ledger.anchorer.anchor_once() is not None
    yield settings


def _sqlite_path(settings: Settings) -> Path | None:
    url = settings.database_url
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite") else None


def tamper(settings: Settings, *statements: tuple[str, dict[str, Any]]) -> None:
    path = _sqlite_path(settings)
    if path is not None:
        conn = sqlite3.connect(path)  # the file itself, not through sharetrail
        for trigger in TRIGGERS:
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        for sql, params in statements:
            conn.execute(sql, params)
        conn.commit()
        conn.close()
        return
    engine = create_engine(settings.database_url)
    with engine.begin() as pg:
        pg.execute(text("SET session_replication_role = replica"))  # bypasses the triggers
        for sql, params in statements:
            pg.execute(text(sql), params)
    engine.dispose()


def entry_of(settings: Settings, index: int) -> bytes:
    with Ledger.open(settings) as ledger:
        return ledger.log.log.entry(index).entry


def run_verify(settings: Settings) -> Report:
    """The audit in one process, and again with its row pass in a second process (what a log of
    ``PARALLEL_MIN`` entries or more gets): the same report, problem for problem."""
    with Ledger.open(settings) as ledger:
        report = verify(ledger.store, ledger.chain, ledger.contracts["Anchor"], parallel=False)
        apart = verify(ledger.store, ledger.chain, ledger.contracts["Anchor"], parallel=True)
    assert apart == report
    return report


def problems(report: Report) -> list[tuple[str, int | None]]:
    return [(p.kind.value, p.index) for p in report.problems]


def test_intact_log_verifies(built: Settings) -> None:
    report = run_verify(built)
    assert report.intact and report.entries == 40 and report.anchored_size == 40 and report.checkpoints == 2


def test_triggers_refuse_changes_through_the_app_connection(built: Settings) -> None:
    with (
        Ledger.open(built) as ledger,
        pytest.raises(Exception, match="append-only"),
        ledger.store.engine.begin() as conn,
    ):
        conn.execute(text("UPDATE log_entries SET kind = 'x' WHERE idx = 1"))


def test_updated_purpose_is_named(built: Settings) -> None:
    forged = entry_of(built, 5).replace(b"social_assistance", b"law_enforcement")
    tamper(built, ("UPDATE log_entries SET entry = :p WHERE idx = 5", {"p": forged}))
    assert problems(run_verify(built)) == [("altered", 5)]


def test_deleted_row_is_named(built: Settings) -> None:
    tamper(built, ("DELETE FROM log_entries WHERE idx = :p", {"p": 7}))
    assert problems(run_verify(built)) == [("deleted", 7)]


def test_inserted_forged_row_is_named(built: Settings) -> None:
    forged = json.dumps({"n": 40, "purpose": "statistics", "accessor": "dept9"}).encode()
    tamper(
        built,
        (
            "INSERT INTO log_entries (idx, event_id, kind, accessor, resource, time, request_hash, entry) "
            "VALUES (40, 'forged', 'access', NULL, NULL, '2026-11-20 08:00:00', :p, :e)",
            {"p": b"\x00" * 32, "e": forged},
        ),
    )
    assert problems(run_verify(built)) == [("inserted", 40)]


def test_swapped_rows_are_named(built: Settings) -> None:
    three, four = entry_of(built, 3), entry_of(built, 4)
    tamper(
        built,
        ("UPDATE log_entries SET entry = :p WHERE idx = 3", {"p": four}),
        ("UPDATE log_entries SET entry = :p WHERE idx = 4", {"p": three}),
    )
    report = run_verify(built)
    assert problems(report) == [("reordered", 3), ("reordered", 4)]
    assert "index 4" in report.problems[0].detail and "index 3" in report.problems[1].detail


def test_rewritten_tree_is_still_caught(built: Settings) -> None:
    """A privileged user who edits a row *and* recomputes its stored leaf hash."""
    from ledger.log import merkle

    forged = entry_of(built, 12).replace(b"dept0", b"dept7")
    tamper(
        built,
        ("UPDATE log_entries SET entry = :p WHERE idx = 12", {"p": forged}),
        (
            "UPDATE log_nodes SET hash = :p WHERE id = :k",
            {"p": merkle.leaf_hash(forged), "k": node_key((0, 12))},
        ),
    )
    report = run_verify(built)
    assert not report.intact
    kinds = {p.kind for p in report.problems}
    assert ProblemKind.TREE_REWRITTEN in kinds
    ranges = [(p.index, p.end) for p in report.problems if p.end is not None]
    assert all(start is not None and end is not None and start <= 12 < end for start, end in ranges)


def test_restored_older_copy_is_named(settings: Settings, tmp_path: Path) -> None:
    with Ledger.open(settings) as ledger:
        _append(ledger, 0, 20)
        ledger.anchorer.anchor_once()
    path = _sqlite_path(settings)
    backup = tmp_path / "old.sqlite"
    if path is not None:
        src = sqlite3.connect(path)
        dst = sqlite3.connect(backup)
        src.backup(dst)
        src.close()
        dst.close()
    with Ledger.open(settings) as ledger:
        _append(ledger, 20, 40)
        ledger.anchorer.anchor_once()
    if path is not None:
        for suffix in ("-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        shutil.copy(backup, path)
    else:  # PostgreSQL: what an older copy holds is the same rows minus the later ones
        tamper(
            settings,
            ("DELETE FROM log_entries WHERE idx >= :p", {"p": 20}),
            (
                "DELETE FROM log_nodes WHERE id >= :low AND id < :high",
                dict(zip(("low", "high"), leaf_key_range(20, 40), strict=True)),
            ),
            ("DELETE FROM checkpoints WHERE size > :p", {"p": 20}),
            ("UPDATE log_head SET size = :p", {"p": 20}),
        )
    report = run_verify(settings)
    assert [(p.kind.value, p.index, p.end) for p in report.problems] == [("missing", 20, 40)]


def test_cli_verify_exit_codes(built: Settings) -> None:
    env = {**os.environ, "SHARETRAIL_DATA_DIR": str(built.data_dir), "SHARETRAIL_DB_URL": built.database_url}
    cli = [sys.executable, "-m", "api.cli", "verify"]
    ok = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "intact" in ok.stdout
    tamper(built, ("DELETE FROM log_entries WHERE idx = :p", {"p": 11}))
    bad = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert "deleted" in bad.stdout and "index 11" in bad.stdout
