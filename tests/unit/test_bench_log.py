"""Smoke test of the log benchmark's quick mode: every measure runs, on the real things, and reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.bench.log import (
    M_ACK,
    M_ANCHOR,
    M_CMP,
    M_LAT,
    M_VERIFY,
    Sizes,
    _entries,
    render,
    run_log_bench,
)
from ledger.canonical import canonical_json
from ledger.log import _reference as ref
from ledger.log import merkle
from ledger.log.store import LogStore
from ledger.store.db import Store


@pytest.mark.timeout(60)  # a smoke run: it starts a ledger and a uvicorn process
def test_quick_run_reports_every_measure() -> None:
    result = run_log_bench(Sizes.quick(), postgres=False, http_app_factory="api.app:create_app")

    measures = {row.measure for row in result.rows}
    assert measures == {M_ACK, M_CMP, M_LAT, M_ANCHOR, M_VERIFY}
    for row in result.rows:
        assert row.n > 0 and row.seconds > 0 and row.value > 0, row
    assert result.value(M_ACK, "in-process LogStore.append") > result.value(M_ACK, "naive")
    assert result.value(M_ACK, "HTTP") > 0
    # p50 <= p99 for both latency measures
    assert result.value(M_LAT, "4,000 leaves: LogStore.inclusion_proof p50") <= result.value(
        M_LAT, "4,000 leaves: LogStore.inclusion_proof p99"
    )
    anchor = [row for row in result.rows if row.measure == M_ANCHOR]
    assert anchor[0].value <= anchor[1].value
    assert result.skipped == []
    assert render(result).row_count == len(result.rows)


def test_batched_and_cached_proofs_match_the_reference(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'log.sqlite'}")
    store.migrate()
    log = LogStore(store)
    try:
        entries = _entries("t-", 0, 37)
        log.append(entries)
        leaves = [merkle.leaf_hash(canonical_json(dict(e.body()))) for e in entries]
        for size in (1, 2, 5, 36, 37):
            indices = list(range(size))
            expected = [ref.inclusion_proof(i, size, leaves) for i in indices]
            assert log.inclusion_proofs(indices, size) == expected
            assert [log.inclusion_proof(i, size) for i in indices] == expected  # cold, then cached
            assert [log.inclusion_proof(i, size) for i in indices] == expected
    finally:
        store.close()
