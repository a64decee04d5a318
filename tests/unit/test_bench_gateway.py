"""`sharetrail bench gateway` runs end to end at a tiny size and reports every mode beside its baseline."""

from __future__ import annotations

import pytest

from ledger.bench.gateway import render, run_gateway_bench


def test_gateway_bench_smoke() -> None:
    results = run_gateway_bench(rows=300, n=3)
    assert [r["case"].split(",")[0].split(" ")[0] for r in results] == [
        "raw",
        "raw",
        "masked",
        "raw",
        "aggregate",
        "verify",
    ]
    assert results[1]["case"] == "raw, 1,000 rows, query source (general path)"
    assert all(r["gateway_ms"] > 0 and r["direct_ms"] > 0 and r["accesses_per_s"] > 0 for r in results)
    # Every access is logged: the log append is timed inside each access, and CPU time is counted.
    assert all(r["log_ms"] > 0 and r["cpu_ms"] > 0 for r in results)
    assert render(results).row_count == len(results)


@pytest.mark.postgres
def test_gateway_bench_postgres_case(pg_url: str) -> None:
    results = run_gateway_bench(rows=300, n=3, pg_url=pg_url)
    assert [r["case"] for r in results][:3] == [
        "raw, 1,000 rows",
        "raw, 1,000 rows, query source (general path)",
        "raw, 1,000 rows, PostgreSQL table (general path)",
    ]
    assert results[2]["gateway_ms"] > 0 and results[2]["direct_ms"] > 0 and results[2]["log_ms"] > 0
