"""The alert monitor passes over log entries its rules cannot read, and says so once per batch:
how many, and the first indices (a line per entry flooded a server's log)."""

from __future__ import annotations

import json
import logging

import pytest

from ledger.audit.monitor import _parse


def test_unreadable_entries_are_passed_over_in_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    good = json.dumps({"kind": "access", "time": "2026-12-07T08:00:00Z", "accessor": "d1"}).encode()
    rows = [(i, b'{"kind": "access", "n": %d}' % i) for i in range(100, 125)]
    rows.insert(3, (7, good))
    with caplog.at_level(logging.WARNING, logger="sharetrail"):
        events = _parse(rows)
    assert [e.index for e in events] == [7] and events[0].accessor == "d1"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "alerts: 25 log entries are not events the rules can read "
        "(100, 101, 102, 103, 104, 105, 106, 107, 108, 109, …); passed over"
    ]


def test_a_batch_the_rules_can_read_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    good = json.dumps({"kind": "access", "time": "2026-12-07T08:00:00+08:00"}).encode()
    with caplog.at_level(logging.WARNING):
        assert len(_parse([(0, good), (1, good)])) == 2
    assert not caplog.records


def test_a_few_unreadable_entries_are_all_named(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert _parse([(5, b"[]"), (9, b"not json")]) == []
    assert [r.getMessage() for r in caplog.records] == [
        "alerts: 2 log entries are not events the rules can read (5, 9); passed over"
    ]
